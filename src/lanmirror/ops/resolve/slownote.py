"""A source abandoned for slowness: its row in the attempts table and the warning that names it
(`handed_off`), and a runner-local note of it, so that the next jobs on this runner try it last for
a while (15 minutes) instead of each losing a window to it. The note only reorders sources: it
never changes which digest is accepted nor where a credential goes, and a note this user does not
own privately is ignored (`lanmirror.cache`)."""

from __future__ import annotations

import logging
import time

from lanmirror.cache import read_json, write_json
from lanmirror.errors import LanmirrorError, SlowPullError
from lanmirror.ops.resolve.context import Run
from lanmirror.ops.resolve.model import Option
from lanmirror.remote.manifest import manifest_tree
from lanmirror.retry import describe

log = logging.getLogger("lanmirror.resolve")

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


def handed_off(run: Run, option: Option, exc: SlowPullError, tried: float) -> None:
    """Record a pull abandoned for slowness: the attempt with its measurements, a warning that says
    what the daemon kept, and the note that puts this source last on this runner for a while."""
    kind, registry, tag = option.kind, option.registry, option.cand.tag
    size_completed_layers(run, option, exc)
    run.record(kind, registry, f"pull abandoned: too slow ({describe(exc)})", tried, tag,
               rate_mbps=round(exc.rate / 1e6, 3), floor_mbps=exc.floor / 1e6,
               bytes_completed=exc.completed, bytes_kept=exc.kept, event="handoff")
    kept = {None: "the daemon may keep them", 0: "this daemon's classic image store discards them"}.get(
        exc.kept, f"{(exc.kept or 0) / 1e6:.1f} MB kept")
    run.warn(f"slow source: {kind} {registry} delivered {exc.rate / 1e6:.2f} MB/s (floor "
             f"{exc.floor / 1e6:g} MB/s); {exc.completed / 1e6:.1f} MB of layers had completed ({kept}); "
             "trying it last on this runner for 15 minutes")
    note_slow(registry)
    run.slow_sources.add(registry)


def size_completed_layers(run: Run, option: Option, exc: SlowPullError) -> None:
    """Add the layers the daemon finished without naming their size (the containerd store says only
    "Download complete" for a small layer) to the slow attempt's completed and kept bytes, from
    the source's own manifest: a LAN manifest GET costs no Hub quota. Reporting only: a failure
    here leaves the numbers as the daemon gave them."""
    if not exc.unsized or option.kind != "lan":
        return
    try:
        registry = run.clients.registry(option.registry)
        repo = run.repository(option.registry)
        tree = manifest_tree(registry.get_manifest(repo, option.digest), lambda d: registry.get_manifest(repo, d))
        sizes = {d.digest.split(":", 1)[1][:12]: d.size for m in tree if not m.is_index for d in m.blobs()}
    except LanmirrorError as exc_:
        log.info("could not size the completed layers from %s: %s", option.registry, exc_)
        return
    extra = sum(sizes.get(short, 0) for short in exc.unsized)
    exc.completed += extra
    if exc.kept is not None:
        exc.kept += extra
