"""`lanmirror serve`: build the node mirror from its settings and run it until SIGTERM, letting the
pulls in flight finish (up to `grace` seconds)."""

from __future__ import annotations

import logging
from pathlib import Path

from aiohttp import web

from lanmirror.node.app import Node, make_app
from lanmirror.node.records import Recorder
from lanmirror.node.store import BlobStore
from lanmirror.node.upstream import Upstream

log = logging.getLogger("lanmirror.node")


def serve(upstream: Upstream, repos: list[str], cache_dir: Path, cache_size: int, host: str, port: int, *,
          grace: float = 60.0, record_file: str | None = None) -> None:
    store = BlobStore(cache_dir, cache_size)
    node = Node(set(repos), upstream, store, record=Recorder(record_file))
    log.info("lanmirror node mirror on http://%s:%d for %s; cache %s (%d MB of %d MB used); LAN %s; Hub %s",
             host, port, ", ".join(sorted(repos)), cache_dir, store.used_bytes >> 20, cache_size >> 20,
             ", ".join(upstream.lans) or "(none)", upstream.hub)
    web.run_app(make_app(node), host=host, port=port, shutdown_timeout=grace, print=None,
                access_log=None, handle_signals=True)
    log.info("lanmirror node mirror stopped")
