"""Small JSON files that remember things between runs on one runner (auth challenges, where an
image came from). The runner's disk is shared with every other job, so a file is read only if
this user owns it and nobody else can write it (nor its folder), and is written atomically with
mode 0600. What is read here may speed things up or add a warning; it never decides where a
secret goes or which digest is accepted."""

from __future__ import annotations

import json
import logging
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

log = logging.getLogger("lanmirror.cache")


def cache_dir() -> Path:
    base = os.environ.get("LANMIRROR_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "lanmirror")
    return Path(base)


def trusted(path: Path) -> bool:
    """Owned by this user and writable by nobody else; a missing file is simply not there."""
    try:
        st = path.stat()
    except OSError:
        return False
    if st.st_uid != os.getuid() or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        log.warning("ignoring %s: owned by uid %d with mode %o; only this user's private files are read",
                    path, st.st_uid, stat.S_IMODE(st.st_mode))
        return False
    return True


def read_json(name: str) -> dict[str, Any]:
    path = cache_dir() / name
    if not path.exists() or not trusted(path.parent) or not trusted(path):
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_json(name: str, data: dict[str, Any]) -> None:
    """Replace the file in one rename, so a reader never sees half of it. Failures are logged, never
    raised: a cache is never a reason to fail. `name` may hold one folder (`job-logs/123.json`)."""
    path = cache_dir() / name
    folder = path.parent
    try:
        cache_dir().mkdir(parents=True, exist_ok=True, mode=0o700)
        folder.mkdir(exist_ok=True, mode=0o700)
        if not trusted(folder):
            return
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}-")  # mode 0600
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh)
        os.replace(tmp, path)
    except OSError as exc:
        log.debug("could not write %s: %s", folder / name, exc)
