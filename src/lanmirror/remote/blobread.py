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
import logging
import socket
import threading
import time
from collections.abc import Iterator

import requests

from lanmirror.errors import SourceAbandoned, TransientError
from lanmirror.remote.buffers import POOL
from lanmirror.remote.fill import BROKEN, STREAMS, Partial, StreamMeter, broken_error, fill, read_chunks
from lanmirror.remote.hashing import CHUNK, Chunk
from lanmirror.remote.ranges import FlowCount, RangeSettings
from lanmirror.remote.registry import Registry
from lanmirror.remote.replicas import Replicas
from lanmirror.retry import RetryPolicy

log = logging.getLogger("lanmirror.remote.blobread")

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
        self.aborted = threading.Event()
        self._live: list[requests.Response] = []  # the responses open now, for `abort`
        self._live_lock = threading.Lock()

    def abort(self) -> None:
        """Leave this source now (a watchdog found it too slow): shut the sockets of the responses
        being read, so that a read blocked on a dripping source wakes, and raise SourceAbandoned
        from the reader instead of resuming on the same source."""
        self.aborted.set()
        with self._live_lock:
            live = list(self._live)
        for resp in live:
            _shutdown(resp)

    def _opened(self, resp: requests.Response) -> requests.Response:
        with self._live_lock:
            self._live = [*[r for r in self._live if r.raw is not None and not r.raw.closed][-64:], resp]
        if self.aborted.is_set():
            _shutdown(resp)
        return resp

    def _check_aborted(self) -> None:
        if self.aborted.is_set():
            raise SourceAbandoned(f"{self.registry.name}: left for being too slow")

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
            for chunk in read_chunks(resp, self.meter, min(CHUNK, max(64 << 10, s.probe // 4))):
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
        except (*BROKEN, TransientError) as exc:
            if offset == self.start:
                raise (exc if isinstance(exc, TransientError) else broken_error(exc)) from None
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
        self._check_aborted()
        what = f"GET {self.digest[:19]} from byte {start}"
        return self._opened(self.policy.call(
            lambda: self.registry.open_blob(self.repo, self.digest, start=start, end=end), what))

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

        self._check_aborted()
        resp = self.policy.call(attempt, f"GET {self.digest[:19]} bytes {start}-{end}")
        return chosen[0], self._opened(resp)

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
                for chunk in read_chunks(resp, self.meter):
                    offset += len(chunk)
                    yield chunk
                if offset <= last:
                    raise TransientError(f"body ended at byte {offset} of {last + 1}")
                resp.close()
                return
            except (*BROKEN, TransientError) as exc:
                resp.close()
                self._check_aborted()
                err = exc if isinstance(exc, TransientError) else broken_error(exc)
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
                    got += fill(resp, view[got:])
                except Partial as part:
                    got += part.got
                    raise broken_error(part.cause) from None
                if got < length:
                    raise TransientError(f"body ended at byte {start + got} of {end + 1}")
                resp.close()
                return buf if length == len(buf) else view
            except TransientError as err:
                resp.close()
                self._check_aborted()
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


def _shutdown(resp: requests.Response) -> None:
    """Shut the socket under a streaming response (a blocked read on it wakes at once)."""
    try:
        # urllib3's response → http.client's → the socket file → its raw SocketIO → the socket
        sock = getattr(getattr(getattr(getattr(resp.raw, "_fp", None), "fp", None), "raw", None), "_sock", None)
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)
    except Exception:  # already closed, or a shape without a socket: nothing to wake
        pass
