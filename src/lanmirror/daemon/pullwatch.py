"""The watchdog over one pull's progress stream: no progress, too long, or too slow ends it.

The original once sat 4 h 16 min in a pull that was slow, not stalled; each guard here ends a pull
for a reason said in one line, and a slow one hands its measurements to whoever tries the next
source."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from lanmirror.daemon.throughput import PullMeter, Verdict

ProgressFn = Callable[[int, int, str], None]


@dataclass
class Guards:
    stall_timeout: float
    timeout: float
    min_rate: float  # bytes/s; 0 = no floor
    rate_window: float


@dataclass
class Progress:
    """What the stream said so far: each layer's (current, total), when the last layer finished
    downloading, and when anything last changed."""

    layers: dict[str, tuple[int, int]] = field(default_factory=dict)
    downloaded: float | None = None
    last: float = field(default_factory=time.monotonic)
    sig: tuple[Any, ...] | None = None

    def feed(self, msg: dict[str, Any]) -> None:
        detail = msg.get("progressDetail") or {}
        if msg.get("id") and detail.get("total"):
            self.layers[msg["id"]] = (int(detail.get("current") or 0), int(detail["total"]))
        if msg.get("status") in ("Download complete", "Verifying Checksum", "Already exists"):
            self.downloaded = time.monotonic()
        sig = (msg.get("id"), msg.get("status"), detail.get("current"))
        if sig != self.sig:
            self.sig, self.last = sig, time.monotonic()

    @property
    def current(self) -> int:
        return sum(c for c, _ in self.layers.values())

    @property
    def total(self) -> int:
        return sum(t for _, t in self.layers.values())


@dataclass
class Outcome:
    """How the watch ended: `reason` empty when the stream ended by itself (then `failure` holds
    what the reader raised, if anything); `slow` when the rate guards ended it."""

    progress: Progress
    started: float
    reason: str = ""
    slow: Verdict | None = None
    failure: BaseException | None = None
    reader_stopped: bool = True  # False when the reader still blocks after an abort


def watch(messages: Iterator[dict[str, Any]], abort: Callable[[], None], guards: Guards, name: str,
          consume: Callable[[Iterator[dict[str, Any]], Callable[[dict[str, Any]], None]], None],
          on_progress: ProgressFn | None = None) -> Outcome:
    """Read `messages` on a thread (through `consume`, which raises the stream's own errors) while
    this one checks the guards every 0.2 s; a guard that fires calls `abort` and waits up to 5 s
    for the reader to stop."""
    progress = Progress()
    meter = PullMeter(guards.rate_window)
    out = Outcome(progress, time.monotonic())
    done = threading.Event()

    def on_message(msg: dict[str, Any]) -> None:
        progress.feed(msg)
        meter.feed(msg)
        if on_progress:
            on_progress(progress.current, progress.total, str(msg.get("status", "")))

    def reader() -> None:
        try:
            consume(messages, on_message)
        except BaseException as exc:
            out.failure = exc
        finally:
            done.set()

    thread = threading.Thread(target=reader, name=f"pull {name}", daemon=True)
    thread.start()
    while not done.wait(0.2):
        out.reason, out.slow = verdict(guards, progress, meter.tick(time.monotonic()), out.started)
        if out.reason:
            abort()
            thread.join(5)
            out.reader_stopped = not thread.is_alive()
            return out
    return out


def verdict(guards: Guards, progress: Progress, rated: Verdict | None, started: float) -> tuple[str, Verdict | None]:
    """Why the pull must end now ("" if it need not), and the measurement behind a rate verdict."""
    now = time.monotonic()
    if now - progress.last > guards.stall_timeout:
        return f"no progress for {guards.stall_timeout:g}s", None
    if now - started > guards.timeout:
        return f"pull exceeded {guards.timeout:g}s", None
    if rated is None:
        return "", None
    if rated.rate < guards.min_rate:
        return (f"downloading at {rated.rate / 1e6:.2f} MB/s for {guards.rate_window:g}s, below the floor of "
                f"{guards.min_rate / 1e6:g} MB/s"), rated
    if rated.remaining and rated.rate > 0 and now - started + rated.remaining / rated.rate > guards.timeout:
        return (f"{rated.remaining / 1e6:.0f} MB left at {rated.rate / 1e6:.2f} MB/s cannot arrive within the "
                f"{guards.timeout:g}s pull timeout"), rated
    return "", None
