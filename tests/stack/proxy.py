"""A fault-injecting HTTP proxy that sits in front of a registry (or the token server).

It speaks HTTP/1.1 to both sides, streams bodies in both directions without buffering them, and
can: play Docker Hub's rate-limit rules (a manifest GET counts, a HEAD does not; 429
TOOMANYREQUESTS when exhausted), answer with injected statuses (5xx bursts, abuse 429 with
Retry-After), refuse or black-hole connections, add latency, and break blob bodies (reset, stall
or corrupt after N bytes). Every request is logged so tests can assert what crossed the wire.
"""

from __future__ import annotations

import fcntl
import http.client
import re
import socket
import struct
import termios
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from lanmirror.serve.endpoint import answer_tls_hello

MANIFEST_RE = re.compile(r"^/v2/.+/manifests/[^/]+$")
BLOB_RE = re.compile(r"^/v2/.+/blobs/sha256:[a-f0-9]{64}$")
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade",
              "expect"}
CHUNK = 1 << 20
DRIP_RATE = 200  # bytes/s of a 'drip' body rule


@dataclass
class Entry:
    method: str
    path: str
    status: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    counted: bool = False
    fault: str = ""
    seconds: float = 0.0
    authorization: str = ""  # the Authorization header that arrived, if any
    accept_encoding: str = ""  # what the client said it would decode


@dataclass
class StatusRule:
    """Answer the next `count` requests that match with `status` instead of forwarding them."""

    status: int
    count: int
    method: str | None = None
    path: re.Pattern[str] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (self.path is None or bool(self.path.search(path)))


@dataclass
class BodyRule:
    """Break the body of matching responses after `after` bytes: 'reset', 'stall', 'corrupt' (one
    byte flipped, the rest as it was), 'corrupt-reset' (that byte flipped, then a reset: wrong bytes
    and a break, so another source finishes the blob) or 'drip' (every matching body, after its own
    first `after` bytes, at `DRIP_RATE` B/s)."""

    kind: str
    after: int
    count: int = 1
    path: re.Pattern[str] = BLOB_RE


@dataclass
class UploadRule:
    """Break the request body of the next matching upload request: forward `after` bytes of it to
    the registry, then reset both connections (0: the registry never sees the request)."""

    after: int
    count: int = 1
    method: str | None = None
    skip: int = 0  # matching requests to let through first


def _point_at(value: str, own: str, other: str) -> str:
    """A Location or Link value, absolute or relative, rewritten to name `other` instead of `own`."""
    value = value.replace(f"//{own}", f"//{other}")
    if value.startswith("/"):
        return f"http://{other}{value}"
    return value.replace("</", f"<http://{other}/")


class _CutUpload(Exception):
    pass


