"""Debian root filesystems for the tests, from the Debian mirror this machine's apt already uses
(the only package registry the tests may reach), cached between runs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from .daemons import StackError, require

CACHE = Path(os.environ.get("LANMIRROR_TEST_CACHE", Path.home() / ".cache" / "lanmirror-test"))
SOURCES = (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list"))


def debian_mirror() -> str:
    """The Debian archive URL from the machine's apt sources (deb822 `URIs:` or a one-line `deb`).
    No address is written in the code: the mirror is whatever apt on this machine is allowed to use."""
    for path in SOURCES:
        if path.exists():
            m = re.search(r"(?:URIs:|deb)\s+(https?://\S+/debian)/?(?:\s|$)", path.read_text())
            if m:
                return m.group(1)
    raise StackError(f"no Debian mirror in {' or '.join(map(str, SOURCES))}: debootstrap needs the one apt uses")


def debootstrap(suite: str, include: list[str], name: str, timeout: float = 900) -> Path:
    """A minbase `suite` with `include`, built once into the cache (a `.complete` marker says it
    finished; a half-built one is rebuilt)."""
    dest = CACHE / name
    if (dest / ".complete").exists():
        return dest
    shutil.rmtree(dest, ignore_errors=True)
    dest.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([require("debootstrap"), "--variant=minbase", f"--include={','.join(include)}", suite,
                           str(dest), debian_mirror()], text=True, capture_output=True, timeout=timeout)
    if proc.returncode != 0:
        raise StackError(f"debootstrap {suite} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    (dest / ".complete").write_text(suite)
    return dest
