"""A runner-local note of LAN registries just abandoned for slowness, so that the next jobs on this
runner try them last for a while (15 minutes) instead of each losing a window to them. It only
reorders sources: it never changes which digest is accepted nor where a credential goes, and a
note this user does not own privately is ignored (`lanmirror.cache`)."""

from __future__ import annotations

import time

from lanmirror.cache import read_json, write_json

NOTE = "slow-sources.json"
LIFETIME = 15 * 60.0


def note_slow(registry: str, now: float | None = None) -> None:
    now = time.time() if now is None else now
    data = {k: v for k, v in read_json(NOTE).items() if isinstance(v, (int, float)) and v > now}
    data[registry] = now + LIFETIME
    write_json(NOTE, data)


def slow_now(now: float | None = None) -> set[str]:
    now = time.time() if now is None else now
    return {k for k, v in read_json(NOTE).items() if isinstance(v, (int, float)) and v > now}


def reorder(registries: list[str], now: float | None = None) -> list[str]:
    """The same registries, the recently slow ones last (in their own order)."""
    slow = slow_now(now)
    return [r for r in registries if r not in slow] + [r for r in registries if r in slow]