class FaultProxy:
    def __init__(self, upstream: str, name: str, *, hub_rules: bool = False, limit: int = 100) -> None:
        self.upstream_host, port = upstream.rsplit(":", 1)
        self.upstream_port = int(port)
        self.name = name
        self.hub_rules = hub_rules
        self.limit = limit
        self.remaining = limit
        self.log: list[Entry] = []
        self.mode: str | None = None  # None | "refuse" | "blackhole"
        self.connections = 0  # connections accepted since the last clear(), whatever became of them
        self.latency = 0.0
        self.status_rules: list[StatusRule] = []
        self.body_rules: list[BodyRule] = []
        self.upload_rules: list[UploadRule] = []
        # WAN emulation: bytes/s per connection and for the whole link (None = unlimited).
        self.conn_rate: float | None = None
        self.pace_path: re.Pattern[str] | None = None  # pace only responses to these paths (None: all)
        self.link_rate: float | None = None
        self._link_next = 0.0
        self.ignore_range = False  # play a server without Range support
        # Point Location and Link answers at another host:port (a capture proxy), as a tampered
        # registry would, to see whether a client follows them with its credentials.
        self.rewrite_links_to: str | None = None
        # CDN: authorised blob GETs are answered with a 307 to `cdn`, which serves them with the
        # credential embedded in the URL, like a pre-signed storage URL.
        self.cdn: FaultProxy | None = None
        self.cdn_targets: dict[str, tuple[str, str]] = {}
        self.cdn_saw_authorization = 0
        # A CDN URL is signed and expires: after this many requests it answers 403 (None: never).
        self.cdn_max_uses: int | None = None
        self.cdn_uses: dict[str, int] = {}
        self._lock = threading.Lock()
        self._release = threading.Event()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                self.upstream: http.client.HTTPConnection | None = None
                with proxy._lock:
                    proxy.connections += 1

            def handle_one_request(self) -> None:
                if proxy.mode == "refuse":
                    _reset(self.connection)
                    self.close_connection = True
                    return
                if proxy.mode == "blackhole":
                    proxy._release.wait(600)
                    self.close_connection = True
                    return
                if not answer_tls_hello(self):  # the same answer the fast-pull endpoint gives
                    super().handle_one_request()

            def __getattr__(self, name: str):  # do_GET, do_PUT, ... all go through one method
                if name.startswith("do_"):
                    return lambda: proxy._handle(self)
                raise AttributeError(name)

            def finish(self) -> None:
                try:
                    super().finish()
                finally:
                    if self.upstream is not None:
                        self.upstream.close()

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 128

            def handle_error(self, request: object, client_address: object) -> None:
                # A client that hangs up (a killed mirror, an aborted pull) is part of the tests.
                import sys

                if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
                    super().handle_error(request, client_address)

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.address = f"127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)

    # -- control ----------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def clear(self) -> None:
        """Remove every fault and forget the log; the rate-limit budget is refilled."""
        with self._lock:
            self.mode = None
            self.latency = 0.0
            self.status_rules.clear()
            self.body_rules.clear()
            self.upload_rules.clear()
            self.conn_rate = self.link_rate = None
            self.pace_path = None
            self.ignore_range = False
            self.cdn = None
            self.cdn_saw_authorization = 0
            self.cdn_max_uses = None
            self.cdn_uses.clear()
            self.rewrite_links_to = None
            self.log.clear()
            self.connections = 0
            self.remaining = self.limit
            self._release.set()
            self._release = threading.Event()

    def fail(self, status: int, count: int, *, method: str | None = None, path: str | None = None,
             headers: dict[str, str] | None = None, body: bytes = b"") -> None:
        with self._lock:
            self.status_rules.append(StatusRule(status, count, method, re.compile(path) if path else None,
                                                headers or {}, body))

    def break_body(self, kind: str, after: int, count: int = 1, path: str | None = None) -> None:
        assert kind in ("reset", "stall", "corrupt", "corrupt-reset", "drip")
        with self._lock:
            self.body_rules.append(BodyRule(kind, after, count, re.compile(path) if path else BLOB_RE))

    def break_upload(self, after: int, count: int = 1, method: str | None = None, skip: int = 0) -> None:
        with self._lock:
            self.upload_rules.append(UploadRule(after, count, method, skip))

    def _take_upload_rule(self, method: str, path: str, length: int | None = None) -> UploadRule | None:
        """The rule that breaks this upload request, if any. A request whose whole body is shorter
        than the break point (a small config blob uploaded first) cannot be broken there, so it does
        not use up the rule: which blob goes up first varies from run to run."""
        if method not in ("PATCH", "PUT") or "/blobs/uploads/" not in path:
            return None
        with self._lock:
            for rule in self.upload_rules:
                if rule.count > 0 and rule.method in (None, method) and (length is None or length > rule.after
                                                                            or rule.after == 0):
                    if rule.skip > 0:
                        rule.skip -= 1
                        return None
                    rule.count -= 1
                    return rule
        return None

    def entries(self, method: str | None = None, pattern: str | None = None) -> list[Entry]:
        rx = re.compile(pattern) if pattern else None
        with self._lock:
            return [e for e in self.log if (method is None or e.method == method) and (rx is None or rx.search(e.path))]

    def counted_gets(self) -> int:
        return sum(1 for e in self.entries() if e.counted)

    def bytes_out(self, pattern: str = BLOB_RE.pattern) -> int:
        return sum(e.bytes_out for e in self.entries(pattern=pattern))

    def bytes_in(self) -> int:
        return sum(e.bytes_in for e in self.entries())

    # -- the proxy ----------------------------------------------------------------------------

    def _take_status_rule(self, method: str, path: str) -> StatusRule | None:
        with self._lock:
            for rule in self.status_rules:
                if rule.count > 0 and rule.matches(method, path):
                    rule.count -= 1
                    return rule
        return None

    def _take_body_rule(self, path: str, start: int, length: int | None) -> tuple[BodyRule, int] | None:
        """The first matching rule whose cut point (a byte offset in the blob) lies inside this body,
        and where in the body to cut. A range response starts at `start`; a body that does not reach
        the cut point (a config blob, another range) leaves the rule for the next one."""
        with self._lock:
            for rule in self.body_rules:
                if rule.kind == "drip":  # every matching body drips after its own first `after` bytes
                    if rule.count > 0 and rule.path.search(path) and (length is None or rule.after < length):
                        rule.count -= 1
                        return rule, rule.after
                    continue
                inside = start <= rule.after and (length is None or rule.after < start + length)
                if rule.count > 0 and rule.path.search(path) and inside:
                    rule.count -= 1
                    return rule, rule.after - start
        return None

    def _ratelimit_headers(self) -> dict[str, str]:
        return {"ratelimit-limit": f"{self.limit};w=21600", "ratelimit-remaining": f"{max(self.remaining, 0)};w=21600",
                "docker-ratelimit-source": "127.0.0.1"}

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        started = time.monotonic()
        method = h.command
        path = h.path.split("?", 1)[0]
        entry = Entry(method, h.path, authorization=h.headers.get("Authorization", ""),
                      accept_encoding=h.headers.get("Accept-Encoding", ""))
        with self._lock:
            self.log.append(entry)
        try:
            self._serve(h, method, path, entry)
        except (TimeoutError, ConnectionError, BrokenPipeError, OSError) as exc:
            entry.fault = entry.fault or f"connection: {type(exc).__name__}"
            h.close_connection = True
        finally:
            entry.seconds = time.monotonic() - started

    def _serve(self, h: BaseHTTPRequestHandler, method: str, path: str, entry: Entry) -> None:
        if self.latency:
            time.sleep(self.latency)
        inject: dict[str, str] = {}
        if path.startswith("/cdn/"):
            key = path[len("/cdn/"):]
            target = self.cdn_targets.get(key)
            if "Authorization" in h.headers:
                self.cdn_saw_authorization += 1
            with self._lock:
                self.cdn_uses[key] = uses = self.cdn_uses.get(key, 0) + 1
            expired = self.cdn_max_uses is not None and uses > self.cdn_max_uses
            if target is None or expired:
                entry.status = 403 if expired else 404
                entry.fault = "expired CDN URL" if expired else ""
                h.send_response(entry.status)
                h.send_header("Content-Length", "0")
                h.end_headers()
                return
            h.path, inject["Authorization"] = target
            path = h.path.split("?", 1)[0]
        elif (self.cdn is not None and method == "GET" and BLOB_RE.match(path)
              and "Authorization" in h.headers):
            key = uuid.uuid4().hex
            self.cdn.cdn_targets[key] = (h.path, h.headers["Authorization"])
            entry.status, entry.fault = 307, "redirect to CDN"
            h.send_response(307)
            # Another host name, as a real CDN is: clients must not send the registry token there.
            h.send_header("Location", f"http://localhost:{self.cdn.port}/cdn/{key}")
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        extra: dict[str, str] = {}
        is_manifest = bool(MANIFEST_RE.match(path))
        if self.hub_rules and is_manifest:
            with self._lock:
                if method == "GET":
                    if self.remaining <= 0:
                        rule: StatusRule | None = StatusRule(
                            429, 1, body=b'{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your '
                                         b'pull rate limit. You may increase the limit by authenticating and '
                                         b'upgrading: https://www.docker.com/increase-rate-limit"}]}')
                    else:
                        self.remaining -= 1
                        entry.counted = True
                        rule = None
                else:
                    rule = None
                extra = self._ratelimit_headers()
        else:
            rule = None
        rule = rule or self._take_status_rule(method, path)
        body_in = self._request_body(h, entry)
        if rule is not None:
            for _ in body_in:
                pass
            entry.status, entry.fault = rule.status, entry.fault or f"injected {rule.status}"
            h.send_response(rule.status)
            for k, v in {**extra, **rule.headers}.items():
                h.send_header(k, v)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(rule.body)))
            h.end_headers()
            if method != "HEAD":
                h.wfile.write(rule.body)
            return
        # A list, not a dict: the daemon sends several Accept headers, and collapsing them makes
        # the registry pick another manifest format (and digest).
        drop = HOP_BY_HOP | {"content-length"} | {k.lower() for k in inject}
        if self.ignore_range:
            drop |= {"range"}
        headers = [(k, v) for k, v in h.headers.items() if k.lower() not in drop] + list(inject.items())
        length = h.headers.get("Content-Length")
        chunked = length is None and h.headers.get("Transfer-Encoding", "").lower() == "chunked"
        if length is not None:
            headers.append(("Content-Length", length))
        elif chunked:
            headers.append(("Transfer-Encoding", "chunked"))
        cut = self._take_upload_rule(method, path, int(length) if length is not None and length.isdigit() else None)
        if cut is not None and cut.after == 0:
            entry.fault = "upload reset before forwarding"
            _reset(h.connection)
            h.close_connection = True
            return
        if h.upstream is None:
            h.upstream = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=600)
        try:
            up = h.upstream
            up.putrequest(method, h.path, skip_host=True, skip_accept_encoding=True)
            for k, v in headers:
                up.putheader(k, v)
            up.endheaders()
            if length is not None or chunked:
                forwarded = 0
                for data in body_in:
                    if cut is not None and forwarded + len(data) >= cut.after:
                        data = data[:cut.after - forwarded]
                    up.send(f"{len(data):x}\r\n".encode() + data + b"\r\n" if chunked and data else data)
                    forwarded += len(data)
                    if cut is not None and forwarded >= cut.after:
                        raise _CutUpload
                if chunked:
                    up.send(b"0\r\n\r\n")
            resp = up.getresponse()
        except _CutUpload:
            entry.fault = f"upload reset after {cut.after if cut else 0} bytes"
            time.sleep(0.2)  # let the registry take in what was forwarded, as a real broken link would
            if up.sock is not None:
                _reset(up.sock)
            h.upstream = None
            _reset(h.connection)
            h.close_connection = True
            return
        except (ConnectionError, OSError, http.client.HTTPException) as exc:
            entry.fault = f"upstream: {type(exc).__name__}: {exc}"
            h.upstream.close()
            h.upstream = None
            h.send_response(502)
            h.send_header("Content-Length", "0")
            h.end_headers()
            entry.status = 502
            return
        entry.status = resp.status
        h.send_response(resp.status)
        resp_len = resp.getheader("Content-Length")
        for k, v in resp.getheaders():
            if k.lower() not in HOP_BY_HOP and k.lower() != "content-length":
                if self.rewrite_links_to and k.lower() in ("location", "link"):
                    v = _point_at(v, self.address, self.rewrite_links_to)
                h.send_header(k, v)
        for k, v in extra.items():
            h.send_header(k, v)
        if method == "HEAD" or resp.status in (204, 304):
            if resp_len is not None:
                h.send_header("Content-Length", resp_len)
            h.end_headers()
            resp.read()
            return
        use_chunked = resp_len is None
        if use_chunked:
            h.send_header("Transfer-Encoding", "chunked")
        else:
            h.send_header("Content-Length", resp_len)
        h.end_headers()
        start = 0
        content_range = resp.getheader("Content-Range", "")
        if resp.status == 206 and content_range.startswith("bytes "):
            start = int(content_range[6:].split("-", 1)[0])
        taken = (self._take_body_rule(path, start, int(resp_len) if resp_len else None)
                 if method == "GET" and resp.status in (200, 206) else None)
        body_rule, cut_at = taken if taken else (None, 0)
        sent = 0
        while True:
            data = resp.read1(CHUNK) if hasattr(resp, "read1") else resp.read(CHUNK)
            if not data:
                break
            if body_rule and sent + len(data) > cut_at:
                cut = cut_at - sent
                if body_rule.kind == "corrupt":
                    data = data[:cut] + bytes([data[cut] ^ 0xFF]) + data[cut + 1:]
                    body_rule = None
                elif body_rule.kind == "drip":
                    self._write(h, data[:cut], use_chunked)
                    entry.bytes_out += cut
                    entry.fault = f"drip after {body_rule.after} bytes"
                    self._drip(h, data[cut:], resp, use_chunked, entry)
                    h.close_connection = True
                    return
                else:
                    if body_rule.kind == "corrupt-reset":
                        data = data[:cut] + bytes([data[cut] ^ 0xFF])
                        cut += 1
                    self._write(h, data[:cut], use_chunked)
                    entry.bytes_out += cut
                    entry.fault = f"{body_rule.kind} after {body_rule.after} bytes"
                    h.wfile.flush()
                    if body_rule.kind == "stall":
                        self._release.wait(600)
                    _drain(h.connection)
                    _reset(h.connection)
                    h.close_connection = True
                    h.upstream.close()
                    h.upstream = None
                    return
            self._write(h, data, use_chunked)
            sent += len(data)
            entry.bytes_out += len(data)
        resp.close()  # read1 never marks the response done; without this the connection can't be reused
        if use_chunked:
            h.wfile.write(b"0\r\n\r\n")

    def _drip(self, h: BaseHTTPRequestHandler, data: bytes, resp: object, chunked: bool, entry: Entry) -> None:
        """The rest of a body at DRIP_RATE bytes/s (a live but useless source), for at most 10
        minutes or until the client goes away or the proxy's faults are cleared."""
        ends, release = time.monotonic() + 600, self._release
        while time.monotonic() < ends and not release.is_set():
            if not data:
                data = resp.read1(CHUNK)  # type: ignore[attr-defined]
                if not data:
                    return
            piece, data = data[:DRIP_RATE // 10], data[DRIP_RATE // 10:]
            try:
                self._send(h, piece, chunked)
                h.wfile.flush()
            except OSError:
                return
            entry.bytes_out += len(piece)
            time.sleep(0.1)

    def _write(self, h: BaseHTTPRequestHandler, data: bytes, chunked: bool) -> None:
        if not data:
            return
        paced = self.pace_path is None or bool(self.pace_path.search(h.path))
        if (self.conn_rate or self.link_rate) and paced:
            for i in range(0, len(data), 256 << 10):  # small slices keep the pacing smooth
                self._pace(h, data[i:i + (256 << 10)], chunked)
            return
        self._send(h, data, chunked)

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, data: bytes, chunked: bool) -> None:
        if chunked:
            h.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        else:
            h.wfile.write(data)

    def _pace(self, h: BaseHTTPRequestHandler, data: bytes, chunked: bool) -> None:
        """Token-bucket pacing: each connection at most `conn_rate`, all together `link_rate`."""
        now = time.monotonic()
        wait = 0.0
        if self.conn_rate:
            conn_next = max(getattr(h, "_conn_next", now), now)
            h._conn_next = conn_next + len(data) / self.conn_rate  # type: ignore[attr-defined]
            wait = conn_next - now
        if self.link_rate:
            with self._lock:
                link_next = max(self._link_next, now)
                self._link_next = link_next + len(data) / self.link_rate
            wait = max(wait, link_next - now)
        if wait > 0:
            time.sleep(wait)
        self._send(h, data, chunked)

    @staticmethod
    def _request_body(h: BaseHTTPRequestHandler, entry: Entry) -> Iterator[bytes]:
        def exactly(n: int) -> Iterator[bytes]:
            while n > 0:
                data = h.rfile.read(min(CHUNK, n))
                if not data:
                    raise ConnectionError("client closed mid-body")
                n -= len(data)
                entry.bytes_in += len(data)
                yield data

        length = h.headers.get("Content-Length")
        if length is not None:
            yield from exactly(int(length))
            return
        if h.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(h.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while h.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return
                yield from exactly(size)
                h.rfile.readline()


def _drain(sock: socket.socket, timeout: float = 5.0) -> None:
    """Wait until the peer has acknowledged everything written, so that "break after N bytes" means
    N bytes reached it: a close with RST drops whatever still sits in our send queue (a client that
    was busy elsewhere, its window full), and the break would land at a byte that varies from run
    to run."""
    deadline = time.monotonic() + timeout
    buf = bytearray(4)
    while time.monotonic() < deadline:
        try:
            fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, buf)
        except OSError:
            return
        if int.from_bytes(buf, "little") == 0:
            return
        time.sleep(0.005)


def _reset(sock: socket.socket) -> None:
    """Close with RST (SO_LINGER 0), the way a crashed peer or a firewall reject looks."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    except OSError:
        pass
