"""A consumer repository laid out as the README tells users to vendor lanmirror, for `act`."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def project_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, check=True, text=True,
                         capture_output=True).stdout.split("\n")
    return [f for f in out if f and (ROOT / f).is_file()]


def vendor(dest: Path) -> None:
    """What the README's vendoring commands leave in `dest` (scripts/vendor.sh: the project in
    ./resolve-image, its mirror/ folder in ./mirror-to-lan), copied from this working tree so that
    tests see uncommitted changes too. tests/integration/test_vendored_install.py runs the
    README's commands themselves."""
    for rel in project_files():
        target = dest / "resolve-image" / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, target)
    subprocess.run(["cp", "-r", "resolve-image/mirror", "mirror-to-lan"], cwd=dest, check=True)


def make_consumer(dest: Path) -> Path:
    """dest with lanmirror vendored as the README says (`vendor`), the example workflows under
    .github/workflows, and a FROM-scratch docker/rocm.Dockerfile to publish."""
    dest.mkdir(parents=True, exist_ok=True)
    vendor(dest)
    wf = dest / ".github" / "workflows"
    wf.mkdir(parents=True)
    for f in (ROOT / "examples" / "workflows").glob("*.yml"):
        shutil.copy2(f, wf / f.name)
    (dest / "docker").mkdir()
    (dest / "docker" / "rocm.Dockerfile").write_text(
        "FROM scratch\nARG GPU_ARCH\nARG ROCM_VERSION\nCOPY docker/payload.txt /payload.txt\n"
        'LABEL org.lanmirror.gpu-arch="${GPU_ARCH}" org.lanmirror.rocm="${ROCM_VERSION}"\n')
    (dest / "docker" / "payload.txt").write_text(f"nightly payload {os.urandom(8).hex()}\n")
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid"}
    for cmd in (["git", "init", "-q", "-b", "main"], ["git", "add", "-A"], ["git", "commit", "-qm", "consumer"]):
        subprocess.run(cmd, cwd=dest, check=True, env=env)
    return dest
