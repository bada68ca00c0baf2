"""The throughput floor of a fill: a LAN replica that is slow but alive (the original CI's 4 h 16 min
pull) is left, from the byte reached, for the next source, as resolve's pull hands a slow LAN to the
next one. A watchdog measures the bytes that land; a source that delivers less than the floor over
the window (nothing at all included: a drip of a few bytes never fills a buffer) is cut by
shutting its sockets, and the read goes on with the next source."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator

from lanmirror.remote.hashing import Chunk
from lanmirror.serve.feed import BlobSources, Provenance, Source


class Rate:
    """Bytes per second over the last `window` seconds, from the totals seen as chunks land."""

    def __init__(self, window: float) -> None:
        self.window = window
        self.samples: deque[tuple[float, int]] = deque()
        self.reset(0)

    def reset(self, total: int) -> None:
        self.samples.clear()
        self.since = time.monotonic()
        self.samples.append((self.since, total))

    def add(self, total: int) -> None:
        self.samples.append((time.monotonic(), total))

    def now(self) -> float | None:
        """The rate over the window ending now; None until the window has passed since the reset."""
        now = time.monotonic()
        if now - self.since < self.window:
            return None
        while len(self.samples) > 1 and now - self.samples[1][0] >= self.window:
            self.samples.popleft()
        t0, b0 = self.samples[0]
        return (self.samples[-1][1] - b0) / max(now - max(t0, now - self.window), 1e-6)


def read_with_floor(feed: BlobSources, digest: str, size: int, provenance: Provenance, floor: float,
                    window: float, on_handoff: Callable[[Source, float], None]) -> Iterator[Chunk]:
    """The bytes of `digest` from `feed`; while they are read, a source slower than `floor` bytes/s
    over `window` seconds is left for the next one (never the last one left)."""
    if floor <= 0:
        yield from feed.read(digest, size, provenance=provenance)
        return
    rate = Rate(window)
    total = [0]
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(min(0.5, window / 4)):
            measured = rate.now()
            if measured is None or measured >= floor:
                continue
            left = feed.leave_current()
            if left is not None:
                on_handoff(left, measured)
            rate.reset(total[0])

    threading.Thread(target=watch, name=f"floor {digest[:19]}", daemon=True).start()
    try:
        for chunk in feed.read(digest, size, provenance=provenance):
            total[0] += len(chunk)
            rate.add(total[0])
            yield chunk
    finally:
        stop.set()
