"""OCI distribution verbs against one registry (like go-containerregistry's `pkg/v1/remote`).

No policy lives here: which source to ask, what to copy and what to do on failure is for the
use cases. This module only knows the wire protocol and checks every digest it touches.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

import requests

from lanmirror.errors import DigestMismatch, NotFound, RegistryError, TransientError
from lanmirror.name import TAG_RE, validate_digest, validate_repository
from lanmirror.remote.hashing import CHUNK, Chunk, HashingReader
from lanmirror.remote.manifest import ACCEPT, MANIFEST_TYPES, Manifest, ManifestHead, sha256_digest
from lanmirror.remote.ratelimit import RateLimit
from lanmirror.remote.upload import Sized, UploadSession, range_end
from lanmirror.transport import Transport, error_detail

log = logging.getLogger("lanmirror.remote.registry")

# The OCI distribution spec lets registries refuse manifests over 4 MiB; a bigger answer is not a
# manifest, and reading it whole would let a tampered registry fill memory.
MAX_TAG_PAGES = 1000  # of up to 1000 tags each: a million tags, far past any real repository
MAX_MANIFEST = 4 << 20


def read_capped(resp: requests.Response, registry: str, what: str) -> bytes:
    """Read a manifest-sized answer and close it; a registry that sends more than MAX_MANIFEST is
    refused rather than buffered, since it is untrusted and we hold the body in memory."""
    try:
        body: bytes = resp.raw.read(MAX_MANIFEST + 1, decode_content=True)
    finally:
        resp.close()
    if len(body) > MAX_MANIFEST:
        raise RegistryError(f"{registry}: {what} is larger than {MAX_MANIFEST >> 20} MiB: refused", registry=registry)
    return body


def pull_scope(repo: str) -> str:
    return f"repository:{repo}:pull"


def push_scope(repo: str) -> str:
    return f"repository:{repo}:pull,push"


class Registry:
    """The distribution API of one registry, on top of a Transport."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self.name = transport.registry
        self._cdn_urls: dict[str, str] = {}  # blob digest → the CDN URL its last redirect led to

    def __repr__(self) -> str:
        return f"Registry({self.name})"

    def _fail(self, resp: requests.Response, what: str) -> RegistryError:
        detail = error_detail(resp)
        msg = f"{self.name}: {what} failed with HTTP {resp.status_code}" + (f" ({detail})" if detail else "")
        resp.close()
        if resp.status_code == 404:
            return NotFound(msg, registry=self.name, status=404)
        return RegistryError(msg, registry=self.name, status=resp.status_code)

    # -- manifests ------------------------------------------------------------------------

    def head_manifest(self, repo: str, ref: str, *, retry: bool = True, deadline: float | None = None,
                      timeout: tuple[float, float] | None = None) -> ManifestHead | None:
        """HEAD a manifest: free on Docker Hub (a GET counts as a pull). None when absent."""
        validate_repository(repo)
        resp = self.transport.request("HEAD", f"/v2/{repo}/manifests/{ref}", scope=pull_scope(repo),
                                      headers={"Accept": ACCEPT}, retry=retry, deadline=deadline, timeout=timeout)
        resp.close()
        if resp.status_code == 404:
            return None
        if resp.status_code != 200:
            raise self._fail(resp, f"HEAD manifest {repo}:{ref}")
        digest = resp.headers.get("Docker-Content-Digest", "")
        rate = RateLimit.from_headers(resp.headers)
        if not digest:
            # The header is optional for registries: the digest is the hash of the manifest's bytes.
            # This GET counts as a pull on Docker Hub, which always sends the header.
            manifest = self.get_manifest(repo, ref)
            return ManifestHead(manifest.digest, manifest.media_type, len(manifest.body), rate)
        return ManifestHead(validate_digest(digest), resp.headers.get("Content-Type", ""),
                            int(resp.headers.get("Content-Length") or 0), rate)

    def rate_limit(self, repo: str, ref: str) -> tuple[bool, RateLimit | None]:
        """(tag exists, the rate-limit headers) from one HEAD, never retried: the headers matter
        even when the probed tag does not exist."""
        validate_repository(repo)
        resp = self.transport.request("HEAD", f"/v2/{repo}/manifests/{ref}", scope=pull_scope(repo),
                                      headers={"Accept": ACCEPT}, retry=False)
        resp.close()
        return resp.status_code == 200, RateLimit.from_headers(resp.headers)

    def ping(self) -> requests.Response:
        """`GET /v2/`: whether the registry is up, and its Date header for clock checks."""
        return self.transport.ping()

    def get_manifest(self, repo: str, ref: str) -> Manifest:
        """GET a manifest (counts as a pull on Docker Hub: use only when the bytes are needed)."""
        validate_repository(repo)
        resp = self.transport.request("GET", f"/v2/{repo}/manifests/{ref}", scope=pull_scope(repo),
                                      headers={"Accept": ACCEPT}, stream=True)
        if resp.status_code != 200:
            raise self._fail(resp, f"GET manifest {repo}:{ref}")
        self.transport.count_manifest_get()
        body = read_capped(resp, self.name, f"manifest {repo}:{ref}")
        digest = sha256_digest(body)
        expected = ref if ref.startswith("sha256:") else resp.headers.get("Docker-Content-Digest", digest)
        if digest != expected:
            raise DigestMismatch(f"{self.name}: manifest {repo}@{ref} hashes to {digest}, expected {expected}")
        media_type = resp.headers.get("Content-Type", "").split(";")[0].strip()
        if media_type not in MANIFEST_TYPES:
            media_type = json.loads(body).get("mediaType", media_type)
        return Manifest(body, media_type, digest)

    def put_manifest(self, repo: str, ref: str, manifest: Manifest) -> str:
        """PUT manifest bytes unchanged; returns the digest the registry computed."""
        self._put_manifest(repo, ref, manifest)
        return manifest.digest

    def put_referrer(self, repo: str, manifest: Manifest) -> bool:
        """PUT a manifest that names a `subject`, by digest. True when the registry answered
        `OCI-Subject`: it has the referrers API and lists the manifest itself; False means the
        client must add it to the fallback tag's index (OCI distribution spec 1.1)."""
        return bool(self._put_manifest(repo, manifest.digest, manifest).get("OCI-Subject"))

    def _put_manifest(self, repo: str, ref: str, manifest: Manifest) -> Any:
        validate_repository(repo)
        resp = self.transport.request("PUT", f"/v2/{repo}/manifests/{ref}", scope=push_scope(repo),
                                      headers={"Content-Type": manifest.media_type}, data=manifest.body)
        if resp.status_code not in (200, 201, 202):
            raise self._fail(resp, f"PUT manifest {repo}:{ref}")
        resp.close()
        digest = resp.headers.get("Docker-Content-Digest", "")
        if digest and digest != manifest.digest:
            raise DigestMismatch(f"{self.name}: stored manifest {repo}:{ref} as {digest}, expected {manifest.digest}")
        return resp.headers

    def delete_manifest(self, repo: str, digest: str) -> None:
        validate_repository(repo)
        validate_digest(digest)
        resp = self.transport.request("DELETE", f"/v2/{repo}/manifests/{digest}", scope=f"repository:{repo}:*")
        if resp.status_code not in (200, 202):
            raise self._fail(resp, f"DELETE manifest {repo}@{digest}")
        resp.close()

    def list_tags(self, repo: str, page_size: int = 1000, max_pages: int = MAX_TAG_PAGES) -> list[str]:
        """All tags of `repo`, following `Link: <...>; rel="next"` pagination.

        The answer is the registry's word, so it is bounded: a `next` link seen before, a page that
        adds no tag, or more than `max_pages` pages fail at once (a LAN whose Link points at itself
        would otherwise loop forever), and a name that is not a valid tag is dropped with a warning
        before it can reach a URL."""
        validate_repository(repo)
        tags: list[str] = []
        path: str | None = f"/v2/{repo}/tags/list?{urlencode({'n': page_size})}"
        seen: set[str] = set()
        while path:
            if path in seen or len(seen) >= max_pages:
                why = "points back to a page already read" if path in seen else f"goes past {max_pages} pages"
                raise RegistryError(f"{self.name}: the tag list of {repo} {why}; refusing to follow it "
                                    "(a broken or tampered registry)", registry=self.name)
            seen.add(path)
            resp = self.transport.request("GET", path, scope=pull_scope(repo))
            if resp.status_code == 404:
                resp.close()
                return tags
            if resp.status_code != 200:
                raise self._fail(resp, f"list tags of {repo}")
            try:
                page = resp.json().get("tags") or []
            except (ValueError, AttributeError):
                raise RegistryError(f"{self.name}: the tag list of {repo} is not a JSON object",
                                    registry=self.name) from None
            if not isinstance(page, list):
                raise RegistryError(f"{self.name}: the tag list of {repo} has no list of tags",
                                    registry=self.name)
            valid = [t for t in page if isinstance(t, str) and TAG_RE.fullmatch(t)]
            if len(valid) < len(page):
                log.warning("%s: dropped %d invalid tag name(s) from the tag list of %s", self.name,
                            len(page) - len(valid), repo)
            nxt = resp.links.get("next", {}).get("url")
            if nxt and not page:
                raise RegistryError(f"{self.name}: the tag list of {repo} sent an empty page with a next link",
                                    registry=self.name)
            tags.extend(valid)
            path = urljoin(self.transport.url("/"), nxt) if nxt else None
        return tags

    # -- blobs ----------------------------------------------------------------------------

    def head_blob(self, repo: str, digest: str) -> int | None:
        """Size of the blob if present, else None."""
        resp = self.transport.request("HEAD", f"/v2/{repo}/blobs/{validate_digest(digest)}", scope=pull_scope(repo))
        resp.close()
        if resp.status_code == 404:
            return None
        if resp.status_code not in (200, 307):
            raise self._fail(resp, f"HEAD blob {repo}@{digest}")
        return int(resp.headers.get("Content-Length") or 0)

    def open_blob(self, repo: str, digest: str, *, start: int = 0, end: int | None = None) -> requests.Response:
        """A streaming GET of a blob, or of the bounded byte range start..end. Redirects to a CDN are
        followed, and requests drops the Authorization header when the host changes.

        The CDN URL a redirect led to is remembered per blob and asked directly for the next ranges:
        one round trip per range instead of two. Such URLs are signed and expire; any failure there
        drops it and the registry is asked again (and redirects again)."""
        # identity: a compressing proxy on the way must not change the bytes we hash and store.
        headers = {"Accept-Encoding": "identity"}
        if end is not None:
            headers["Range"] = f"bytes={start}-{end}"
        elif start:
            # An open-ended range makes some servers stream the whole remainder for every chunk.
            raise ValueError("open-ended ranges are never sent: give the last byte too")
        cdn = self._cdn_urls.get(digest)
        if cdn is not None:
            try:
                resp = self.transport.get_elsewhere(cdn, headers)
                if resp.status_code in (200, 206):
                    return resp
                log.debug("%s: the CDN URL answered %d; asking the registry again", digest[:19], resp.status_code)
                resp.close()
            except (requests.ConnectionError, requests.Timeout) as exc:
                log.debug("%s: the CDN URL failed (%s); asking the registry again", digest[:19], exc)
            self._cdn_urls.pop(digest, None)
        resp = self.transport.request("GET", f"/v2/{repo}/blobs/{validate_digest(digest)}", scope=pull_scope(repo),
                                      headers=headers, stream=True)
        if resp.status_code not in (200, 206):
            raise self._fail(resp, f"GET blob {repo}@{digest}")
        if resp.history and urlsplit(resp.url).netloc != urlsplit(self.transport.url("/")).netloc:
            self._cdn_urls[digest] = resp.url  # one dict store: atomic, and the range threads only race to equal values
        return resp

    def read_blob(self, repo: str, digest: str, on_bytes: Any = None) -> int:
        """Read a whole blob and check its digest, keeping nothing: through a pull-through cache,
        this is what makes the cache fetch and store it. Returns the size."""
        resp = self.open_blob(repo, digest)
        try:
            reader = HashingReader(resp.iter_content(CHUNK), digest, on_bytes)
            for _ in reader:
                pass
            return reader.size
        finally:
            resp.close()

    def accepts_pushes(self, repo: str) -> bool:
        """False for a pull-through cache (Distribution's proxy mode, Harbor proxy projects), which
        refuses uploads; True when an upload session opens (it is cancelled at once)."""
        resp = self.transport.request("POST", f"/v2/{repo}/blobs/uploads/", scope=push_scope(repo))
        resp.close()
        if resp.status_code == 202:
            self.cancel_upload(repo, UploadSession(self._location(resp), 0))
            return True
        if resp.status_code in (405, 501) or "UNSUPPORTED" in error_detail(resp).upper():
            return False
        raise self._fail(resp, f"open an upload on {repo}")

    def mount_blob(self, repo: str, digest: str, from_repo: str) -> bool:
        """Cross-repository mount: the registry links a blob it already holds. True if mounted; a
        session the registry opened instead is cancelled (see `mount_or_open` to keep it)."""
        mounted, session = self.mount_or_open(repo, digest, from_repo)
        if session is not None:
            self.cancel_upload(repo, session)
        return mounted

    def mount_or_open(self, repo: str, digest: str, from_repo: str) -> tuple[bool, UploadSession | None]:
        """A mount, or (202, as the spec allows) the upload session the registry opened instead,
        for the caller to upload into: one POST either way."""
        query = urlencode({"mount": validate_digest(digest), "from": validate_repository(from_repo)})
        resp = self.transport.request(
            "POST", f"/v2/{repo}/blobs/uploads/?{query}",
            scope=f"{push_scope(repo)} {pull_scope(from_repo)}", headers={"Content-Length": "0"},
        )
        resp.close()
        if resp.status_code == 201:
            return True, None
        if resp.status_code == 202:
            location = resp.headers.get("Location")
            return False, UploadSession(self._location(resp), 0) if location else None
        raise self._fail(resp, f"mount {from_repo}@{digest} into {repo}")

    def upload_blob(self, repo: str, digest: str, chunks: Iterable[Chunk],
                    session: UploadSession | None = None, size: int | None = None) -> None:
        """Upload a blob as one streamed PUT (into `session` if one is open already). Not retried
        here: the body is a one-shot stream, so the caller retries the whole copy (same policy).
        With `size`, the PUT carries a Content-Length instead of chunked transfer encoding, whose
        framing copies every chunk once more."""
        validate_digest(digest)
        body: Iterable[Chunk] = iter(chunks) if size is None else Sized(chunks, size)
        self._put_upload(repo, session or self.start_upload(repo), digest, data=body,
                         headers={"Content-Type": "application/octet-stream"})

    # -- chunked (resumable) uploads: POST, PATCH per chunk, GET status, PUT ?digest ---------

    def start_upload(self, repo: str) -> UploadSession:
        """Open an upload session (no body, so the request is retried like any other)."""
        resp = self.transport.request("POST", f"/v2/{repo}/blobs/uploads/", scope=push_scope(repo),
                                      headers={"Content-Length": "0"})
        resp.close()
        if resp.status_code != 202 or not resp.headers.get("Location"):
            raise self._fail(resp, f"start upload to {repo}")
        return UploadSession(self._location(resp), 0)

    def upload_chunk(self, repo: str, session: UploadSession, chunks: Iterable[Chunk], length: int) -> UploadSession:
        """PATCH the next `length` bytes (Content-Range from the session's offset). Not retried:
        the body is a one-shot stream; the caller asks `upload_status` and resumes."""
        start, end = session.offset, session.offset + length - 1
        resp = self.transport.request(
            "PATCH", session.location, scope=push_scope(repo), retry=False, data=Sized(chunks, length),
            headers={"Content-Type": "application/octet-stream", "Content-Range": f"{start}-{end}"},
        )
        resp.close()
        if resp.status_code != 202:
            raise self._fail(resp, f"PATCH upload {repo} bytes {start}-{end}")
        acknowledged = range_end(resp.headers.get("Range"))
        if acknowledged is not None and acknowledged != end + 1:
            raise TransientError(f"{self.name}: PATCH of bytes {start}-{end} acknowledged up to byte {acknowledged}")
        return UploadSession(self._location(resp, session.location), end + 1)

    def upload_status(self, repo: str, session: UploadSession) -> UploadSession | None:
        """How many bytes the registry holds for this session; None if the session is gone
        (BLOB_UPLOAD_UNKNOWN / BLOB_UPLOAD_INVALID), so the caller starts a new one."""
        resp = self.transport.request("GET", session.location, scope=push_scope(repo))
        resp.close()
        if resp.status_code in (400, 404):
            return None
        if resp.status_code not in (200, 204):
            raise self._fail(resp, f"upload status {repo}")
        offset = range_end(resp.headers.get("Range"))
        if offset is None:
            return None  # no usable offset: start over rather than guess
        return UploadSession(self._location(resp, session.location), offset)

    def finish_upload(self, repo: str, session: UploadSession, digest: str) -> None:
        """Close the session with the digest the registry must verify; not retried (a retry of a
        PUT that did land meets a finished session: the caller checks the blob instead)."""
        self._put_upload(repo, session, digest, data=None, headers={"Content-Length": "0"})

    def _put_upload(self, repo: str, session: UploadSession, digest: str, *, data: Iterable[Chunk] | None,
                    headers: dict[str, str]) -> None:
        sep = "&" if "?" in session.location else "?"
        resp = self.transport.request("PUT", f"{session.location}{sep}{urlencode({'digest': validate_digest(digest)})}",
                                      scope=push_scope(repo), retry=False, headers=headers, data=data)
        resp.close()
        if resp.status_code != 201:
            raise self._fail(resp, f"upload {repo}@{digest}")

    def cancel_upload(self, repo: str, session: UploadSession) -> None:
        """Best effort: a registry also expires abandoned sessions on its own."""
        try:
            self.transport.request("DELETE", session.location, scope=push_scope(repo), retry=False).close()
        except Exception as exc:  # cleanup must never hide the error that caused it
            log.debug("cancel upload %s: %s", session.location, exc)

    def _location(self, resp: requests.Response, default: str | None = None) -> str:
        location = resp.headers.get("Location")
        if not location:
            if default is None:
                raise RegistryError(f"{self.name}: upload answer without a Location header", registry=self.name)
            return default
        return urljoin(self.transport.url("/"), location)

    def upload_bytes(self, repo: str, data: bytes) -> str:
        """Upload a small in-memory blob (configs, test layers); retried as a whole."""
        digest = sha256_digest(data)
        view = memoryview(data)

        def pieces() -> Iterable[Chunk]:
            # Bounded pieces: one giant chunk of a chunked body is refused by some servers.
            return (bytes(view[i:i + CHUNK]) for i in range(0, len(view), CHUNK))

        self.transport.policy.call(lambda: self.upload_blob(repo, digest, pieces()), f"upload {repo}@{digest[:19]}")
        return digest
