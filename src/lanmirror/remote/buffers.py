"""Reusable byte buffers for the blob readers.

Every byte of a copy passes through a buffer the size of a range (2 MiB) or of a stream read
(1 MiB). Allocated fresh, each one is its own mmap (the CLI fixes glibc's mmap threshold at 128 KiB
to keep the heap from fragmenting, `cmd/heap.py`), so every 4 KiB of it costs a page fault and
every free an munmap: on a WAN copy that was half of lanmirror's CPU (docs/benchmarks.md). A pool
keeps a bounded number of them mapped and hands them out again.

A buffer goes back into the pool only when nothing else refers to it any more. Readers hand their
buffers on to a consumer they do not control (an upload, the endpoint's held-back last chunk, a
tee's queue, a caller's `b"".join`): whoever keeps a chunk keeps its buffer, and the pool makes a
new one instead. The check is CPython's reference count, the one implementation lanmirror ships on.
"""

from __future__ import annotations

import sys
import threading

# References to a buffer that nobody else holds, as seen inside `BufferPool.give`: the caller's
# variable, give's parameter, and getrefcount's own argument.
_UNSHARED = 3


class BufferPool:
    """Up to `keep` idle buffers of each size."""

    def __init__(self, keep: int = 32) -> None:
        self.keep = keep
        self._lock = threading.Lock()
        self._idle: dict[int, list[bytearray]] = {}
        self.made = 0  # buffers allocated (for tests and the profile)
        self.reused = 0

    def take(self, size: int) -> bytearray:
        with self._lock:
            idle = self._idle.get(size)
            if idle:
                self.reused += 1
                return idle.pop()
            self.made += 1
        return bytearray(size)

    def give(self, buf: bytearray) -> bool:
        """Return `buf` for reuse if no one else refers to it; True if it was kept."""
        if sys.getrefcount(buf) > _UNSHARED:
            return False
        with self._lock:
            idle = self._idle.setdefault(len(buf), [])
            if len(idle) >= self.keep:
                return False
            idle.append(buf)
            return True


POOL = BufferPool()
