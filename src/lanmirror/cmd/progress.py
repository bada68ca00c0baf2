"""Progress for long transfers: a live line on a terminal, a periodic log line in CI logs.

Tens of GB move through here; a silent job looks hung, and a line per chunk floods the log.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import TextIO


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


class Progress:
    """Thread-safe byte counter that reports rate and ETA."""

    def __init__(self, label: str, total: int = 0, *, stream: TextIO | None = None, interval: float | None = None):
        self.label = label
        self.total = total
        self.done = 0
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty() and not os.environ.get("GITHUB_ACTIONS")
        self.interval = interval if interval is not None else (0.2 if self.live else 10.0)
        self.started = time.monotonic()
        self._last = self.started  # first line after one interval, not on the first byte
        self._lock = threading.Lock()

    def set(self, done: int, total: int) -> None:
        with self._lock:
            self.done, self.total = done, max(total, self.total)
            now = time.monotonic()
            if now - self._last >= self.interval:
                self._last = now
                self._emit(now)

    def _line(self, now: float) -> str:
        elapsed = max(now - self.started, 1e-6)
        rate = self.done / elapsed
        line = f"{self.label}: {human_bytes(self.done)}"
        if self.total:
            pct = 100.0 * self.done / self.total
            eta = (self.total - self.done) / rate if rate > 0 else 0
            line += f" / {human_bytes(self.total)} ({pct:.0f}%), {human_bytes(rate)}/s, ETA {eta:.0f}s"
        else:
            line += f", {human_bytes(rate)}/s"
        return line

    def _emit(self, now: float) -> None:
        if self.live:
            self.stream.write("\r\033[K" + self._line(now))
        else:
            self.stream.write(self._line(now) + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.live and self._last > self.started:
            self.stream.write("\r\033[K")
            self.stream.flush()
