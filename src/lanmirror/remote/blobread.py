"""Reading one blob from the source as an ordered byte stream, fast on a WAN and resumable.

A big blob is fetched as N concurrent *bounded* HTTP ranges (`bytes=a-b`, never the open-ended
`bytes=a-`, which makes a server stream the whole remainder for every chunk); a bounded reorder
window hands the chunks on in order, so the upload stays one ordered stream and the caller can hash
as it writes. A connection that breaks mid-range or mid-stream is resumed from the byte where it
broke. Memory is bounded by `window × chunk_size` whatever the blob size, and whatever the number
of blobs copied at once: the readers of one mirror share one budget of in-flight ranges.
"""

from __future__ import annotations

import concurrent.futures as cf
import http.client
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import requests
import urllib3.exceptions

from lanmirror.errors import TransientError
from lanmirror.remote.buffers import POOL
from lanmirror.remote.hashing import CHUNK, Chunk
from lanmirror.remote.registry import Registry
from lanmirror.retry import RetryPolicy

log = logging.getLogger("lanmirror.remote.blobread")

_BROKEN = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
           urllib3.exceptions.ProtocolError, urllib3.exceptions.ReadTimeoutError, ConnectionError, TimeoutError)


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

    @property
    def max_buffered(self) -> int:
        return self.chunk_size * self.window


def _chunks(resp: requests.Response, meter: StreamMeter, size: int = CHUNK) -> Iterator[Chunk]:
    """Body chunks of up to `size`, each read straight into a pooled buffer (`_fill`) and counted
    by `meter`. A break hands on the bytes that landed first, then raises, so a resume starts at
    the byte where the connection broke."""
    while True:
        buf = POOL.take(size)
        try:
            n = _fill(resp, memoryview(buf)[:size])
        except _Partial as part:
            meter.add(part.got)
            if part.got:
                yield memoryview(buf)[:part.got]
            raise _broken(part.cause) from None
        meter.add(n)
        if n:
            yield buf if n == len(buf) else memoryview(buf)[:n]
        if n < size:
            return


def _broken(exc: BaseException) -> TransientError:
    return TransientError(f"connection broke mid-body: {type(exc).__name__}")


