"""Auth challenges (`WWW-Authenticate`) and the on-disk memory of them between runs."""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

_CHALLENGE_RE = re.compile(r'(\w+)="([^"]*)"')


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """Split `Bearer realm="...",service="..."` into ("bearer", {...})."""
    scheme, _, rest = header.strip().partition(" ")
    return scheme.lower(), dict(_CHALLENGE_RE.findall(rest))


def _challenge_file() -> Path:
    base = os.environ.get("LANMIRROR_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "lanmirror")
    return Path(base) / "challenges.json"


def load_challenge(host: str) -> tuple[str, dict[str, str]] | None:
    """The auth challenge this registry sent last time (realm and service, never a secret).
    Knowing it up front saves the 401 round trip on every run: a no-op mirror is then one HEAD
    per side."""
    try:
        entry = json.loads(_challenge_file().read_text()).get(host)
    except (OSError, ValueError, AttributeError):
        return None
    if isinstance(entry, dict) and entry.get("scheme") == "bearer" and isinstance(entry.get("params"), dict):
        return "bearer", {str(k): str(v) for k, v in entry["params"].items() if k in ("realm", "service")}
    return None


def save_challenge(host: str, challenge: tuple[str, dict[str, str]] | None) -> None:
    path = _challenge_file()
    try:
        data = json.loads(path.read_text()) if path.exists() else {}
        if not isinstance(data, dict):
            data = {}
        if challenge is None:
            data.pop(host, None)
        else:
            kind, params = challenge
            data[host] = {"scheme": kind, "params": {k: v for k, v in params.items() if k in ("realm", "service")}}
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".challenges-")
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh)
        os.replace(tmp, path)
    except (OSError, ValueError):
        pass  # a cache: never a reason to fail
