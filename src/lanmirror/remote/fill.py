"""Reading a response body straight into pooled buffers, counting exactly the bytes that landed
before a break, so that a resume starts at the byte where the connection broke."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator

import requests
import urllib3.exceptions

from lanmirror.errors import TransientError
from lanmirror.remote.buffers import POOL
from lanmirror.remote.hashing import CHUNK, Chunk

BROKEN = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
           urllib3.exceptions.ProtocolError, urllib3.exceptions.ReadTimeoutError, ConnectionError, TimeoutError)


def read_chunks(resp: requests.Response, meter: StreamMeter, size: int = CHUNK) -> Iterator[Chunk]:
    """Body chunks of up to `size`, each read straight into a pooled buffer (`fill`) and counted
    by `meter`. A break hands on the bytes that landed first, then raises, so a resume starts at
    the byte where the connection broke."""
    while True:
        buf = POOL.take(size)
        try:
            n = fill(resp, memoryview(buf)[:size])
        except Partial as part:
            meter.add(part.got)
            if part.got:
                yield memoryview(buf)[:part.got]
            raise broken_error(part.cause) from None
        meter.add(n)
        if n:
            yield buf if n == len(buf) else memoryview(buf)[:n]
        if n < size:
            return


def broken_error(exc: BaseException) -> TransientError:
    return TransientError(f"connection broke mid-body: {type(exc).__name__}")


class Partial(Exception):
    """A body broke after `got` bytes had landed in the buffer."""

    def __init__(self, got: int, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.got = got
        self.cause = cause


def fill(resp: requests.Response, view: memoryview) -> int:
    """Read the body of `resp` into `view` until it is full or the body ends; the bytes count.

    Straight into the caller's buffer, one socket read at a time (`_readinto1`), instead of one
    1 MiB `read1` string per socket read: on a slow WAN flow each read brings a few tens of kB, and
    allocating, resizing and freeing a 1 MiB string for each was most of the reader's CPU
    (docs/benchmarks.md). A break raises `Partial` with the exact count that landed, so a resume
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
        raise Partial(got, exc) from None
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
    """`fill` for the shapes http.client cannot read into a buffer (chunked transfer encoding):
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
    except BROKEN as exc:
        raise Partial(got, exc) from None
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
