"""The nightly window as a tag source: every nightly of the last N days that a registry has."""

from __future__ import annotations

import concurrent.futures as cf
import datetime as dt

from lanmirror.errors import BadInput
from lanmirror.name import nightly_candidates
from lanmirror.remote.registry import Registry


def backfill_tags(registry: Registry, repo: str, base_tags: list[str], days: int,
                  today: dt.date | None = None) -> list[str]:
    """Every nightly of the last `days` days that `registry` has, oldest first (free HEADs)."""
    if not base_tags:
        raise BadInput("--backfill needs at least one --base-tag")
    cands = [t for base in base_tags for t, _ in nightly_candidates(base, days, today)]
    with cf.ThreadPoolExecutor(max_workers=min(16, len(cands))) as pool:
        found = list(pool.map(lambda t: registry.head_manifest(repo, t) is not None, cands))
    return [t for t, ok in reversed(list(zip(cands, found, strict=True))) if ok]
