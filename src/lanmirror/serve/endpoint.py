"""A registry on 127.0.0.1 that serves one image to the local Docker daemon for one pull.

dockerd reads each layer over one HTTP stream; on a WAN capped per connection that is the whole
cost of a job's 20 GB pull. So for the duration of one pull lanmirror serves the chosen image
here, and feeds each blob the daemon asks for from `BlobSources` (parallel ranges, every replica
that holds it, the Hub last). The daemon treats 127.0.0.0/8 as an insecure registry by default, so
it needs no configuration.

What it serves, and nothing else:
- `GET /v2/` (the daemon's ping);
- under `/v2/<prefix>/<repo>/`, where the prefix is random and new for each run: the manifests of
  the image by digest, byte for byte with their media type and `Docker-Content-Digest`, and the
  blobs they name, by digest, with HEAD and `Range` (the daemon resumes with it).

Integrity: the daemon checks digests, and so does this server on every whole-blob stream. The last
chunk is held back until the hash is known; on a mismatch the connection is reset instead, so the
daemon never completes a wrong blob, the sources that served it are marked bad for the run, and the
daemon's retry is served from the next source (as a whole blob: its partial file is discarded)."""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import socket
import struct
import threading
from collections import deque
from contextlib import closing, suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

from lanmirror.errors import LanmirrorError
from lanmirror.remote.hashing import Chunk
from lanmirror.retry import describe
from lanmirror.serve.byterange import RangeNotSatisfiable, byte_range
from lanmirror.serve.feed import BlobSources, Provenance
from lanmirror.serve.image import ServedImage

log = logging.getLogger("lanmirror.serve")

# The endpoint serves one daemon for one pull: it needs a few connections (the daemon fetches three
# layers at once, and retries), and anything else on loopback that finds the port gets little.
MAX_CONNECTIONS = 32
IDLE_TIMEOUT = 60.0  # seconds a connection may sit without sending or taking a byte
MAX_PATH = 1024  # a digest path under the prefix is under 300 characters
LOG_KEEP = 256  # the last requests kept for reports and tests; the rest are only counted


class _Server(ThreadingHTTPServer):
    """A threading server with a cap on connections, each one known, so `close()` can end them."""

    daemon_threads = True
    allow_reuse_address = False

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], cap: int) -> None:
        super().__init__(address, handler)
        self.cap = cap
        self.open: set[socket.socket] = set()
        self.turned_away = 0
        self.closed = False
        self._guard = threading.Lock()

    def process_request(self, request: socket.socket, client_address: object) -> None:  # type: ignore[override]
        with self._guard:
            full = self.closed or len(self.open) >= self.cap
            if not full:
                self.open.add(request)
            else:
                self.turned_away += 1
        if full:
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def shutdown_request(self, request: socket.socket) -> None:  # type: ignore[override]
        with self._guard:
            self.open.discard(request)
        super().shutdown_request(request)

    def close_all(self) -> None:
        """Stop taking connections and end every open one, kept-alive ones included."""
        with self._guard:
            self.closed = True
            conns = list(self.open)
        for conn in conns:
            with suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: object, client_address: object) -> None:
        # A connection we reset on purpose, or one the daemon dropped: never a traceback on stderr.
        log.debug("endpoint: connection from %s ended with an error", client_address, exc_info=True)


