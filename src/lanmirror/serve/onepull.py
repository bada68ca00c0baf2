"""The endpoint of one pull, kept up until told to stop: what runs inside the short-lived helper
container on the daemon's host network when the job's loopback is not the daemon's (docker outside
of docker). Its registry reads happen there, so the LAN the daemon reaches is the LAN it reads.

It speaks JSON lines on its standard output, the only channel the job has to it through the
daemon's socket: `{"ready": …, "port": …, "prefix": …}` once the daemon can pull, and
`{"done": …, "sources": […]}` with what each source delivered when it stops."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from lanmirror.remote.ranges import RangeSettings
from lanmirror.retry import RetryPolicy
from lanmirror.serve.endpoint import Endpoint
from lanmirror.serve.feed import BlobSources, Source, load_manifest
from lanmirror.serve.image import ServedImage

Say = Callable[[dict[str, Any]], None]


def serve_pull(repo: str, digest: str, sources: list[Source], policy: RetryPolicy, settings: RangeSettings, *,
               manifest_deadline: float, stop: threading.Event, until: float, say: Say) -> int:
    """Serve `digest` of `repo` from `sources` on 127.0.0.1 until `stop` is set or the monotonic
    clock reaches `until` (a killed job leaves no helper behind for long); returns the bytes served."""
    image = ServedImage(lambda d: load_manifest(sources, d, manifest_deadline))
    feed = BlobSources(sources, policy, settings)
    with Endpoint(repo, image, feed) as endpoint:
        top = load_manifest(sources, digest, manifest_deadline)
        image.add_top(top)
        layers = [b.size for b in top.blobs()[1:] if b.distributable] if not top.is_index else []
        say({"ready": True, "port": endpoint.port, "prefix": endpoint.prefix, "probe": image.probe.digest,
             "biggest_layer": max(layers) if layers else None})
        stop.wait(max(0.0, until - time.monotonic()))
        served = endpoint.served
    say({"done": True, "served": served, "timed_out": not stop.is_set(),
         "sources": [{"kind": s.kind, "name": s.name, "bytes": s.bytes, "seconds": round(s.seconds, 3),
                      "failures": s.failures, "bad": s.bad} for s in sources]})
    return served
