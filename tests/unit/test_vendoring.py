"""The vendored layout the README gives: ./resolve-image (the whole repository) and ./mirror-to-lan
(a copy of its mirror/ folder). Each action's install step finds lanmirror from there, and a wrong
layout fails with one line that says what to do. The steps' shell is run as the runner runs it."""

import os
import subprocess
from pathlib import Path

import yaml

from tests.consumer import ROOT, vendor


def install_step(action: Path) -> str:
    return yaml.safe_load(action.read_text())["runs"]["steps"][0]["run"]


def run_step(action: Path) -> subprocess.CompletedProcess[str]:
    # A Python that does not exist: a step that reached action-install.sh stops at its first check.
    env = {**os.environ, "ACTION_PATH": str(action.parent), "LANMIRROR_BOOTSTRAP_PYTHON": "/nonexistent/python3"}
    return subprocess.run(["bash", "-e", "-c", install_step(action)], env=env, capture_output=True, text=True,
                          timeout=30)


def test_the_readme_layout_reaches_the_installer_from_both_actions(tmp_path):
    vendor(tmp_path)
    for action in (tmp_path / "resolve-image" / "action.yml", tmp_path / "mirror-to-lan" / "action.yml"):
        proc = run_step(action)
        assert proc.returncode == 1
        assert "/nonexistent/python3 not found" in proc.stdout, proc.stdout + proc.stderr


def test_the_repository_layout_still_works_for_uses_owner_repo_mirror():
    proc = run_step(ROOT / "mirror" / "action.yml")
    assert "/nonexistent/python3 not found" in proc.stdout, proc.stdout + proc.stderr


def test_mirror_to_lan_copied_alone_fails_with_one_line_that_says_what_to_do(tmp_path):
    (tmp_path / "mirror-to-lan").mkdir()
    (tmp_path / "mirror-to-lan" / "action.yml").write_text((ROOT / "mirror" / "action.yml").read_text())
    proc = run_step(tmp_path / "mirror-to-lan" / "action.yml")
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, lines
    assert lines[0].startswith("::error title=lanmirror::")
    assert "./resolve-image" in lines[0] and "Vendoring" in lines[0]


def test_a_partial_copy_of_the_repository_fails_with_one_line(tmp_path):
    (tmp_path / "resolve-image").mkdir()
    (tmp_path / "resolve-image" / "action.yml").write_text((ROOT / "action.yml").read_text())
    proc = run_step(tmp_path / "resolve-image" / "action.yml")
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, lines
    assert lines[0].startswith("::error title=lanmirror::") and "whole" in lines[0]

