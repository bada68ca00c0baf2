"""The replicas one reader spreads a blob's ranges over."""

from __future__ import annotations

import threading

from lanmirror.remote.registry import Registry


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
