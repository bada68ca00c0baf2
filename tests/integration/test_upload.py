"""The write side: chunked uploads that resume after a failed request, on the real stack.

What CNCF Distribution 2.8 (the LAN registry here) does, measured by these tests: a PATCH that
never reached it (reset before forwarding, a 503 from a proxy in front) leaves the session intact
and the upload resumes where it was; a PATCH whose body broke half-way leaves part of it written,
the session's signed state no longer matches, and Distribution answers BLOB_UPLOAD_INVALID, so the
upload starts again from byte 0. A registry that keeps partial bytes and reports them (the OCI
spec's `GET` on the session) is played by a small server at the end of this file.
"""

from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from lanmirror.cmd.wiring import Clients
from lanmirror.errors import DigestMismatch
from lanmirror.ops.mirror import MirrorOptions, mirror
from lanmirror.remote.blobwrite import BlobWriter
from lanmirror.remote.ranges import RangeSettings
from lanmirror.remote.registry import Registry
from lanmirror.retry import RetryPolicy
from lanmirror.transport import Transport
from tests.stack import images

pytestmark = pytest.mark.integration
FAST = RetryPolicy(attempts=5, base=0.05, cap=0.2)
CHUNK = 1 << 20
UPLOADS = r"/blobs/uploads/"


@pytest.fixture
def big(stack, repo):
    """An image whose one layer is a little over 8 upload chunks, on the Hub."""
    img = images.build([f"{repo}-up"], 8 * CHUNK + 12345)
    images.push(stack.hub_client(), repo, "big", img)
    stack.clear_faults()
    return img


def layer(img):
    return img.manifest.blobs()[1]


def copy(stack, repo, upload_chunk=CHUNK):
    report = mirror(MirrorOptions(repo=repo, tags=["big"], lan_registry=stack.lan, source_registry=stack.hub,
                                  upload_chunk=upload_chunk, ranges=RangeSettings(threshold=64 << 20)),
                    Clients(policy=FAST, daemon=False))
    return report, report.results[0]


def layer_uploads(stack, method, size):
    """The upload requests of the big layer (the config blob is small and goes as one PUT)."""
    return [e for e in stack.lan_proxy.entries(method, UPLOADS) if method != "PUT" or e.bytes_in != size]


