"""lanmirror's own container image, built offline for the tests: host-built wheels of this checkout
with the `serve` extra (at the version the tests' own lanmirror reports, so a helper container and the job agree) on a
debootstrapped Debian with python3, cached between runs like the other root filesystems."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from .daemons import StackError
from .debian import CACHE, debian_mirror

ROOT = Path(__file__).resolve().parents[2]
BASE_IMAGE = "local/debian-python:bookworm"


def _sh(cmd: list[str], env: dict[str, str], timeout: float = 600) -> str:
    proc = subprocess.run(cmd, env=env, text=True, capture_output=True, timeout=timeout)
    if proc.returncode != 0:
        raise StackError(f"{' '.join(cmd[:4])} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return proc.stdout


def build(env: dict[str, str], tag: str, version: str) -> str:
    """Build the Dockerfile into the daemon `env` points at, as `tag`, lanmirror at `version`."""
    CACHE.mkdir(parents=True, exist_ok=True)
    rootfs_tar = CACHE / "debian-python-bookworm.tar"
    if not rootfs_tar.exists():
        rootfs = CACHE / "rootfs"
        shutil.rmtree(rootfs, ignore_errors=True)
        _sh(["debootstrap", "--variant=minbase", "--include=python3,python3-venv,passwd", "bookworm", str(rootfs),
             debian_mirror()], env, timeout=900)
        _sh(["tar", "-C", str(rootfs), "-cf", str(rootfs_tar) + ".part", "."], env)
        os.replace(str(rootfs_tar) + ".part", rootfs_tar)
        shutil.rmtree(rootfs, ignore_errors=True)
    _sh(["bash", "-c", f"docker import - {BASE_IMAGE} < {rootfs_tar}"], env)
    wheels = ROOT / "build" / "wheels"
    shutil.rmtree(wheels, ignore_errors=True)
    _sh([sys.executable, "-m", "pip", "wheel", "-q", "--wheel-dir", str(wheels), f"{ROOT}[serve]"],
        {**env, "SETUPTOOLS_SCM_PRETEND_VERSION": version}, timeout=600)
    _sh(["docker", "build", "-q", "--network", "none", "--build-arg", f"BASE={BASE_IMAGE}", "--build-arg",
         f"VERSION={version}", "-t", tag, str(ROOT)], {**env, "DOCKER_BUILDKIT": "0"}, timeout=600)
    return tag


def copy(tag: str, from_env: dict[str, str], to_env: dict[str, str]) -> None:
    """docker save from one daemon into docker load of another (nothing pulled)."""
    save = subprocess.Popen(["docker", "save", tag], env=from_env, stdout=subprocess.PIPE)
    load = subprocess.run(["docker", "load", "-q"], env=to_env, stdin=save.stdout, capture_output=True, text=True,
                          timeout=600)
    save.wait(timeout=600)
    if save.returncode != 0 or load.returncode != 0:
        raise StackError(f"docker save | load of {tag} failed: {load.stderr[-2000:]}")
