"""The node mirror's counters since it started, in Prometheus' text format (`/metrics`): these
only grow while the process runs, so they are counters; the cache's fill is a gauge."""

from __future__ import annotations

import threading
from collections import Counter


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.events: Counter[str] = Counter()
        self.bytes_served: Counter[str] = Counter()  # by how: cache (sendfile), fill, direct
        self.upstream_bytes: Counter[tuple[str, str]] = Counter()  # by (kind, registry)
        self.upstream_seconds: dict[tuple[str, str], float] = {}

    def count(self, event: str, n: int = 1) -> None:
        with self._lock:
            self.events[event] += n

    def served(self, how: str, n: int) -> None:
        with self._lock:
            self.bytes_served[how] += n

    def upstream(self, kind: str, registry: str, n: int, seconds: float) -> None:
        with self._lock:
            self.upstream_bytes[(kind, registry)] += n
            self.upstream_seconds[(kind, registry)] = self.upstream_seconds.get((kind, registry), 0.0) + seconds

    def render(self, cache_bytes: int, cache_limit: int, evicted: int, tampered: int) -> str:
        out: list[str] = []

        def metric(name: str, kind: str, text: str, samples: list[tuple[str, float]]) -> None:
            out.extend([f"# HELP {name} {text}", f"# TYPE {name} {kind}"])
            out.extend(f"{name}{labels} {int(v) if float(v).is_integer() else v}" for labels, v in samples)

        with self._lock:
            events = dict(self.events)
            served = dict(self.bytes_served)
            up = dict(self.upstream_bytes)
            secs = dict(self.upstream_seconds)
        for event, text in (("pulls", "Tags served (one per pull)."), ("hits", "Blob requests served from the cache."),
                            ("misses", "Blob requests not in the cache."),
                            ("pass_through", "Blobs served without caching (no room)."),
                            ("check_failed", "Tags refused: the Hub refused the check or is unavailable."),
                            ("handoffs", "Fills handed from a slow source to the next one."),
                            ("refused", "Requests for repositories this mirror does not serve.")):
            metric(f"lanmirror_node_{event}_total", "counter", text, [("", events.get(event, 0))])
        metric("lanmirror_node_served_bytes_total", "counter", "Blob bytes sent to daemons, by how.",
               [(f'{{how="{h}"}}', served.get(h, 0)) for h in ("cache", "fill", "direct")])
        metric("lanmirror_node_upstream_bytes_total", "counter", "Blob bytes read from upstream, by source.",
               [(f'{{kind="{k}",registry="{r}"}}', n) for (k, r), n in sorted(up.items())])
        metric("lanmirror_node_upstream_seconds_total", "counter", "Seconds of upstream reads, by source.",
               [(f'{{kind="{k}",registry="{r}"}}', round(n, 3)) for (k, r), n in sorted(secs.items())])
        metric("lanmirror_node_cache_bytes", "gauge", "Bytes of blobs in the cache.", [("", cache_bytes)])
        metric("lanmirror_node_cache_limit_bytes", "gauge", "The cache's size cap.", [("", cache_limit)])
        metric("lanmirror_node_cache_evicted_total", "counter", "Blobs evicted, least recently used first.",
               [("", evicted)])
        metric("lanmirror_node_cache_tampered_total", "counter", "Cached blobs found altered on disk and removed.",
               [("", tampered)])
        return "\n".join(out) + "\n"
