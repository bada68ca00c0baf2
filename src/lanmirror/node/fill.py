"""One upstream read of a blob, shared: the first client's request starts it, on a thread, into a
temp file of the store; every client asking for the blob meanwhile is served from that file as
the bytes land, not after the whole blob. Only once every byte hashed right is the file renamed
into the cache; a read that fails or hashes wrong, or a write that finds the disk full, is never
cached, and its clients' connections are cut before their last byte (the daemon retries the layer,
or falls back to the Hub by itself)."""

from __future__ import annotations

import errno
import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from lanmirror.errors import DigestMismatch
from lanmirror.remote.hashing import Chunk, HashingReader

log = logging.getLogger("lanmirror.node")


class Fill:
    def __init__(self, digest: str, size: int, temp: Path, read: Callable[[], Iterator[Chunk]],
                 admit: Callable[[Path], Path], abandon: Callable[[BaseException], None],
                 mismatch: Callable[[str], None] = lambda why: None) -> None:
        self.digest = digest
        self.size = size
        self.temp = temp
        self.final: Path | None = None
        self.written = 0
        self.error = ""
        self.done = threading.Event()
        self.seconds = 0.0
        self._read = read
        self._admit = admit
        self._abandon = abandon
        self._mismatch = mismatch  # told why, so that the source proven guilty is not asked again

    def start(self) -> Fill:
        threading.Thread(target=self._run, name=f"fill {self.digest[:19]}", daemon=True).start()
        return self

    def _run(self) -> None:
        started = time.monotonic()
        try:
            with open(self.temp, "wb") as f:
                for chunk in HashingReader(self._read(), self.digest):  # DigestMismatch after the last chunk
                    f.write(chunk)
                    f.flush()  # readers open the file by name and read what the kernel has
                    self.written += len(chunk)
            self.seconds = time.monotonic() - started  # known before the admission logs and records it
            self.final = self._admit(self.temp)
        except Exception as exc:  # every failure ends the same way: nothing cached, clients cut
            if isinstance(exc, DigestMismatch):
                self._mismatch(f"{self.written} of {self.size} bytes: {exc}")
            self.error = f"{type(exc).__name__}: {exc}"
            # A full disk is the caller's one warning (its clients are then served without caching).
            full = isinstance(exc, OSError) and exc.errno == errno.ENOSPC
            log.log(logging.INFO if full else logging.WARNING, "blob %s: the fill failed (%s); not cached",
                    self.digest[:19], self.error)
            self.temp.unlink(missing_ok=True)
            self._abandon(exc)
        finally:
            self.seconds = self.seconds or time.monotonic() - started
            self.done.set()

    def available(self) -> int:
        """Bytes that clients may read now: all of them once the blob is verified and cached; until
        then all but the last, so that a blob that hashes wrong never reaches a client whole (its
        connection is cut one byte short, and the daemon retries the layer instead of failing it)."""
        return self.size if self.final is not None else min(self.written, self.size - 1)
