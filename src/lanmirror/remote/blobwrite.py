"""Writing one blob to the target registry, resumable where the registry lets it be.

A blob up to one upload chunk goes up as a single streamed PUT: restarting it costs little. A
larger blob goes up as an OCI chunked upload: POST, one PATCH per chunk (`Content-Range`,
`Content-Length`), then a PUT `?digest=` with no body. The hash state is kept at every chunk the
registry acknowledged, so when a request fails the writer asks the registry how much it holds
(`GET` on the session, `Range: 0-<last>`) and goes on from there. The source is re-opened at the
last acknowledged chunk boundary; bytes the registry kept past it are read and hashed, not sent
again. A registry that dropped the session (CNCF Distribution 2.8 invalidates it when a PATCH body
broke half-way) gets a fresh upload from byte 0. The digest is checked before the closing PUT, so
bad bytes are never committed.

Nothing is buffered here: the bytes stream from the source reader (bounded on its own) into the
request, and memory stays flat however large the chunk.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from lanmirror.errors import DigestMismatch, RegistryError, TransientError
from lanmirror.remote.hashing import Chunk, HashingReader
from lanmirror.remote.registry import Registry
from lanmirror.remote.upload import UploadSession
from lanmirror.retry import RetryPolicy, describe, is_transient

log = logging.getLogger("lanmirror.remote.blobwrite")

UPLOAD_CHUNK = 64 << 20

SourceFn = Callable[[int], Iterable[Chunk]]


class _SourceFailed(Exception):
    """The source broke (after its own resumes) while feeding a request body. Kept apart from
    target errors: urllib3 would otherwise report a source `ConnectionError` as the target's."""


class BlobWriter:
    """Upload `digest` (`size` bytes) to `repo` on `registry`, reading from `source(offset)`."""

    def __init__(self, registry: Registry, repo: str, digest: str, size: int, source: SourceFn,
                 policy: RetryPolicy, *, chunk_size: int = UPLOAD_CHUNK,
                 on_bytes: Callable[[int], None] | None = None, session: UploadSession | None = None) -> None:
        self.registry = registry
        self.repo = repo
        self.digest = digest
        self.size = size
        self.source = source
        self.policy = policy
        self.chunk_size = chunk_size
        self.on_bytes = on_bytes
        self.resumes = 0  # sessions continued after a failed request
        self.restarts = 0  # sessions the registry dropped, started again from byte 0
        self.reread = 0  # source bytes read again only to rebuild the hash at a resume point
        self._counted = 0
        self._session: UploadSession | None = None
        self._opened = session  # a session the registry opened already (a refused mount's): used first

    def _take_opened(self) -> UploadSession | None:
        session, self._opened = self._opened, None
        return session

    def run(self) -> None:
        if self.chunk_size <= 0 or self.size <= self.chunk_size:
            self.registry.upload_blob(self.repo, self.digest, HashingReader(self.source(0), self.digest, self.on_bytes),
                                      self._take_opened(), size=self.size)
            return
        self._chunked()

    # -- chunked -----------------------------------------------------------------------------

    def _chunked(self) -> None:
        failures = 0
        session: UploadSession | None = None
        hashes: dict[int, Any] = {}
        while True:
            if session is None:
                session = self._take_opened() or self.registry.start_upload(self.repo)
                hashes = {0: hashlib.sha256()}
            self._session = session
            try:
                session = self._send(session, hashes)
                actual = "sha256:" + hashes[self.size].hexdigest()
                if actual != self.digest:
                    raise DigestMismatch(f"blob bytes hash to {actual}, expected {self.digest}: corrupt data refused")
                self.registry.finish_upload(self.repo, session, self.digest)
                return
            except _SourceFailed as exc:
                self.registry.cancel_upload(self.repo, session)
                raise exc.__cause__ or exc from None
            except DigestMismatch:
                self.registry.cancel_upload(self.repo, session)
                raise
            except Exception as exc:
                session = self._session or session  # the last one the registry acknowledged
                # 400/404/416 on the session: the registry dropped it, refused the bytes it holds
                # (DIGEST_INVALID) or holds other bytes than we thought; all are answered by
                # starting over, within the same budget.
                dropped = isinstance(exc, RegistryError) and exc.status in (400, 404, 416)
                if not (is_transient(exc) or dropped):
                    self.registry.cancel_upload(self.repo, session)
                    raise
                failures += 1
                err = exc if is_transient(exc) else TransientError(str(exc))
                try:
                    self.policy.pause(f"upload {self.digest[:19]} (session at byte {session.offset})", failures, err)
                except BaseException:
                    self.registry.cancel_upload(self.repo, session)  # out of attempts: leave nothing open
                    raise
                session = self._recover(session)
                if session is not None and session.offset > self.size:
                    session = None
                if session is None:
                    if self.registry.head_blob(self.repo, self.digest) == self.size:
                        return  # the closing PUT landed; only its answer was lost
                    self.restarts += 1
                    log.warning("%s: %s dropped the upload session; uploading again from byte 0 (%s)",
                                self.digest[:19], self.registry.name, describe(exc))

    def _recover(self, session: UploadSession) -> UploadSession | None:
        status = self.registry.upload_status(self.repo, session)
        if status is not None:
            self.resumes += 1
            log.warning("%s: %s holds %d of %d bytes; resuming the upload there", self.digest[:19],
                        self.registry.name, status.offset, self.size)
        return status

    def _send(self, session: UploadSession, hashes: dict[int, Any]) -> UploadSession:
        """PATCH from `session.offset` to the end; keep (in `_session`) the session and the hash
        state of each chunk the registry acknowledges, for the resume after a failure."""
        base = max(o for o in hashes if o <= session.offset)
        hasher = hashes[base].copy()
        source = iter(self.source(base))
        pending: Chunk = b""

        def pull() -> Chunk:
            nonlocal pending
            if pending:
                data, pending = pending, b""
                return data
            try:
                return next(source)
            except StopIteration:
                ended = TransientError(f"{self.digest[:19]}: the source ended before the blob's {self.size} bytes")
                raise _SourceFailed(str(ended)) from ended
            except Exception as exc:
                raise _SourceFailed(describe(exc)) from exc

        def body(start: int, length: int) -> Iterator[Chunk]:
            nonlocal pending
            left = length
            while left:
                data = pull()
                if len(data) > left:
                    view = memoryview(data)  # split without copying: the rest goes in the next request
                    data, pending = view[:left], view[left:]
                hasher.update(data)
                left -= len(data)
                end = start + length - left
                if self.on_bytes and end > self._counted:
                    self.on_bytes(end - self._counted)
                    self._counted = end
                yield data

        try:
            skip = session.offset - base
            self.reread += skip
            for _ in body(base, skip):  # the registry kept these bytes: hash them, send nothing
                pass
            while session.offset < self.size:
                boundary = min((session.offset // self.chunk_size + 1) * self.chunk_size, self.size)
                length = boundary - session.offset
                session = self.registry.upload_chunk(self.repo, session, body(session.offset, length), length)
                hashes[session.offset] = hasher.copy()
                self._session = session
        finally:
            close = getattr(source, "close", None)
            if close:
                close()
        hashes[self.size] = hasher
        return session
