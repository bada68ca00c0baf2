"""An in-memory registry with the OCI 1.1 referrers API, built from the distribution spec's
documented shapes: Debian's Distribution (2.8) has no such API, and the issue that asks for one
needs both kinds on the stack. Blobs (monolithic and chunked uploads), manifests by tag and digest
(a manifest with a `subject` is answered with `OCI-Subject` and listed), tag lists and
`GET /v2/<repo>/referrers/<digest>` with the `artifactType` filter."""

from __future__ import annotations

import hashlib
import json
import re
import threading
import urllib.parse
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
ROUTE = re.compile(r"^/v2/(?P<repo>[a-z0-9._/-]+?)/(?P<kind>blobs/uploads|blobs|manifests|tags|referrers)"
                   r"(?:/(?P<ref>[^/?]*))?$")


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class ReferrersRegistry:
    blobs: dict[str, bytes] = field(default_factory=dict)
    manifests: dict[tuple[str, str], tuple[str, bytes]] = field(default_factory=dict)  # (repo, digest) → (type, body)
    tags: dict[tuple[str, str], str] = field(default_factory=dict)  # (repo, tag) → digest
    uploads: dict[str, bytearray] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> ReferrersRegistry:
        reg = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _any(self) -> None:
                reg.requests.append((self.command, self.path))
                if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                    body = self._chunked()
                else:
                    length = int(self.headers.get("Content-Length") or 0)
                    body = self.rfile.read(length) if length else b""
                with reg.lock:
                    status, headers, out = reg.route(self.command, self.path, self.headers, body)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(out)

            def _chunked(self) -> bytes:
                out = bytearray()
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return bytes(out)
                    out += self.rfile.read(size)
                    self.rfile.readline()

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _any

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def writes(self) -> list[tuple[str, str]]:
        return [r for r in self.requests if r[0] in ("PUT", "POST", "PATCH", "DELETE")]

    # -- the protocol --------------------------------------------------------------------------

    def route(self, method: str, raw: str, headers, body: bytes) -> tuple[int, dict[str, str], bytes]:
        parts = urllib.parse.urlsplit(raw)
        query = dict(urllib.parse.parse_qsl(parts.query))
        if parts.path in ("/v2/", "/v2"):
            return 200, {"Content-Type": "application/json"}, b"{}"
        m = ROUTE.match(parts.path)
        if not m:
            return 404, {}, b"404 page not found"
        repo, kind, ref = m.group("repo"), m.group("kind"), m.group("ref") or ""
        if kind == "blobs/uploads":
            return self.upload(method, repo, ref, query, body)
        if kind == "blobs":
            data = self.blobs.get(ref)
            if data is None:
                return 404, {"Content-Type": "application/json"}, b'{"errors":[{"code":"BLOB_UNKNOWN"}]}'
            return 200, {"Content-Type": "application/octet-stream", "Docker-Content-Digest": ref}, data
        if kind == "tags":
            tags = sorted(t for (r, t) in self.tags if r == repo)
            return 200, {"Content-Type": "application/json"}, json.dumps({"name": repo, "tags": tags}).encode()
        if kind == "referrers":
            return self.referrers(repo, ref, query.get("artifactType"))
        return self.manifest(method, repo, ref, headers, body)

    def upload(self, method: str, repo: str, ref: str, query: dict[str, str], body: bytes):
        if method == "POST":
            uid = uuid.uuid4().hex
            self.uploads[uid] = bytearray()
            return 202, {"Location": f"/v2/{repo}/blobs/uploads/{uid}", "Range": "0-0", "Docker-Upload-UUID": uid}, b""
        if ref not in self.uploads:
            return 404, {}, b'{"errors":[{"code":"BLOB_UPLOAD_UNKNOWN"}]}'
        buf = self.uploads[ref]
        if method == "DELETE":
            del self.uploads[ref]
            return 204, {}, b""
        if method in ("PATCH", "PUT"):
            buf += body
        if method == "PUT":
            digest = query.get("digest", "")
            if digest_of(bytes(buf)) != digest:
                return 400, {}, b'{"errors":[{"code":"DIGEST_INVALID"}]}'
            self.blobs[digest] = bytes(buf)
            del self.uploads[ref]
            return 201, {"Location": f"/v2/{repo}/blobs/{digest}", "Docker-Content-Digest": digest}, b""
        end = f"0-{max(len(buf) - 1, 0)}"
        return (202 if method == "PATCH" else 204), {"Location": f"/v2/{repo}/blobs/uploads/{ref}", "Range": end}, b""

    def manifest(self, method: str, repo: str, ref: str, headers, body: bytes):
        if method == "PUT":
            digest = digest_of(body)
            if ref.startswith("sha256:") and ref != digest:
                return 400, {}, b'{"errors":[{"code":"DIGEST_INVALID"}]}'
            ctype = headers.get("Content-Type", "")
            self.manifests[(repo, digest)] = (ctype, body)
            if not ref.startswith("sha256:"):
                self.tags[(repo, ref)] = digest
            out = {"Location": f"/v2/{repo}/manifests/{digest}", "Docker-Content-Digest": digest}
            subject = json.loads(body).get("subject")
            if isinstance(subject, dict) and subject.get("digest"):
                out["OCI-Subject"] = subject["digest"]
            return 201, out, b""
        digest = ref if ref.startswith("sha256:") else self.tags.get((repo, ref), "")
        if method == "DELETE":
            self.manifests.pop((repo, digest), None)
            for key in [k for k, v in self.tags.items() if k[0] == repo and v == digest]:
                del self.tags[key]
            return 202, {}, b""
        found = self.manifests.get((repo, digest))
        if found is None:
            return 404, {"Content-Type": "application/json"}, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}'
        ctype, data = found
        return 200, {"Content-Type": ctype, "Docker-Content-Digest": digest}, data

    def referrers(self, repo: str, subject: str, artifact_type: str | None):
        listed = []
        for (r, digest), (ctype, body) in sorted(self.manifests.items()):
            data = json.loads(body)
            if r != repo or (data.get("subject") or {}).get("digest") != subject:
                continue
            atype = data.get("artifactType") or (data.get("config") or {}).get("mediaType", "")
            if artifact_type and atype != artifact_type:
                continue
            entry = {"mediaType": ctype, "digest": digest, "size": len(body), "artifactType": atype}
            if data.get("annotations"):
                entry["annotations"] = data["annotations"]
            listed.append(entry)
        out = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": listed}
        headers = {"Content-Type": OCI_INDEX}
        if artifact_type:
            headers["OCI-Filters-Applied"] = "artifactType"
        return 200, headers, json.dumps(out).encode()
