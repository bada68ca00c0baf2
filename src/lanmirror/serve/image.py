"""The one image an endpoint may serve: its manifests by digest and the blobs they name.

Only the top manifest is fetched up front. A platform manifest of an index is fetched when the
daemon asks for it (it asks for its own platform only: fetching every child would spend Hub quota
on platforms nobody pulls), and only if the index names it, at most `MAX_INDEX_DEPTH` deep."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

from lanmirror.errors import DigestMismatch
from lanmirror.remote.manifest import MAX_INDEX_DEPTH, OCI_MANIFEST, Manifest, sha256_digest

# A tiny image of our own, served beside the real one, that the daemon is asked to inspect first:
# it tells whether the daemon can reach this endpoint before anything is fetched from a source.
PROBE_CONFIG = b"{}"


def probe_manifest() -> Manifest:
    config = {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256_digest(PROBE_CONFIG),
              "size": len(PROBE_CONFIG)}
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": []},
                      separators=(",", ":")).encode()
    return Manifest(body, OCI_MANIFEST, sha256_digest(body))


class ServedImage:
    def __init__(self, load: Callable[[str], Manifest]) -> None:
        self._load = load
        self._lock = threading.Lock()
        self.manifests: dict[str, Manifest] = {}
        self.blobs: dict[str, int] = {}
        self._children: dict[str, int] = {}  # digest of a manifest an index names → its depth
        self.probe = probe_manifest()
        self.manifests[self.probe.digest] = self.probe
        self.small: dict[str, bytes] = {sha256_digest(PROBE_CONFIG): PROBE_CONFIG}  # served from memory

    def add_top(self, top: Manifest) -> None:
        """The manifest the daemon pulls by digest: set once the daemon is known to reach us."""
        with self._lock:
            self._add(top, 0)

    def _add(self, manifest: Manifest, depth: int) -> None:
        self.manifests[manifest.digest] = manifest
        if manifest.is_index:
            if depth < MAX_INDEX_DEPTH:
                for child in manifest.children():
                    self._children.setdefault(child.digest, depth + 1)
            return
        for blob in manifest.blobs():
            if blob.distributable:  # a foreign layer is fetched from its URLs by the daemon itself
                self.blobs[blob.digest] = blob.size

    def manifest(self, digest: str) -> Manifest | None:
        """The manifest `digest` if it belongs to this image (fetched on first use), else None."""
        with self._lock:
            known = self.manifests.get(digest)
            depth = self._children.get(digest)
        if known is not None or depth is None:
            return known
        fetched = self._load(digest)
        if fetched.digest != digest:
            raise DigestMismatch(f"manifest {digest[:19]}… came back as {fetched.digest[:19]}…")
        with self._lock:
            self._add(fetched, depth)
        return fetched

    def blob_size(self, digest: str) -> int | None:
        with self._lock:
            if digest in self.small:
                return len(self.small[digest])
            return self.blobs.get(digest)
