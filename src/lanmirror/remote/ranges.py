"""How a blob is split into ranges: the settings (checked here, like every other option in its
model) and the count of ranges downloading at once, which grows while the rate does."""

from __future__ import annotations

import concurrent.futures as cf
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from lanmirror.errors import BadInput
from lanmirror.remote.hashing import Chunk

log = logging.getLogger("lanmirror.remote.blobread")

MAX_WINDOW = 64  # ranges held at once: 64 x a 4 MiB chunk is 256 MiB, the most a reader may buffer


@dataclass(frozen=True)
class RangeSettings:
    """When and how to split a blob. Defaults: blobs over 64 MiB; up to 9 ranges of 4 MiB held in
    all (in flight or waiting their turn, shared by the blobs copied at once): at most 36 MiB
    buffered, whatever the blob and image size. Each range is one HTTP request, about 0.7 ms of CPU
    in requests and urllib3, so 4 MiB rather than 2 halves that; 9 of them keep a 4 GB mirror under
    100 MB of RSS and still open more flows than the 8-flow ceiling of the bench's WAN
    (docs/benchmarks.md has the runs behind both numbers)."""

    threshold: int = 64 << 20
    chunk_size: int = 4 << 20
    window: int = 9
    # Start as one stream and switch to ranges only if that connection delivers less than this
    # (bytes/s) over its first `probe` bytes: a per-connection cap (a WAN, a CDN) is what ranges
    # beat; on a fast path one stream is the fastest and leanest. None: ranges from the start.
    switch_below: float | None = 150e6
    # 4 MiB: long enough to see a per-connection cap, short enough that the other flows do not sit
    # idle for long (at 25 MB/s, 16 MiB cost 0.6 s of one flow out of a 6 s copy at the ceiling).
    probe: int = 4 << 20
    # Ranges open at once to begin with; the count doubles while the aggregate rate still grows
    # by `grow_by` (a per-flow cap), and goes back one step when it does not (a link cap binds).
    start_flows: int = 4
    grow_by: float = 1.15

    def __post_init__(self) -> None:
        # In bytes here (tests read 256 KiB ranges); the flags are whole MB, so 0 is what this refuses.
        if self.threshold < 1 or self.chunk_size < 1 or not 1 <= self.window <= MAX_WINDOW:
            raise BadInput(f"range settings: threshold and chunk must be at least 1 MB, --ranges 1 to {MAX_WINDOW}")

    @property
    def max_buffered(self) -> int:
        return self.chunk_size * self.window


class FlowCount:
    """How many ranges to download at once. Starts at `start_flows` and doubles while the aggregate
    rate grows by at least `grow_by` per step: a per-connection cap (a CDN, a WAN hop) rewards more
    flows. When a step brings no gain (a link cap binds, or the CPU), it goes back to the last
    count that helped: never more flows than help. Each step is judged on the bytes that arrived
    while it ran, after at least two ranges per flow and 0.2 s. Links change (and one unlucky step
    can be noise), so below the bound it tries again every `RETRY_BYTES`."""

    RETRY_BYTES = 128 << 20

    def __init__(self, s: RangeSettings) -> None:
        self.limit = max(1, s.window)
        self.target = min(self.limit, max(1, s.start_flows))
        self.grow_by = s.grow_by
        self.chunk = s.chunk_size
        self.history = [self.target]
        self._lock = threading.Lock()
        self._bytes = 0
        self._epoch: tuple[float, int] | None = None
        self._best: float | None = None
        self._best_target = self.target
        self._settled = self.target >= self.limit
        self._retry_at: int | None = None

    def arrived(self, nbytes: int) -> None:
        with self._lock:
            self._bytes += nbytes

    def callback(self, nbytes: int) -> Callable[[cf.Future[list[Chunk]]], None]:
        """A done-callback that counts a range's bytes once it has landed (a failed one still freed
        its flow; its bytes are counted when the retry lands)."""
        def done(fut: cf.Future[list[Chunk]]) -> None:
            if not fut.cancelled() and fut.exception() is None:
                self.arrived(nbytes)
        return done

    def adjust(self, now: float) -> None:
        with self._lock:
            done = self._bytes
        if self._settled:
            if self._retry_at is None or done < self._retry_at or self.target >= self.limit:
                return
            # Measure the count in use afresh, then try one step up again.
            self._settled, self._best, self._epoch, self._retry_at = False, None, None, None
        if self._epoch is None:
            self._epoch = (now, done)
            return
        t0, b0 = self._epoch
        if done - b0 < 2 * self.target * self.chunk or now - t0 < 0.2:
            return
        rate = (done - b0) / (now - t0)
        if self._best is None or rate >= self._best * self.grow_by:
            self._best, self._best_target = rate, self.target
            if self.target >= self.limit:
                self._settled = True
                return
            self.target = min(self.limit, self.target * 2)
        else:
            self.target, self._settled = self._best_target, True
            self._retry_at = done + self.RETRY_BYTES
        self.history.append(self.target)
        self._epoch = (now, done)
        log.debug("ranges: %d flows (best so far %.1f MB/s)", self.target, (self._best or 0) / 1e6)
