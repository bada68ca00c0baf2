"""One mirror target's working state: the clients of both registries, the retry policy, the shared
budget of in-flight ranges and the source manifests read so far. Every step of the copy (plan,
blobs, manifests, verify) takes one of these."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from lanmirror.cache import read_json, write_json
from lanmirror.name import repository_on
from lanmirror.ops.clients import Clients
from lanmirror.ops.mirror.options import MirrorOptions
from lanmirror.ops.mirror.outcome import TagResult
from lanmirror.remote.manifest import Manifest
from lanmirror.retry import RetryPolicy

log = logging.getLogger("lanmirror.ops.mirror")

BytesFn = Callable[[int], None]
ProgressFn = Callable[[str, int, int], None]

TALLY_LOCK = threading.Lock()  # byte tallies are tiny critical sections: one lock serves them all
MODES_NOTE = "lan-modes.json"
MODE_LIFETIME = 24 * 3600.0


def target_mode(registry: str, accepts_pushes: Callable[[], bool]) -> str:
    """push or proxy, asked once a day per registry (an upload session opened and cancelled): a
    no-op mirror stays at one HEAD per side. The note is runner-private (`lanmirror.cache`). A wrong
    one costs warmth, never integrity: warming a push registry fails loudly (its tag is missing),
    and pushing to a pull-through cache is refused by it; which digest a runner accepts is decided
    by resolve's check against the Hub, not here."""
    now = time.time()
    notes = read_json(MODES_NOTE)
    entry = notes.get(registry)
    if isinstance(entry, dict) and entry.get("mode") in ("push", "proxy") and float(entry.get("until", 0)) > now:
        return str(entry["mode"])
    mode = "push" if accepts_pushes() else "proxy"
    notes[registry] = {"mode": mode, "until": now + MODE_LIFETIME}
    write_json(MODES_NOTE, notes)
    return mode


class Target:
    """One repository copied from the source registry to one target registry."""

    def __init__(self, opts: MirrorOptions, clients: Clients, on_bytes: ProgressFn | None) -> None:
        self.opts = opts
        self.clients = clients
        self.policy: RetryPolicy = clients.policy
        self.on_bytes = on_bytes
        src, dst = opts.source_registry, opts.lan_registry
        # Every blob worker and every range in flight needs its own keep-alive connection; a pool
        # smaller than that discards and reopens connections on every range.
        pool = opts.parallel * 2 + opts.ranges.window + 4
        self.src = clients.registry(src, timeouts=opts.timeouts, pool_size=pool)
        self.dst = clients.registry(dst, timeouts=opts.timeouts, pool_size=pool)
        # One budget of in-flight ranges for all blobs copied at once: memory stays at
        # ranges x chunk however many large blobs run in parallel.
        self.range_budget = threading.Semaphore(opts.ranges.window)
        self.src_repo = repository_on(src, opts.repo)
        self.dst_repo = repository_on(dst, opts.repo)
        self._pull_through: bool | None = None
        # Source manifests by digest; mirror_to_all shares one between its targets, so that the
        # source is asked for each once (on Docker Hub a manifest GET counts as a pull).
        self.manifest_cache: dict[str, Manifest] = {}
        # Whether each side answers the OCI referrers API, once learned (None: not asked yet).
        self.src_api: bool | None = None
        self.dst_api: bool | None = None

    @property
    def name(self) -> str:
        return self.opts.lan_registry

    def source_manifest(self, digest: str) -> Manifest:
        cached = self.manifest_cache.get(digest)
        if cached is None:
            cached = self.manifest_cache[digest] = self.src.get_manifest(self.src_repo, digest)
        return cached

    def pull_through(self) -> bool:
        if self._pull_through is None:
            mode = self.opts.lan_mode
            if mode == "auto":
                mode = target_mode(self.opts.lan_registry, lambda: self.dst.accepts_pushes(self.dst_repo))
            self._pull_through = mode == "proxy"
            if self._pull_through:
                log.info("%s is a pull-through cache: warming it by reading through it", self.opts.lan_registry)
        return self._pull_through

    def tally(self, result: TagResult, field: str) -> BytesFn:
        """Adds to one of `result`'s byte counts from any thread."""

        def add(n: int) -> None:
            with TALLY_LOCK:
                setattr(result, field, getattr(result, field) + n)

        return add

    def byte_counter(self, tag: str, total: int) -> BytesFn:
        """Progress of one tag to this target: bytes moved so far, reported to on_bytes (thread-safe)."""
        lock = threading.Lock()
        moved = [0]

        def count(n: int) -> None:
            with lock:
                moved[0] += n
                if self.on_bytes:
                    self.on_bytes(tag, moved[0], total)

        return count