def chunks_of(size):
    return [CHUNK] * (size // CHUNK) + ([size % CHUNK] if size % CHUNK else [])


def source_gets(stack, d):
    return [e for e in stack.hub_proxy.entries("GET", d.digest.split(":")[1]) if e.status in (200, 206)]


def test_big_blob_goes_up_as_chunks_and_lands_with_its_digest(stack, repo, big):
    report, r = copy(stack, repo)
    d = layer(big)
    assert report.ok and r.digest == big.digest and (r.upload_resumes, r.upload_restarts) == (0, 0)
    patches = stack.lan_proxy.entries("PATCH", UPLOADS)
    assert [p.bytes_in for p in patches] == chunks_of(d.size)
    assert all(p.status == 202 for p in patches)
    closing = [e for e in stack.lan_proxy.entries("PUT", UPLOADS) if d.digest.split(":")[1] in e.path]
    assert len(closing) == 1 and closing[0].bytes_in == 0 and closing[0].status == 201
    assert stack.client(stack.lan).head_manifest(repo, "big").digest == big.digest


def test_upload_chunk_zero_keeps_one_streamed_put(stack, repo, big):
    report, _ = copy(stack, repo, upload_chunk=0)
    assert report.ok and not stack.lan_proxy.entries("PATCH", UPLOADS)
    assert any(e.bytes_in == layer(big).size for e in stack.lan_proxy.entries("PUT", UPLOADS))


def test_patch_lost_before_the_registry_resumes_the_same_session(stack, repo, big):
    """The sixth PATCH is reset before it reaches Distribution: the writer asks the session's
    status, goes on from byte 5 MiB, and nothing is sent or read twice beyond the lost request."""
    stack.lan_proxy.break_upload(after=0, method="PATCH", skip=5)
    report, r = copy(stack, repo)
    d = layer(big)
    assert report.ok and r.digest == big.digest and (r.upload_resumes, r.upload_restarts) == (1, 0)
    status = stack.lan_proxy.entries("GET", UPLOADS)
    assert [s.status for s in status] == [204]
    patches = stack.lan_proxy.entries("PATCH", UPLOADS)
    assert [p.fault for p in patches].count("upload reset before forwarding") == 1
    assert sum(p.bytes_in for p in patches) == d.size  # the registry got every byte exactly once
    assert len(stack.lan_proxy.entries("POST", UPLOADS)) == 2  # the layer's session and the config's
    # The source is re-opened at the acknowledged boundary (a bounded range from 5 MiB), not
    # read again from byte 0.
    first, resumed = source_gets(stack, d)
    assert first.status == 200 and resumed.status == 206 and resumed.bytes_out == d.size - 5 * CHUNK
    assert stack.client(stack.lan).head_manifest(repo, "big").digest == big.digest


def test_503_in_front_of_the_registry_resumes(stack, repo, big):
    stack.lan_proxy.fail(503, 2, method="PATCH")
    report, r = copy(stack, repo)
    assert report.ok and r.digest == big.digest and (r.upload_resumes, r.upload_restarts) == (2, 0)
    assert sum(p.bytes_in for p in stack.lan_proxy.entries("PATCH", UPLOADS) if p.status == 202) == layer(big).size


def test_patch_broken_half_way_makes_distribution_drop_the_session_and_the_upload_restarts(stack, repo, big):
    stack.lan_proxy.break_upload(after=300_000, method="PATCH", skip=3)
    report, r = copy(stack, repo)
    assert report.ok and r.digest == big.digest and (r.upload_resumes, r.upload_restarts) == (0, 1)
    # Distribution's verdict on the old session, then a new session from byte 0.
    assert [s.status for s in stack.lan_proxy.entries("GET", UPLOADS)] == [404]
    assert len(stack.lan_proxy.entries("POST", UPLOADS)) == 3
    ok = [p.bytes_in for p in stack.lan_proxy.entries("PATCH", UPLOADS) if p.status == 202]
    assert ok == [CHUNK] * 3 + chunks_of(layer(big).size)
    assert stack.client(stack.lan).head_manifest(repo, "big").digest == big.digest


def test_closing_put_lost_after_it_landed_is_not_uploaded_again(stack, repo, big):
    """The closing PUT reaches the registry, which commits the blob; the answer is lost. The
    session is gone by then, the blob is there: the writer checks and stops."""
    d = layer(big)
    orig = stack.lan_proxy._serve

    def lose_answer(h, method, path, entry):
        if method == "PUT" and "/blobs/uploads/" in path and d.digest.split(":")[1] in h.path:
            stack.lan_proxy._serve = orig
            orig(h, method, path, entry)  # forwarded and answered upstream ...
            raise ConnectionResetError("answer lost")  # ... but the client never hears it
        return orig(h, method, path, entry)

    stack.lan_proxy._serve = lose_answer
    try:
        report, r = copy(stack, repo)
    finally:
        stack.lan_proxy._serve = orig
    assert report.ok, r.error
    assert len(stack.lan_proxy.entries("PATCH", UPLOADS)) == 9  # nothing sent twice
    assert stack.client(stack.lan).head_manifest(repo, "big").digest == big.digest


# -- a registry that keeps the bytes of a broken PATCH -------------------------------------------


class _KeepingRegistry:
    """Plays the OCI upload protocol of a registry that stores whatever part of a PATCH body
    arrived and reports it on `GET` (Distribution 2.8 invalidates the session instead). Each
    PATCH listed in `cut` stops reading its body after that many bytes and drops the connection."""

    def __init__(self, cut: dict[int, int]) -> None:
        self.data = bytearray()
        self.blobs: dict[str, bytes] = {}
        self.cut = cut
        self.patches: list[tuple[int, int]] = []  # (offset, bytes kept)
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _reply(self, status, **headers):
                self.send_response(status)
                for k, v in {"Content-Length": "0", **headers}.items():
                    self.send_header(k, v)
                self.end_headers()

            def _range(self):
                return {"Range": f"0-{len(owner.data) - 1}", "Location": "/v2/r/x/blobs/uploads/u1"}

            def do_POST(self):
                owner.data = bytearray()
                self._reply(202, **self._range())

            def do_GET(self):
                self._reply(204, **self._range())

            def do_HEAD(self):
                found = self.path.rsplit("/", 1)[-1] in owner.blobs
                self._reply(200 if found else 404)

            def do_PATCH(self):
                first = int(self.headers["Content-Range"].split("-")[0])
                if first != len(owner.data):
                    self._reply(416, **self._range())
                    return
                length = int(self.headers["Content-Length"])
                keep = owner.cut.pop(len(owner.patches), length)
                owner.data += self.rfile.read(keep)
                owner.patches.append((first, keep))
                if keep < length:
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self._reply(202, **self._range())

            def do_PUT(self):
                digest = parse_qs(urlparse(self.path).query)["digest"][0]
                if "sha256:" + hashlib.sha256(owner.data).hexdigest() != digest:
                    self._reply(400)
                    return
                owner.blobs[digest] = bytes(owner.data)
                self._reply(201)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.address = f"127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _source(data: bytes, reads: list[int]):
    def open_at(offset: int):
        reads.append(offset)
        return (data[i:i + 65536] for i in range(offset, len(data), 65536))
    return open_at


def test_registry_that_keeps_part_of_a_broken_patch_resumes_mid_chunk():
    data = hashlib.sha256(b"seed").digest() * (5 * CHUNK // 32 + 100)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    server = _KeepingRegistry(cut={2: 300_000})  # the third PATCH keeps 300 000 bytes, then drops
    reads: list[int] = []
    try:
        writer = BlobWriter(Registry(Transport(server.address, policy=FAST)), "r/x", digest, len(data),
                            _source(data, reads), FAST, chunk_size=CHUNK)
        writer.run()
        assert server.blobs[digest] == data
        # The third PATCH kept 300 000 bytes; the next one starts right after them, mid-chunk.
        assert server.patches[2] == (2 * CHUNK, 300_000) and server.patches[3][0] == 2 * CHUNK + 300_000
        assert writer.resumes == 1 and writer.restarts == 0
        # The source was re-opened at the last acknowledged boundary; the kept bytes were read
        # again only to rebuild the hash: 300 000 bytes, not the blob.
        assert reads == [0, 2 * CHUNK] and writer.reread == 300_000
    finally:
        server.close()


def test_corrupt_source_bytes_are_never_committed():
    data = b"x" * (3 * CHUNK)
    digest = "sha256:" + hashlib.sha256(b"something else").hexdigest()
    server = _KeepingRegistry(cut={})
    try:
        writer = BlobWriter(Registry(Transport(server.address, policy=FAST)), "r/x", digest, len(data),
                            _source(data, []), FAST, chunk_size=CHUNK)
        with pytest.raises(DigestMismatch):
            writer.run()
        assert server.blobs == {} and len(server.patches) == 3  # sent, hashed, refused before the PUT
    finally:
        server.close()


def test_cli_flag_and_json_report_the_resume(stack, repo, big):
    import json

    from tests.helpers import run_cli

    stack.lan_proxy.break_upload(after=0, method="PATCH", skip=2)
    proc = run_cli(stack, "mirror", "--repo", repo, "--tag", "big", "--source-registry", stack.hub,
                   "--lan-registry", stack.lan, "--upload-chunk-mb", "1", "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)["results"][0]
    assert (result["status"], result["upload_resumes"], result["upload_restarts"]) == ("copied", 1, 0)
    assert "resuming the upload there" in proc.stderr
    proc = run_cli(stack, "mirror", "--repo", repo, "--tag", "big", "--source-registry", stack.hub,
                   "--lan-registry", stack.lan, "--upload-chunk-mb", "-1")
    assert proc.returncode == 2 and "--upload-chunk-mb -1" in proc.stderr


def test_source_that_ends_early_is_a_transient_failure_and_nothing_is_committed():
    from lanmirror.errors import TransientError

    data = b"y" * (3 * CHUNK)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    server = _KeepingRegistry(cut={})
    try:
        short = _source(data[:2 * CHUNK], [])  # the source stops a chunk early
        writer = BlobWriter(Registry(Transport(server.address, policy=FAST)), "r/x", digest, len(data), short, FAST,
                            chunk_size=CHUNK)
        with pytest.raises(TransientError, match="source ended"):
            writer.run()
        assert server.blobs == {}
    finally:
        server.close()
