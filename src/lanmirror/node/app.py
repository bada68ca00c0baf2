"""The HTTP face of the node mirror (aiohttp): the read-only registry API Docker Engine uses for
a mirror (`/v2/`, manifests and blobs, GET and HEAD, with Range), health, readiness and metrics.

A cached blob goes out with `FileResponse` (sendfile: the kernel copies it, so a second job on
the host is bound by its daemon's extraction, not by this process); a blob being filled streams
from the growing file as the bytes land; a blob the cache has no room for is streamed straight
from upstream. Blocking work (registry requests, hashing a file) runs on threads."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from lanmirror.errors import DigestMismatch, LanmirrorError, NotFound
from lanmirror.name import DIGEST_RE, TAG_RE
from lanmirror.node.fill import Fill
from lanmirror.node.floor import read_with_floor
from lanmirror.node.metrics import Metrics
from lanmirror.node.records import Recorder
from lanmirror.node.store import BlobStore
from lanmirror.node.upstream import CheckFailed, Upstream
from lanmirror.remote.hashing import Chunk, HashingReader
from lanmirror.remote.manifest import Manifest
from lanmirror.retry import describe
from lanmirror.serve.byterange import RangeNotSatisfiable, byte_range
from lanmirror.serve.feed import BlobSources, Provenance, Source

log = logging.getLogger("lanmirror.node")

API_HEADERS = {"Docker-Distribution-API-Version": "registry/2.0"}
STEP = 1 << 20  # bytes a client is sent per read of a filling blob
BAD_FOR = 15 * 60.0  # seconds a source proven to serve wrong bytes is left out


@dataclass
class Node:
    """What every request shares: the repositories served, upstream, the disk cache, the fills in
    progress, and the sizes of the blobs named by the manifests served (a daemon's GET needs no
    HEAD upstream first)."""

    repos: set[str]
    upstream: Upstream
    store: BlobStore
    metrics: Metrics = field(default_factory=Metrics)
    fills: dict[str, Fill] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    lans_of: dict[str, list[str]] = field(default_factory=dict)  # blob → the replicas whose manifest named it
    full_warned: bool = False
    record: Recorder = field(default_factory=lambda: Recorder(None))
    # Sources proven to have served wrong bytes (registry → until when they are left out), and the
    # blobs whose last read mismatched with the blame undecided (read one source at a time).
    bad: dict[str, float] = field(default_factory=dict)
    solo: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"errors": [{"code": code, "message": message}]}, status=status, headers=API_HEADERS)


def make_app(node: Node) -> web.Application:
    app = web.Application()
    app["node"] = node
    app.router.add_route("GET", "/v2/", v2)
    app.router.add_route("HEAD", "/v2/", v2)
    app.router.add_route("*", "/v2/{name:.+}/manifests/{ref}", manifests)
    app.router.add_route("*", "/v2/{name:.+}/blobs/{digest}", blobs)
    app.router.add_route("*", "/v2/{tail:.*}", unsupported)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    return app


async def v2(request: web.Request) -> web.Response:
    return web.json_response({}, headers=API_HEADERS)


async def unsupported(request: web.Request) -> web.Response:
    return _error(404 if request.method in ("GET", "HEAD") else 405, "UNSUPPORTED",
                  "this is a read-only pull-through mirror: manifests and blobs only")


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


async def readyz(request: web.Request) -> web.Response:
    node: Node = request.app["node"]
    if not os.access(node.store.tmp, os.W_OK):
        return web.Response(status=503, text=f"cache {node.store.root} is not writable\n")
    return web.Response(text="ready\n")


async def metrics(request: web.Request) -> web.Response:
    node: Node = request.app["node"]
    text = node.metrics.render(node.store.used_bytes, node.store.limit, node.store.evicted, node.store.tampered)
    return web.Response(text=text, content_type="text/plain", charset="utf-8")


def _served(request: web.Request) -> tuple[Node, str] | web.Response:
    node: Node = request.app["node"]
    if request.method not in ("GET", "HEAD"):
        return _error(405, "UNSUPPORTED", "this is a read-only pull-through mirror: no push")
    name = request.match_info["name"]
    if name not in node.repos:
        node.metrics.count("refused")
        return _error(404, "NAME_UNKNOWN", f"{name} is not served by this mirror")
    return node, name


async def manifests(request: web.Request) -> web.Response:
    served = _served(request)
    if isinstance(served, web.Response):
        return served
    node, repo = served
    ref = request.match_info["ref"]
    loop = asyncio.get_running_loop()
    started = time.monotonic()
    try:
        if DIGEST_RE.fullmatch(ref):
            lans = node.lans_of.get(ref)
            manifest = await loop.run_in_executor(None, node.upstream.manifest, repo, ref, lans)
            note = ""
        elif TAG_RE.fullmatch(ref):
            resolved = await loop.run_in_executor(None, node.upstream.resolve, repo, ref)
            manifest = await loop.run_in_executor(None, node.upstream.manifest, repo, resolved.digest, resolved.lans)
            lans = resolved.lans
            where = f"lan {', '.join(lans)}" if lans else f"hub {node.upstream.hub}"
            checked = "verified against the Hub" if resolved.verified else "UNVERIFIED: the Hub is unavailable"
            note = f"{where}, {checked}"
        else:
            return _error(400, "MANIFEST_INVALID", "not a tag or a digest")
    except NotFound as exc:
        return _error(404, "MANIFEST_UNKNOWN", str(exc))
    except CheckFailed as exc:
        log.warning("pull %s:%s refused: %s", repo, ref, exc)
        node.metrics.count("check_failed")
        return _error(502, "UNAVAILABLE", str(exc))
    except (LanmirrorError, OSError) as exc:
        return _error(502, "UNAVAILABLE", describe(exc))
    learn(node, manifest, lans or [])
    if note:  # one line per pull: a pull starts with its tag
        seconds = time.monotonic() - started
        log.info("pull %s:%s → %s from %s (%.2fs)", repo, ref, manifest.digest[:19], note, seconds)
        node.metrics.count("pulls")
        node.record({"event": "pull", "repo": repo, "tag": ref, "digest": manifest.digest,
                     "verified": resolved.verified, "lans": lans}, seconds)
    headers = {**API_HEADERS, "Docker-Content-Digest": manifest.digest, "Content-Type": manifest.media_type,
               "Content-Length": str(len(manifest.body))}
    if request.method == "HEAD":
        return web.Response(status=200, headers=headers)
    return web.Response(status=200, body=manifest.body, headers=headers)


def learn(node: Node, manifest: Manifest, lans: list[str]) -> None:
    """Remember the sizes (and replicas) of the blobs a served manifest names."""
    if manifest.is_index:
        return
    with node.lock:
        for blob in manifest.blobs():
            node.sizes[blob.digest] = blob.size
            if lans:
                node.lans_of[blob.digest] = lans
        node.lans_of.setdefault(manifest.digest, lans)


async def blobs(request: web.Request) -> web.StreamResponse:
    served = _served(request)
    if isinstance(served, web.Response):
        return served
    node, repo = served
    digest = request.match_info["digest"]
    if not DIGEST_RE.fullmatch(digest):
        return _error(400, "DIGEST_INVALID", "not a digest")
    loop = asyncio.get_running_loop()
    headers = {**API_HEADERS, "Docker-Content-Digest": digest, "Content-Type": "application/octet-stream"}
    cached = await loop.run_in_executor(None, node.store.lookup, digest)
    if cached is not None:
        node.metrics.count("hits")
        node.metrics.served("cache", node.store.size_of(digest) or 0)
        return web.FileResponse(cached, headers=headers)
    node.metrics.count("misses")
    with node.lock:
        fill = node.fills.get(digest)
        size = node.sizes.get(digest)
    sources: list[Source] | None = None
    if fill is None and size is None:
        sources, size = await loop.run_in_executor(None, node.upstream.blob_sources, repo, digest)
        if size is None:
            return _error(404, "BLOB_UNKNOWN", f"{digest} is on no source")
    size = fill.size if fill is not None else size
    assert size is not None
    try:
        window = byte_range(request.headers.get("Range"), size)
    except RangeNotSatisfiable:
        return web.Response(status=416, headers={**API_HEADERS, "Content-Range": f"bytes */{size}"})
    start, end = window or (0, size - 1)
    headers["Accept-Ranges"] = "bytes"
    if request.method == "HEAD":
        return web.Response(status=200, headers={**headers, "Content-Length": str(size)})
    if fill is None:
        started = await loop.run_in_executor(None, start_fill, node, repo, digest, size, sources)
        if isinstance(started, Path):
            node.metrics.served("cache", size)
            return web.FileResponse(started, headers=headers)
        fill = started
    resp = web.StreamResponse(status=206 if window else 200, headers=headers)
    resp.content_length = end - start + 1
    if window:
        resp.headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    await resp.prepare(request)
    try:
        if fill is None:  # no room in the cache: straight from upstream, once for this client
            async for chunk in _direct(node, repo, digest, size, start, end, sources):
                await resp.write(chunk)
        else:
            await _from_fill(node, fill, resp, start, end)
    except CutShort as exc:
        # Expected, and said once already by the fill: one line, no traceback. The connection is
        # dropped before the last byte, so the daemon retries the layer (or goes to the Hub).
        log.info("cut %s's read of %s short: %s", request.remote, digest[:19], exc)
        _drop(request)
        return resp
    except ConnectionError as exc:  # the client went away
        log.debug("client %s left during %s: %s", request.remote, digest[:19], exc)
        _drop(request)
        return resp
    await resp.write_eof()
    return resp


class CutShort(Exception):
    """The bytes a client was being sent cannot be finished (the upstream read failed, hashed
    wrong, or met a full disk)."""


def _drop(request: web.BaseRequest) -> None:
    if request.transport is not None:
        request.transport.abort()


def start_fill(node: Node, repo: str, digest: str, size: int, sources: list[Source] | None) -> Fill | Path | None:
    """The fill of `digest`: the running one, or a new one when the cache has room (None: it has
    not, and this client is served straight from upstream); the cached file if one just finished."""
    with node.lock:
        if digest in node.fills:
            return node.fills[digest]
    # A fill may have finished since the handler looked: it is admitted before it leaves `fills`.
    cached = node.store.lookup(digest)
    if cached is not None:
        return cached
    if not node.store.reserve(size):
        if not node.full_warned:
            log.warning("the cache (%s) has no room for %s (%d MB): %s; serving it without caching (said once)",
                        node.store.root, digest[:19], size >> 20, node.store.refusal)
            node.full_warned = True
        node.metrics.count("pass_through")
        return None
    if sources is None:
        sources = _sources(node, repo, digest)
    sources = _usable(node, sources)
    feed = BlobSources(sources, node.upstream.policy, node.upstream.settings)
    feed.solo = node.solo  # what one fill learned about a blob, the next fill of it knows
    provenance = Provenance()

    def handoff(source: Source, rate: float) -> None:
        node.metrics.count("handoffs")
        log.warning("%s %s delivered %.2f MB/s of %s over %gs, below the floor of %g MB/s: the rest from the next "
                    "source", source.kind, source.name, rate / 1e6, digest[:19], node.upstream.rate_window,
                    node.upstream.min_rate / 1e6)

    def read() -> Iterator[Chunk]:
        yield from read_with_floor(feed, digest, size, provenance, node.upstream.min_rate,
                                   node.upstream.rate_window, handoff)

    def mismatch(why: str) -> None:
        blame(node, feed, digest, provenance, why)

    def admit(temp: Path) -> Path:
        final = node.store.admit(digest, temp, size)
        done(node, digest, sources or [], fill)
        return final

    def abandon(exc: BaseException) -> None:
        node.store.release(size)
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            node.store.disk_full()
        with node.lock:
            node.fills.pop(digest, None)

    fill = Fill(digest, size, node.store.temp(digest), read, admit, abandon, mismatch)
    with node.lock:
        if digest in node.fills:  # another request started it meanwhile
            node.store.release(size)
            return node.fills[digest]
        node.fills[digest] = fill
    return fill.start()


def blame(node: Node, feed: BlobSources, digest: str, provenance: Provenance, why: str) -> None:
    """A whole read of `digest` hashed wrong: leave out the sources proven to have served it."""
    for name in feed.blame(digest, provenance, why):
        node.bad[name] = time.time() + BAD_FOR
        log.warning("%s served wrong bytes of %s: left out for %.0f minutes", name, digest[:19], BAD_FOR / 60)


def _usable(node: Node, sources: list[Source]) -> list[Source]:
    """`sources` but those proven to serve wrong bytes lately (`blame`)."""
    now = time.time()
    return [s for s in sources if node.bad.get(s.name, 0.0) < now]


def _sources(node: Node, repo: str, digest: str) -> list[Source]:
    with node.lock:
        lans = node.lans_of.get(digest)
    if lans:
        return node.upstream.sources(repo, lans)
    return node.upstream.blob_sources(repo, digest)[0]


def done(node: Node, digest: str, sources: list[Source], fill: Fill) -> None:
    by = ", ".join(f"{s.kind} {s.name} {s.bytes / 1e6:.1f} MB" for s in sources if s.bytes)
    log.info("blob %s: %.1f MB read once from upstream (%s) in %.1fs, now cached", digest[:19], fill.size / 1e6,
             by or "nothing", fill.seconds)
    for s in sources:
        if s.bytes:
            node.metrics.upstream(s.kind, s.name, s.bytes, s.seconds)
    node.record({"event": "blob", "digest": digest, "bytes": fill.size, "seconds": round(fill.seconds, 3),
                 "sources": [{"kind": s.kind, "registry": s.name, "bytes": s.bytes, "seconds": round(s.seconds, 3)}
                             for s in sources if s.bytes]}, fill.seconds)
    with node.lock:
        node.fills.pop(digest, None)


async def _from_fill(node: Node, fill: Fill, resp: web.StreamResponse, start: int, end: int) -> None:
    """Send bytes start..end of a blob being filled, as they land; cut the connection if it fails."""
    f = None
    try:
        while f is None:
            try:
                f = open(fill.final or fill.temp, "rb")  # noqa: SIM115  (kept open across awaits)
            except FileNotFoundError:
                if fill.error:
                    raise CutShort(f"the fill failed: {fill.error}") from None
                await asyncio.sleep(0.01)
        offset = start
        while offset <= end:
            ready = fill.available()
            if ready <= offset:
                if fill.error:
                    raise CutShort(f"the fill failed: {fill.error}")
                await asyncio.sleep(0.01)
                continue
            n = min(ready, end + 1) - offset
            data = os.pread(f.fileno(), min(n, STEP), offset)
            if not data:
                await asyncio.sleep(0.01)
                continue
            await resp.write(data)
            offset += len(data)
            node.metrics.served("fill", len(data))
    finally:
        if f is not None:
            f.close()


async def _direct(node: Node, repo: str, digest: str, size: int, start: int, end: int,
                  sources: list[Source] | None) -> AsyncIterator[bytes]:
    """Stream a blob from upstream to one client without caching it (a thread feeds a queue). A
    whole-blob read is hashed as it goes, and its last chunk is sent only once the blob hashed
    right, as a fill's last byte is: a wrong blob never reaches the daemon whole."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue(maxsize=8)
    srcs = sources if sources is not None else await loop.run_in_executor(None, _sources, node, repo, digest)
    feed = BlobSources(_usable(node, srcs), node.upstream.policy, node.upstream.settings)
    provenance = Provenance() if start == 0 and end == size - 1 else None

    def put(item: bytes | BaseException | None) -> None:
        asyncio.run_coroutine_threadsafe(queue.put(item), loop).result()

    def pump() -> None:
        chunks = feed.read(digest, end + 1, start, provenance)
        held: bytes | None = None  # a whole read's latest chunk, sent once the next one (or the hash) is in
        try:
            if provenance is None:
                for chunk in chunks:
                    put(bytes(chunk))
            else:
                try:
                    for chunk in HashingReader(chunks, digest):  # DigestMismatch after the last chunk
                        if held is not None:
                            put(held)
                        held = bytes(chunk)
                except DigestMismatch as exc:  # the read is over: its sources are on record for blame
                    blame(node, feed, digest, provenance, str(exc))
                    raise
                if held is not None:
                    put(held)
            put(None)
        except BaseException as exc:
            put(exc)

    threading.Thread(target=pump, name=f"direct {digest[:19]}", daemon=True).start()
    while True:
        item = await queue.get()
        if item is None:
            return
        if isinstance(item, BaseException):
            raise CutShort(f"the upstream read failed: {describe(item)}")
        node.metrics.served("direct", len(item))
        yield item

