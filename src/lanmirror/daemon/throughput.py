"""How fast a daemon pull is really downloading, from its progress stream.

A stall guard catches a registry that sends nothing; it does not catch one that sends 200 KB/s (the
original's 4 h 16 min pull). This meter counts only download bytes: a layer that is extracting or
verifying is done downloading, so a big layer's minutes of extraction never look like slowness.
The clock only runs while some layer still has bytes to download."""

from __future__ import annotations

import collections
import threading
from dataclasses import dataclass
from typing import Any

# Statuses after which a layer has all its bytes (docker 20.10 to 29, classic and containerd stores).
_DOWNLOADED = ("download complete", "verifying checksum", "extracting", "pull complete", "already exists")
_WAITING = ("pulling fs layer", "waiting", "downloading")


@dataclass(frozen=True)
class Verdict:
    rate: float  # bytes/s over the window
    remaining: int  # bytes still to download, of the layers whose size is known
    completed: int  # bytes of layers fully downloaded
    # Layers that finished without the daemon ever saying their size (the containerd store reports
    # a small layer only as "Download complete"); whoever knows the manifest can size them.
    unsized: tuple[str, ...] = ()


class PullMeter:
    def __init__(self, window: float) -> None:
        self.window = window
        self._layers: dict[str, tuple[int, int, bool]] = {}  # id → (current, total, downloaded)
        self._samples: collections.deque[tuple[float, int]] = collections.deque()
        self._lock = threading.Lock()  # fed by the stream reader, ticked by the watchdog

    def feed(self, msg: dict[str, Any]) -> None:
        with self._lock:
            self._feed(msg)

    def _feed(self, msg: dict[str, Any]) -> None:
        layer = msg.get("id")
        status = str(msg.get("status", "")).lower()
        if not layer or not status:
            return
        current, total, done = self._layers.get(layer, (0, 0, False))
        detail = msg.get("progressDetail") or {}
        if status.startswith(_DOWNLOADED):
            done = True
            current = total = max(total, int(detail.get("total") or 0), current)
        elif status.startswith(_WAITING):
            total = int(detail.get("total") or total)
            current = int(detail.get("current") or current)
        else:
            return
        self._layers[layer] = (current, total, done)

    @property
    def downloaded(self) -> int:
        return sum(current for current, _, _ in self._layers.values())

    @property
    def downloading(self) -> bool:
        """Some layer still has bytes to come (a layer of unknown size counts)."""
        return any(not done for _, _, done in self._layers.values())

    def tick(self, now: float) -> Verdict | None:
        """Sample the byte count; once bytes have been due for a whole window, the rate over it."""
        with self._lock:
            return self._tick(now)

    def _tick(self, now: float) -> Verdict | None:
        if not self.downloading:
            self._samples.clear()  # extraction or verification: the clock stops
            return None
        self._samples.append((now, self.downloaded))
        while len(self._samples) > 1 and self._samples[1][0] <= now - self.window:
            self._samples.popleft()
        start, start_bytes = self._samples[0]
        if now - start < self.window:
            return None
        rate = (self.downloaded - start_bytes) / (now - start)
        remaining = sum(total - current for current, total, done in self._layers.values() if not done and total)
        completed = sum(total for _, total, done in self._layers.values() if done)
        unsized = tuple(layer for layer, (_, total, done) in self._layers.items() if done and not total)
        return Verdict(rate, remaining, completed, unsized)
