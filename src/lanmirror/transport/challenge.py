"""Auth challenges (`WWW-Authenticate`) and the on-disk memory of them between runs."""

from __future__ import annotations

import re

from lanmirror.cache import read_json, write_json

CACHE_FILE = "challenges.json"

_CHALLENGE_RE = re.compile(r'(\w+)="([^"]*)"')


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """Split `Bearer realm="...",service="..."` into ("bearer", {...})."""
    scheme, _, rest = header.strip().partition(" ")
    return scheme.lower(), dict(_CHALLENGE_RE.findall(rest))


def load_challenge(host: str) -> tuple[str, dict[str, str]] | None:
    """The auth challenge this registry sent last time (realm and service, never a secret).
    Knowing it up front saves the 401 round trip on every run: a no-op mirror is then one HEAD
    per side. Only an anonymous token request may use it (see `Transport._prefetch_token`)."""
    entry = read_json(CACHE_FILE).get(host)
    if isinstance(entry, dict) and entry.get("scheme") == "bearer" and isinstance(entry.get("params"), dict):
        return "bearer", {str(k): str(v) for k, v in entry["params"].items() if k in ("realm", "service")}
    return None


def save_challenge(host: str, challenge: tuple[str, dict[str, str]] | None) -> None:
    data = read_json(CACHE_FILE)
    if challenge is None:
        data.pop(host, None)
    else:
        kind, params = challenge
        data[host] = {"scheme": kind, "params": {k: v for k, v in params.items() if k in ("realm", "service")}}
    write_json(CACHE_FILE, data)
