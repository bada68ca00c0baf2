"""A new user's vendoring, run as the README writes it, before and after a release; the cached
venv the action builds from that copy, run directly by an admin; and the install step with no
package index in reach. Real git, real pip, real venvs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.consumer import ROOT, project_files

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.invalid", "GIT_CONFIG_NOSYSTEM": "1", "HOME": "/nonexistent"}


def git(*args: str, cwd: Path) -> str:
    out = subprocess.run(["git", *args], cwd=cwd, env={**os.environ, **GIT_ENV}, capture_output=True, text=True,
                         check=True)
    return out.stdout.strip()


def readme_vendor_block() -> str:
    text = (ROOT / "README.md").read_text()
    m = re.search(r"<!-- vendor -->\n```bash\n(.*?)```", text, re.S)
    assert m, "the README's vendoring commands are marked <!-- vendor -->"
    return m.group(1)


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """lanmirror's repository as GitHub would hold it: this tree (uncommitted changes too) as
    commits on main, the second tagged v9.8.7, one more commit after the tag."""
    repo = tmp_path_factory.mktemp("upstream") / "lanmirror"
    repo.mkdir()
    git("init", "-q", "-b", "main", cwd=repo)
    for rel in project_files():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, repo / rel)
    git("add", "-A", cwd=repo)
    git("commit", "-qm", "first", cwd=repo)
    (repo / "NOTES").write_text("release\n")
    git("add", "-A", cwd=repo)
    git("commit", "-qm", "release", cwd=repo)
    git("tag", "-a", "v9.8.7", "-m", "v9.8.7", cwd=repo)
    (repo / "NOTES").write_text("after the release\n")
    git("commit", "-qam", "after", cwd=repo)
    return repo


def vendor_as_the_readme_says(upstream: Path, consumer: Path, ref: str) -> subprocess.CompletedProcess[str]:
    consumer.mkdir()
    git("init", "-q", "-b", "main", cwd=consumer)
    src = consumer.parent / f"lanmirror-src-{ref}"
    script = (readme_vendor_block().replace("https://github.com/OWNER/lanmirror", f"file://{upstream}")
              .replace("/tmp/lanmirror-src", str(src)))
    script = re.sub(r"^REF=\S+", f"REF={ref}", script, flags=re.M)
    return subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=consumer, capture_output=True, text=True,
                          env={**os.environ, **GIT_ENV}, timeout=120)


# As an admin's shell runs them: nothing of the test run's own Python setup (PYTHONPATH) leaks in.
CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}


def install(action_root: Path, cache: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    cmd = [*extra, "env", f"LANMIRROR_CACHE={cache}", "GITHUB_ENV=", "bash", str(action_root / "scripts" /
                                                                              "action-install.sh"), str(action_root)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=CLEAN_ENV)


def test_vendored_before_and_after_a_release_keeps_its_version_and_the_cached_venv_runs(upstream, tmp_path):
    released = tmp_path / "released"
    proc = vendor_as_the_readme_says(upstream, released, "v9.8.7")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "vendored lanmirror v9.8.7" in proc.stdout
    assert (released / "resolve-image" / "action.yml").is_file()
    assert (released / "mirror-to-lan" / "action.yml").is_file()
    assert not (released / "resolve-image" / ".git").exists()
    assert git("log", "-1", "--format=%s", cwd=released) == "Vendor lanmirror v9.8.7"
    assert not (tmp_path / "lanmirror-src-v9.8.7").exists()

    cache = tmp_path / "cache"
    done = install(released / "resolve-image", cache)
    assert done.returncode == 0, done.stdout + done.stderr
    venv = Path(done.stdout.strip().splitlines()[-1]).parent.parent
    # An admin runs the cached venv's commands directly: their shebangs name the venv, not the
    # build folder it was made in (which is gone).
    version = subprocess.run([str(venv / "bin" / "lanmirror"), "--version"], capture_output=True, text=True,
                             env=CLEAN_ENV)
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == "lanmirror 9.8.7"
    for script in (venv / "bin").iterdir():
        if script.is_file() and not script.is_symlink():
            assert b".build-venv" not in script.read_bytes(), script
    doctor = subprocess.run([str(venv / "bin" / "lanmirror"), "doctor", "--help"], capture_output=True, text=True,
                            env=CLEAN_ENV)
    assert doctor.returncode == 0 and "usage: lanmirror doctor" in doctor.stdout

    # Before a release: main, one commit past the tag (a shallow clone sees no tag at all).
    unreleased = tmp_path / "unreleased"
    proc = vendor_as_the_readme_says(upstream, unreleased, "main")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    head = git("rev-parse", "main", cwd=upstream)
    scm = subprocess.run([str(venv / "bin" / "python"), "-I", "-c",
                          "import sys, setuptools_scm; print(setuptools_scm.get_version(root=sys.argv[1], "
                          "fallback_version='0.0.0'))", str(unreleased / "resolve-image")],
                         capture_output=True, text=True, env=CLEAN_ENV)
    assert scm.returncode == 0, scm.stderr
    assert scm.stdout.strip().startswith("0.0.1.dev") and f"+g{head[:9]}" in scm.stdout, scm.stdout


def test_vendoring_again_replaces_both_folders_whole(upstream, tmp_path):
    consumer = tmp_path / "consumer"
    assert vendor_as_the_readme_says(upstream, consumer, "main").returncode == 0
    (consumer / "resolve-image" / "left-over.py").write_text("stale\n")
    (consumer / "mirror-to-lan" / "left-over.yml").write_text("stale\n")
    src = tmp_path / "again"
    git("clone", "-q", "--depth", "1", "--branch", "v9.8.7", f"file://{upstream}", str(src), cwd=tmp_path)
    out = subprocess.run([str(src / "scripts" / "vendor.sh"), str(consumer)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert not (consumer / "resolve-image" / "left-over.py").exists()
    assert not (consumer / "mirror-to-lan" / "left-over.yml").exists()
    refused = subprocess.run([str(src / "scripts" / "vendor.sh"), str(src)], capture_output=True, text=True)
    assert refused.returncode == 2 and "your own repository" in refused.stderr


def test_the_install_step_with_no_index_in_reach_says_what_to_do(tmp_path):
    cache = tmp_path / "cache"
    proc = install(ROOT, cache, "unshare", "--net")  # a network namespace of its own: no route anywhere
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    errors = [line for line in out.splitlines() if line.startswith("::error")]
    assert len(errors) == 1, out
    assert "/etc/pip.conf" in errors[0] and "PIP_INDEX_URL" in errors[0] and "first run" in errors[0]
    assert not list(cache.glob(".build-venv-*")) and not list(cache.glob("venv-*")), list(cache.iterdir())
