"""The built artifacts, not the editable checkout: the sdist and wheel build and pass twine check,
the wheel installs into a fresh venv (locked dependencies by hash) and, run from outside the
source tree, reports its version and resolves a real nightly from the stack. The release
workflow's build job runs under act."""

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.consumer import ROOT, project_files
from tests.helpers import SEEN_OUTPUT, publish, tag_for

pytestmark = pytest.mark.integration
BASE = "v0.5.5-rocm700-mi30x"
BIN = Path(sys.executable).parent
ACT = str(BIN / "act")


def sh(cmd, cwd=None, env=None, timeout=600):
    proc = subprocess.run(cmd, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=timeout)
    SEEN_OUTPUT.extend([proc.stdout, proc.stderr])
    assert proc.returncode == 0, f"{cmd}: {proc.stdout[-3000:]}{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    sh([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)])
    sh([str(BIN / "twine"), "check", "--strict", *map(str, out.iterdir())])
    return out


def test_the_wheel_installs_alone_and_resolves_against_the_stack(stack, repo, dist, tmp_path):
    wheel = next(dist.glob("lanmirror-*.whl"))
    version = wheel.name.split("-")[1]
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
    assert "lanmirror/py.typed" in names and any(n.endswith("licenses/LICENSE") for n in names)
    venv = tmp_path / "venv"
    smoke = sh(["bash", str(ROOT / "scripts" / "smoke-wheel.sh"), str(dist), version],
               env={"SMOKE_VENV": str(venv)}, cwd=tmp_path)
    assert f"lanmirror {version}" in smoke.stdout and "smoke test passed" in smoke.stdout
    img = publish(stack, repo, BASE, 1, hub=True, lan=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**stack.env(), "PYTHONPATH": "", "PATH": f"{venv / 'bin'}:/usr/bin:/bin"}
    proc = subprocess.run([str(venv / "bin" / "lanmirror"), "resolve", "--repo", repo, "--base-tag", BASE,
                           "--lan-registry", stack.lan, "--hub-registry", stack.hub, "--json"],
                          cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120)
    SEEN_OUTPUT.extend([proc.stdout, proc.stderr])
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout)
    assert (res["source"], res["tag"], res["digest"]) == ("lan", tag_for(BASE, 1), img.digest)
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import lanmirror; print(lanmirror.__file__)"],
                           cwd=elsewhere, capture_output=True, text=True).stdout
    assert where.startswith(str(venv)), where  # the installed wheel, not the source tree


def test_release_build_job_runs_under_act(tmp_path):
    """The release workflow's build job, offline: build, twine check, CHANGELOG notes, smoke test of
    the wheel against the tag's version. The upload step is skipped under act (no artifact service);
    the GitHub release, the image push and PyPI need the network."""
    repo = tmp_path / "lanmirror"
    for rel in project_files():
        target = repo / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, target)
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.invalid"}
    for cmd in (["git", "init", "-q", "-b", "main"], ["git", "add", "-A"], ["git", "commit", "-qm", "release"],
                ["git", "tag", "v1.0.0"]):
        sh(cmd, cwd=repo, env=env)
    # act fetches every action a job names before it starts, even one whose `if:` skips it; point the
    # upload step's action at a local folder so that nothing leaves this machine (the step is skipped).
    skipped = tmp_path / "skipped-action"
    skipped.mkdir()
    (skipped / "action.yml").write_text("name: not run under act\nruns:\n  using: composite\n  steps: []\n")
    upload = "actions/upload-artifact@bbbca2ddaa5d8feaa63e36b76fdaad77386f024f"
    assert upload in (ROOT / ".github" / "workflows" / "release.yml").read_text()
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"ref": "refs/tags/v1.0.0", "ref_name": "v1.0.0"}))
    proc = subprocess.run([ACT, "push", "-e", str(event), "-W", ".github/workflows/release.yml", "-j", "build",
                           "-P", "ubuntu-24.04=-self-hosted", "--action-offline-mode",
                           "--local-repository", f"{upload}={skipped}"],
                          cwd=repo, capture_output=True, text=True, timeout=900, env={**os.environ})
    log = proc.stdout + proc.stderr
    SEEN_OUTPUT.append(log)
    assert proc.returncode == 0, log[-5000:]
    assert "lanmirror 1.0.0" in log and "smoke test passed" in log
    assert "Job succeeded" in log