class _Partial(Exception):
    """A body broke after `got` bytes had landed in the buffer."""

    def __init__(self, got: int, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.got = got
        self.cause = cause


def _fill(resp: requests.Response, view: memoryview) -> int:
    """Read the body of `resp` into `view` until it is full or the body ends; the bytes count.

    Straight into the caller's buffer, one socket read at a time (`_readinto1`), instead of one
    1 MiB `read1` string per socket read: on a slow WAN flow each read brings a few tens of kB, and
    allocating, resizing and freeing a 1 MiB string for each was most of the reader's CPU
    (docs/benchmarks.md). A break raises `_Partial` with the exact count that landed, so a resume
    starts at the byte where the connection broke. Response shapes this cannot read into a buffer
    (chunked transfer encoding) take the `read1` loop."""
    raw = resp.raw
    fp = getattr(raw, "_fp", None)
    if (not isinstance(fp, http.client.HTTPResponse) or fp.chunked or fp.length is None
            or not hasattr(fp, "_close_conn") or not hasattr(fp.fp, "readinto1")):
        return _fill_by_chunks(resp, view)
    got = 0
    try:
        while got < len(view):
            n = _readinto1(fp, view[got:])
            if not n:
                break
            got += n
    except (OSError, http.client.HTTPException) as exc:
        raise _Partial(got, exc) from None
    if fp.isclosed():
        # The whole body was read: hand the connection back to the pool for the next request
        # (urllib3 does this itself only when its own read methods see the end).
        raw.release_conn()
    return got


def _readinto1(fp: http.client.HTTPResponse, view: memoryview) -> int:
    """http.client's `HTTPResponse.read1`, into a buffer: at most one socket read, the response's
    remaining length kept, the connection marked done at the end of the body."""
    if fp.fp is None:  # the body ended (and the connection went back) on the last read
        return 0
    if fp.length is not None and len(view) > fp.length:
        view = view[:fp.length]
    n: int = fp.fp.readinto1(view)
    if not n and len(view):
        fp._close_conn()  # type: ignore[attr-defined]
    elif fp.length is not None:
        fp.length -= n
        if not fp.length:
            fp._close_conn()  # type: ignore[attr-defined]
    return n


def _fill_by_chunks(resp: requests.Response, view: memoryview) -> int:
    """`_fill` for the shapes http.client cannot read into a buffer (chunked transfer encoding):
    urllib3's reads, never asked for more than the room left, so no byte is read past `view`."""
    raw = resp.raw
    read = raw.read1 if hasattr(raw, "read1") else raw.read
    got = 0
    try:
        while got < len(view):
            data = read(min(CHUNK, len(view) - got))
            if not data:
                break
            view[got:got + len(data)] = data
            got += len(data)
    except _BROKEN as exc:
        raise _Partial(got, exc) from None
    return got


class StreamMeter:
    """Bytes received by every single-stream read of this process, for the switch to ranges: one
    slow stream among several that together run fast is sharing a link (or the CPU), which ranges
    cannot beat; only when the streams together are slow is it a per-connection cap."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.total = 0

    def add(self, n: int) -> None:
        with self._lock:
            self.total += n


STREAMS = StreamMeter()


class Replicas:
    """Registries that hold the same blob, for one reader's ranges: each range goes to the replica
    with the fewest ranges in flight (the faster one, measured, on a tie), so a fast replica takes
    more of the work; one that fails twice is left out for the rest of the blob."""

    def __init__(self, members: list[tuple[Registry, str]]) -> None:
        self.members = members
        self._lock = threading.Lock()
        self.inflight = [0] * len(members)
        self.failures = [0] * len(members)
        self.delivered = [0] * len(members)  # bytes per member, for reports and the integrity verdict
        self.busy = [0.0] * len(members)  # seconds with a range in flight

    def pick(self) -> int:
        with self._lock:
            alive = [i for i in range(len(self.members)) if self.failures[i] < 2] or [0]
            best = min(alive, key=lambda i: (self.inflight[i], -self.rate(i), i))
            self.inflight[best] += 1
            return best

    def all_failed(self) -> bool:
        with self._lock:
            return min(self.failures) >= 2

    def rate(self, i: int) -> float:
        return self.delivered[i] / self.busy[i] if self.busy[i] > 0 else 0.0

    def done(self, i: int, nbytes: int, seconds: float, failed: bool) -> None:
        with self._lock:
            self.inflight[i] -= 1
            self.delivered[i] += nbytes
            self.busy[i] += seconds
            if failed:
                self.failures[i] += 1

    def names(self) -> dict[str, int]:
        """Bytes delivered, by registry name, for the members that delivered any."""
        return {self.members[i][0].name: n for i, n in enumerate(self.delivered) if n}


class BlobReader:
    """Iterate over the bytes of `digest` (of known `size`) on `registry`, in order, from byte
    `start` (an upload resuming after a break needs the source from where the target stopped).
    With `replicas`, the parallel ranges are shared between `registry` and them."""

    def __init__(self, registry: Registry, repo: str, digest: str, size: int, policy: RetryPolicy,
                 settings: RangeSettings | None = None, budget: threading.Semaphore | None = None,
                 start: int = 0, replicas: list[tuple[Registry, str]] | None = None,
                 meter: StreamMeter = STREAMS) -> None:
        if not 0 <= start <= size:
            raise ValueError(f"start {start} outside a blob of {size} bytes")
        self.start = start
        self.budget = budget or threading.Semaphore((settings or RangeSettings()).window)
        self.registry = registry
        self.repo = repo
        self.digest = digest
        self.size = size
        self.policy = policy
        self.settings = settings or RangeSettings()
        self.ranged = False  # whether parallel ranges were used (for reports and tests)
        self.resumes = 0
        self.flows_used: list[int] = []  # the flow counts tried, in order (for reports and tests)
        self.replicas = Replicas([(registry, repo), *(replicas or [])])
        self.meter = meter

    def __iter__(self) -> Iterator[Chunk]:
        s = self.settings
        start = self.start
        if start == self.size:
            return
        if self.size - start <= s.threshold or s.window < 2:
            yield from self._stream(start, self.size - 1 if self.size else None)
            return
        if s.switch_below is not None:
            yield from self._adaptive()
            return
        yield from self._ranges_from(start)

    def _ranges_from(self, offset: int) -> Iterator[Chunk]:
        """Parallel ranges from `offset`; the first one tells whether the source honours Range."""
        self.budget.acquire()  # this reader holds no slot yet, so waiting here cannot deadlock
        try:
            first = self._open(offset, min(offset + self.settings.chunk_size, self.size) - 1)
        except BaseException:
            self.budget.release()
            raise
        if first.status_code != 206:
            # No Range support: this is the whole blob; stream it (resuming is then impossible).
            self.budget.release()
            log.info("%s: the source ignores Range; one plain stream", self.digest[:19])
            yield from self._skip_then_stream(first, offset)
            return
        self.ranged = True
        yield from self._parallel(first, offset)

    def _adaptive(self) -> Iterator[Chunk]:
        """One stream; if its first `probe` bytes arrive slower than `switch_below`, and the streams
        of this process together are slower too, the rest of the blob comes as parallel ranges from
        the byte reached. Four blobs copied at once on a fast path each see a quarter of it; they
        must not switch (ranges cost twice the CPU of one stream, measured in docs/benchmarks.md)."""
        s = self.settings
        assert s.switch_below is not None
        resp = self._open(self.start, None if self.start == 0 else self.size - 1)
        if resp.status_code != 206 and self.start:
            yield from self._skip_then_stream(resp, self.start)
            return
        offset = self.start
        started: float | None = None
        together = 0  # the meter's total when this stream's first chunk came
        first = 0  # that chunk's bytes: its time is latency and one fill, not the rate
        switched = False
        try:
            # At least four chunks in the probe, so that the rate is measured over most of it.
            for chunk in _chunks(resp, self.meter, min(CHUNK, max(64 << 10, s.probe // 4))):
                n = len(chunk)
                if started is None:
                    started, together, first = time.monotonic(), self.meter.total, n
                else:
                    probed = offset - self.start
                    if probed < s.probe <= probed + n:
                        elapsed = max(time.monotonic() - started, 1e-6)
                        rate = (probed + n - first) / elapsed
                        everyone = (self.meter.total - together) / elapsed
                        if (rate < s.switch_below and everyone < s.switch_below
                                and self.size - offset - n > s.chunk_size):
                            switched = True
                offset += n
                yield chunk
                if switched:
                    break
        except (*_BROKEN, TransientError) as exc:
            if offset == self.start:
                raise (exc if isinstance(exc, TransientError) else _broken(exc)) from None
            switched = True  # a broken stream continues as ranges from the byte reached
        finally:
            resp.close()
        if not switched:
            if offset < self.size:
                yield from self._stream(offset, self.size - 1)
            return
        log.info("%s: one connection is slow; the remaining %d bytes come as %d parallel ranges",
                 self.digest[:19], self.size - offset, s.window)
        yield from self._ranges_from(offset)

    def _skip_then_stream(self, resp: requests.Response, offset: int) -> Iterator[Chunk]:
        """A source that ignores Range sent the whole blob again: drop what we already have."""
        skip = offset
        for chunk in self._consume(resp, 0, self.size - 1, resumable=False):
            if skip >= len(chunk):
                skip -= len(chunk)
                continue
            yield chunk[skip:]
            skip = 0

    # -- one stream, resumable ------------------------------------------------------------------

    def _open(self, start: int, end: int | None) -> requests.Response:
        what = f"GET {self.digest[:19]} from byte {start}"
        return self.policy.call(lambda: self.registry.open_blob(self.repo, self.digest, start=start, end=end), what)

    def _open_replica(self, start: int, end: int) -> tuple[int, requests.Response]:
        """A bounded range from the replica `Replicas.pick` chooses; each retry may choose another."""
        chosen = [0]

        def attempt() -> requests.Response:
            while True:  # a replica that fails hands the range to the next pick, until all have failed
                i = self.replicas.pick()
                chosen[0] = i
                began = time.monotonic()
                registry, repo = self.replicas.members[i]
                try:
                    return registry.open_blob(repo, self.digest, start=start, end=end)
                except BaseException:
                    self.replicas.done(i, 0, time.monotonic() - began, failed=True)
                    if self.replicas.all_failed():
                        raise

        resp = self.policy.call(attempt, f"GET {self.digest[:19]} bytes {start}-{end}")
        return chosen[0], resp

    def _consume(self, resp: requests.Response, start: int, end: int | None,
                 resumable: bool = True) -> Iterator[Chunk]:
        """Yield the body of `resp` (bytes start..end); on a break, reopen at the next byte."""
        offset = start
        failures = 0
        last = (self.size - 1) if end is None else end
        while True:
            try:
                if resp.status_code == 200 and offset > 0:
                    raise TransientError("the source answered a resumed range with the whole blob")
                for chunk in _chunks(resp, self.meter):
                    offset += len(chunk)
                    yield chunk
                if offset <= last:
                    raise TransientError(f"body ended at byte {offset} of {last + 1}")
                resp.close()
                return
            except (*_BROKEN, TransientError) as exc:
                resp.close()
                err = exc if isinstance(exc, TransientError) else _broken(exc)
                if not resumable:
                    raise err from None
                failures += 1
                self.resumes += 1
                self.policy.pause(f"GET {self.digest[:19]} (resuming at byte {offset})", failures, err)
                resp = self._open(offset, last)

    def _stream(self, start: int, end: int | None) -> Iterator[Chunk]:
        resp = self._open(start, None if start == 0 else end)
        if start and resp.status_code != 206:
            yield from self._skip_then_stream(resp, start)
            return
        yield from self._consume(resp, start, end)

    # -- parallel bounded ranges ----------------------------------------------------------------

    def _read_range(self, resp: requests.Response, start: int, end: int, resumable: bool = True) -> Chunk:
        """The bytes start..end of `resp`'s body in one pooled buffer (`remote.buffers`), which the
        caller hands on whole. A break reopens the range at the byte where it broke."""
        length = end - start + 1
        buf = POOL.take(max(length, self.settings.chunk_size))  # the last, shorter range too: one bucket
        view = memoryview(buf)[:length]
        got = 0
        failures = 0
        while True:
            try:
                if resp.status_code == 200 and start + got > 0:
                    raise TransientError("the source answered a resumed range with the whole blob")
                try:
                    got += _fill(resp, view[got:])
                except _Partial as part:
                    got += part.got
                    raise _broken(part.cause) from None
                if got < length:
                    raise TransientError(f"body ended at byte {start + got} of {end + 1}")
                resp.close()
                return buf if length == len(buf) else view
            except TransientError as err:
                resp.close()
                if not resumable:
                    raise
                failures += 1
                self.resumes += 1
                self.policy.pause(f"GET {self.digest[:19]} (resuming at byte {start + got})", failures, err)
                resp = self._open(start + got, end)

    def _fetch(self, start: int, end: int) -> list[Chunk]:
        if len(self.replicas.members) == 1:
            return [self._read_range(self._open(start, end), start, end)]
        i, resp = self._open_replica(start, end)
        began = time.monotonic()
        pieces: list[Chunk] = []
        try:
            pieces.append(self._read_range(resp, start, end, resumable=False))
        except TransientError:
            # That replica broke mid-range: the range is fetched again whole, from whichever is best
            # now; when every replica has failed twice, the reader fails (the caller hands on).
            self.replicas.done(i, 0, time.monotonic() - began, failed=True)
            if self.replicas.all_failed():
                raise
            return self._fetch(start, end)
        self.replicas.done(i, sum(len(p) for p in pieces), time.monotonic() - began, failed=False)
        return pieces

    def _parallel(self, first: requests.Response, start: int) -> Iterator[Chunk]:
        """Ranges in order through a read-ahead window. Each range in flight (or fetched and not yet
        handed on) holds one slot of the shared budget. A reader waits for a slot only while it holds
        none, so readers sharing the budget cannot deadlock each other.

        Flows (ranges actually downloading) and slots (memory) are separate: `flows.target` ranges
        download at once while up to `window` are held, so a range that finished early does not idle
        a connection while an earlier one completes (head-of-line waiting)."""
        s = self.settings
        bounds = [(a, min(a + s.chunk_size, self.size) - 1) for a in range(start, self.size, s.chunk_size)]
        flows = FlowCount(s)
        with cf.ThreadPoolExecutor(max_workers=s.window, thread_name_prefix="range") as pool:
            pending: dict[int, cf.Future[list[Chunk]]] = {
                0: pool.submit(lambda: [self._read_range(first, start, bounds[0][1])])}
            pending[0].add_done_callback(flows.callback(bounds[0][1] - bounds[0][0] + 1))
            submitted = 1

            def read_ahead() -> None:
                nonlocal submitted
                while (submitted < len(bounds) and len(pending) < s.window
                       and sum(not f.done() for f in pending.values()) < flows.target):
                    if not self.budget.acquire(blocking=not pending):
                        return
                    a, b = bounds[submitted]
                    pending[submitted] = fut = pool.submit(self._fetch, a, b)
                    fut.add_done_callback(flows.callback(b - a + 1))
                    submitted += 1

            try:
                for i in range(len(bounds)):
                    read_ahead()
                    while not pending[i].done():
                        # Wake when any range lands: a free flow is refilled without waiting for i.
                        cf.wait([f for f in pending.values() if not f.done()], timeout=1.0,
                                return_when=cf.FIRST_COMPLETED)
                        read_ahead()
                    pieces = pending[i].result()
                    got = sum(len(p) for p in pieces)
                    expected = bounds[i][1] - bounds[i][0] + 1
                    if got != expected:
                        raise TransientError(f"range {bounds[i][0]}-{bounds[i][1]} returned {got} bytes")
                    yield from pieces
                    # Only now is the slot free: a reader closed mid-yield releases it in `finally`.
                    del pending[i], pieces  # the pool may hand the buffer out again once the consumer lets go
                    self.budget.release()
                    flows.adjust(time.monotonic())
                self.flows_used = flows.history
            finally:
                for fut in pending.values():
                    fut.cancel()
                for _ in pending:
                    self.budget.release()


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