class Endpoint:
    """Serve `image` (its manifests by digest and the blobs they name) under `name`
    (`127.0.0.1:PORT/<prefix>/<repo>`), until closed.

    A small, hard server: any local process can find the port, so what it keeps is bounded (the
    last LOG_KEEP requests of this run's image; requests for anything else are answered with a
    short 404 and only counted), connections are capped and time out when idle, paths are
    limited, and `close()` ends every connection, so nothing is served after it."""

    def __init__(self, repo: str, image: ServedImage, sources: BlobSources, *, host: str = "127.0.0.1",
                 max_connections: int = MAX_CONNECTIONS, idle_timeout: float = IDLE_TIMEOUT) -> None:
        if not host.startswith("127."):
            raise ValueError("the endpoint listens on loopback only")
        self.repo = repo
        self.image = image
        self.sources = sources
        self.prefix = secrets.token_hex(12)
        # Off until the image has been pulled: then its manifests (never its blobs) are served under
        # the repository's own name too, so that the daemon can record a name without the prefix.
        self.plain_manifests = False
        self.corrupt: set[str] = set()  # blobs a source served wrong once: resumes restart them whole
        self.served = 0  # bytes sent to the daemon
        # (method, path, status) of the last requests for this run's image, for tests and reports.
        self.requests: deque[tuple[str, str, int]] = deque(maxlen=LOG_KEEP)
        self.refused = 0  # requests for anything else (another path, a bad one): counted, never stored
        self._lock = threading.Lock()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "lanmirror-endpoint"
            sys_version = ""
            timeout = idle_timeout

            def log_message(self, *args: object) -> None:
                pass

            def handle_one_request(self) -> None:
                if endpoint._server.closed:
                    self.close_connection = True
                    return
                if not answer_tls_hello(self):
                    super().handle_one_request()

            def do_GET(self) -> None:
                endpoint._handle(self, "GET")

            def do_HEAD(self) -> None:
                endpoint._handle(self, "HEAD")

        self._server = _Server((host, 0), Handler, max_connections)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="endpoint", daemon=True)

    @property
    def registry(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def name(self) -> str:
        """The repository the daemon pulls from."""
        return f"{self.registry}/{self.prefix}/{self.repo}"

    @property
    def plain_name(self) -> str:
        """`127.0.0.1:PORT/<repo>`: the name a user can read, for the daemon's record of a digest."""
        return f"{self.registry}/{self.repo}"

    def start(self) -> Endpoint:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.close_all()
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()

    @property
    def turned_away(self) -> int:
        """Connections closed at once because the cap was reached (or the endpoint was closed)."""
        return self._server.turned_away

    def __enter__(self) -> Endpoint:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- requests ---------------------------------------------------------------------------------

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        path = h.path.split("?", 1)[0]
        if path == "/v2/" or path == "/v2":
            self._send(h, method, 200, b"{}", {"Content-Type": "application/json"})
            return
        own = f"/v2/{self.prefix}/{self.repo}/"
        if self.plain_manifests and path.startswith(f"/v2/{self.repo}/manifests/sha256:"):
            own = f"/v2/{self.repo}/"  # the name-only pull after the image's own (see `plain_name`)
        if len(h.path) > MAX_PATH or not path.startswith(own):
            with self._lock:
                self.refused += 1
            self._send(h, method, 414 if len(h.path) > MAX_PATH else 404, b"", {})
            return
        status = 404
        try:
            kind, _, ref = path[len(own):].partition("/")
            manifest = self.image.manifest(ref) if kind == "manifests" else None
            size = self.image.blob_size(ref) if kind == "blobs" else None
            if manifest is not None:
                status = self._send(h, method, 200, manifest.body, {"Content-Type": manifest.media_type,
                                                                     "Docker-Content-Digest": manifest.digest})
            elif size is not None and ref in self.image.small:
                status = self._send(h, method, 200, self.image.small[ref], {
                    "Content-Type": "application/octet-stream", "Docker-Content-Digest": ref})
            elif size is not None:
                status = self._blob(h, method, ref, size)
            else:
                status = self._not_found(h, method, "MANIFEST_UNKNOWN" if kind == "manifests" else "BLOB_UNKNOWN",
                                         "not part of this run's image")
        except LanmirrorError as exc:  # a platform manifest the sources could not give
            log.warning("endpoint: %s %s failed: %s", method, path, describe(exc))
            status = self._send(h, method, 502, b"", {})
        except (BrokenPipeError, ConnectionResetError):
            h.close_connection = True
        finally:
            with self._lock:
                self.requests.append((method, path, status))

    @staticmethod
    def _head(h: BaseHTTPRequestHandler, status: int, headers: dict[str, str]) -> None:
        h.send_response(status)
        h.send_header("Docker-Distribution-API-Version", "registry/2.0")
        for k, v in headers.items():
            h.send_header(k, v)
        h.end_headers()

    def _send(self, h: BaseHTTPRequestHandler, method: str, status: int, body: bytes,
              headers: dict[str, str]) -> int:
        self._head(h, status, {**headers, "Content-Length": str(len(body))})
        if method == "GET":
            h.wfile.write(body)
        return status

    def _not_found(self, h: BaseHTTPRequestHandler, method: str, code: str, message: str) -> int:
        body = json.dumps({"errors": [{"code": code, "message": message}]}).encode()
        return self._send(h, method, 404, body, {"Content-Type": "application/json"})

    def _blob(self, h: BaseHTTPRequestHandler, method: str, digest: str, size: int) -> int:
        try:  # a blob that a source served wrong once goes out whole, from its start
            window = byte_range(h.headers.get("Range"), size) if digest not in self.corrupt else None
        except RangeNotSatisfiable:
            return self._send(h, method, 416, b"", {"Content-Range": f"bytes */{size}"})
        ranged = window is not None
        start, end = window or (0, size - 1)
        headers = {"Content-Type": "application/octet-stream", "Docker-Content-Digest": digest,
                   "Accept-Ranges": "bytes", "Content-Length": str(end - start + 1)}
        status = 206 if ranged else 200
        if status == 206:
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        self._head(h, status, headers)
        if method == "HEAD":
            return status
        whole = start == 0 and end == size - 1
        try:
            self._stream(h, digest, size, start, end, verify=whole)
        except LanmirrorError as exc:
            log.warning("serving %s failed: %s", digest[:19], describe(exc))
            _reset(h)
        return status

    def _stream(self, h: BaseHTTPRequestHandler, digest: str, size: int, start: int, end: int,
                verify: bool) -> None:
        hasher = hashlib.sha256() if verify else None
        provenance = Provenance() if verify else None
        held: Chunk | None = None
        remaining = end - start + 1
        with closing(self.sources.read(digest, size, start, provenance)) as chunks:
            for chunk in chunks:
                if len(chunk) > remaining:
                    chunk = chunk[:remaining]
                remaining -= len(chunk)
                if hasher is not None:
                    hasher.update(chunk)
                if held is not None:
                    h.wfile.write(held)
                    self._count(len(held))
                held = chunk
                if remaining <= 0:
                    break
        if hasher is not None and provenance is not None and f"sha256:{hasher.hexdigest()}" != digest:
            # The last bytes never leave: the daemon cannot complete a wrong blob.
            with self._lock:
                self.corrupt.add(digest)
            self.sources.blame(digest, provenance, f"blob {digest[:19]}… hashed to sha256:{hasher.hexdigest()[:12]}…")
            _reset(h)
            return
        if held is not None:
            h.wfile.write(held)
            self._count(len(held))
        h.wfile.flush()

    def _count(self, n: int) -> None:
        with self._lock:
            self.served += n


def answer_tls_hello(h: BaseHTTPRequestHandler) -> bool:
    """On a plain-HTTP port, answer a TLS ClientHello as Go's and nginx's servers do (a status line
    starting "HTTP/") and close: that is what makes a client that tries HTTPS first (Docker's
    insecure rule, the containerd store's resolver) fall back to HTTP. True if it was one."""
    try:
        first = h.rfile.peek(1)[:1]  # type: ignore[attr-defined]
    except OSError:
        return False
    if first != b"\x16":
        return False
    h.wfile.write(b"HTTP/1.0 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
    h.close_connection = True
    return True


def _reset(h: BaseHTTPRequestHandler) -> None:
    """End the connection with a TCP reset, so the client sees an error and not a short body."""
    h.close_connection = True
    try:
        h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        h.connection.close()
    except OSError:
        pass
