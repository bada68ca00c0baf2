"""Reusable byte buffers for the blob readers.

Every byte of a copy passes through a buffer the size of a range (2 MiB) or of a stream read
(1 MiB). Allocated fresh, each one is its own mmap (the CLI fixes glibc's mmap threshold at 128 KiB
to keep the heap from fragmenting, `cmd/heap.py`) that is zero-filled page by page, one page fault
per 4 KiB, and unmapped when freed: on a copy that was the largest share of lanmirror's CPU
(docs/benchmarks.md). The pool keeps the buffers it made and hands them out again.

A buffer is handed out again only once nothing but the pool refers to it. Readers pass their
buffers on to consumers they do not control (an upload whose HTTP library keeps the last chunk in a
loop variable, the endpoint's held-back last chunk, a tee's queues, a caller's `b"".join`), so no
one can say when a chunk is done with; CPython's reference count can, and it is checked under the
pool's lock, where no one else can pick the buffer up. lanmirror ships on CPython only.
"""

from __future__ import annotations

import sys
import threading

# References to a tracked buffer that nobody else holds, as counted in `take`: the pool's list,
# the loop variable, and getrefcount's own argument.
_UNSHARED = 3
_SMALLEST = 64 << 10


def bucket(size: int) -> int:
    """The buffer size that serves a request of `size` bytes: rounded up to 64 KiB. Readers ask for
    their standard size (a range, a stream read) even for a blob's shorter last range, so that one
    bucket serves them all and no buffer is mapped larger than what is used."""
    return max(_SMALLEST, -(-size // _SMALLEST) * _SMALLEST)


class BufferPool:
    """Buffers by size, at most `keep` tracked per size; beyond that, plain ones."""

    def __init__(self, keep: int = 32) -> None:
        self.keep = keep
        self._lock = threading.Lock()
        self._tracked: dict[int, list[bytearray]] = {}
        self.made = 0  # buffers allocated (for the tests and the profile)
        self.reused = 0

    def take(self, size: int) -> bytearray:
        """A buffer of at least `size` bytes (`bucket(size)`), not zeroed when reused."""
        want = bucket(size)
        with self._lock:
            tracked = self._tracked.setdefault(want, [])
            for buf in tracked:
                if sys.getrefcount(buf) == _UNSHARED:
                    self.reused += 1
                    return buf
            self.made += 1
            buf = bytearray(want)
            if len(tracked) < self.keep:
                tracked.append(buf)
            return buf

    def tracked_bytes(self) -> int:
        with self._lock:
            return sum(len(b) for bufs in self._tracked.values() for b in bufs)


POOL = BufferPool()
