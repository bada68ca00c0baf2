"""One read of a source blob, streamed to several target writers at once.

A fleet has several LAN registries; reading the Hub once per target multiplies WAN traffic by the
number of targets. The tee reads the source once and hands each chunk to every target through a
small bounded queue (memory: targets x depth x chunk). A target that falls behind for `stall`
seconds, or whose writer gives up, is dropped: its reader raises a transient error after the bytes
already queued, so its writer starts again alone from a fresh source read, and the others are
never held back longer than that."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterable, Iterator

from lanmirror.errors import TransientError
from lanmirror.remote.hashing import Chunk

log = logging.getLogger("lanmirror.remote.blobtee")

_EOF = object()


class BlobTee:
    def __init__(self, chunks: Iterable[Chunk], targets: int, *, depth: int = 8, stall: float = 10.0) -> None:
        self._chunks = chunks
        self._queues: list[queue.Queue[object]] = [queue.Queue(depth) for _ in range(targets)]
        self._dropped = [threading.Event() for _ in range(targets)]
        self.stall = stall

    def reader(self, index: int) -> Iterator[Chunk]:
        """Target `index`'s view of the blob. Closing it early (its writer failed) drops the target."""
        q, dropped = self._queues[index], self._dropped[index]
        try:
            while True:
                try:
                    item = q.get(timeout=0.2)
                except queue.Empty:
                    if dropped.is_set():
                        raise TransientError("this target fell behind the shared source read; reading the "
                                             "source again for it alone") from None
                    continue
                if item is _EOF:
                    return
                if isinstance(item, BaseException):
                    raise item
                assert isinstance(item, (bytes, bytearray, memoryview))
                yield item
        finally:
            dropped.set()

    def dropped(self, index: int) -> bool:
        return self._dropped[index].is_set()

    def pump(self) -> None:
        """Read the source once, to the end or until every target is gone."""
        end: object = _EOF
        try:
            for chunk in self._chunks:
                live = [i for i, d in enumerate(self._dropped) if not d.is_set()]
                if not live:
                    end = None
                    break
                for i in live:
                    self._put(i, chunk)
        except BaseException as exc:  # the source failed: every target sees it
            end = exc
        finally:
            close = getattr(self._chunks, "close", None)
            if close:
                close()
        if end is not None:
            for i, dropped in enumerate(self._dropped):
                if not dropped.is_set():
                    self._put(i, end)

    def _put(self, index: int, item: object) -> None:
        try:
            self._queues[index].put(item, timeout=self.stall)
        except queue.Full:
            log.warning("target %d took nothing for %gs: dropped from the shared read", index, self.stall)
            self._dropped[index].set()
