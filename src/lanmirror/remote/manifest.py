"""Manifests as data (like go-containerregistry's `pkg/v1`): the media types, `Descriptor`,
`Manifest` kept byte for byte, and the walk of an index's tree. No HTTP here: the registry client
(`registry`) fetches them, the copy and the endpoint use them."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lanmirror.errors import RegistryError
from lanmirror.name import validate_digest
from lanmirror.remote.ratelimit import RateLimit

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
INDEX_TYPES = frozenset({DOCKER_LIST, OCI_INDEX})
MANIFEST_TYPES = (OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST)
ACCEPT = ", ".join(MANIFEST_TYPES)
# Large enough that Python's per-chunk overhead vanishes, small enough to keep memory flat.

def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class ManifestHead:
    digest: str
    media_type: str
    size: int
    ratelimit: RateLimit | None = None  # Docker Hub's, when the answer had them


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: dict[str, Any] | None = None
    urls: tuple[str, ...] = ()  # a non-distributable ("foreign") layer: fetched from these, not the registry

    @property
    def distributable(self) -> bool:
        """Whether the registry is expected to hold this blob. A layer with `urls` is fetched from
        those by whoever pulls it; licences (e.g. Windows base layers) may forbid copying it."""
        return not self.urls


@dataclass(frozen=True)
class Manifest:
    """A manifest exactly as the registry stored it: copied byte for byte so digests survive."""

    body: bytes = field(repr=False)
    media_type: str
    digest: str

    def parsed(self) -> dict[str, Any]:
        data = json.loads(self.body)
        if not isinstance(data, dict):
            raise RegistryError("manifest is not a JSON object")
        return data

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES

    def children(self) -> list[Descriptor]:
        """Platform manifests of an index."""
        return [Descriptor(m.get("mediaType", ""), validate_digest(m["digest"]), int(m.get("size", 0)),
                           m.get("platform")) for m in self.parsed().get("manifests", [])]

    def blobs(self) -> list[Descriptor]:
        """Config first, then layers, of an image manifest."""
        data = self.parsed()
        out = []
        if "config" in data:
            c = data["config"]
            out.append(Descriptor(c.get("mediaType", ""), validate_digest(c["digest"]), int(c.get("size", 0))))
        for layer in data.get("layers", []):
            urls = layer.get("urls") or ()
            out.append(Descriptor(layer.get("mediaType", ""), validate_digest(layer["digest"]),
                                  int(layer.get("size", 0)),
                                  urls=tuple(str(u) for u in urls) if isinstance(urls, list) else ()))
        return out


# buildx writes an index of images plus attestations; an index of indexes is legal and seen in the
# field. Deeper than this is not an image, it is a registry trying to make us walk forever.
MAX_INDEX_DEPTH = 4


def manifest_tree(top: Manifest, fetch: Callable[[str], Manifest]) -> list[Manifest]:
    """Every manifest under `top`, children before their index and `top` last: the order a
    registry accepts them in (an index may only name manifests it already holds)."""
    out: list[Manifest] = []
    seen: set[str] = set()

    def walk(m: Manifest, depth: int) -> None:
        if m.is_index:
            if depth >= MAX_INDEX_DEPTH:
                raise RegistryError(f"index {m.digest[:19]}… nests deeper than {MAX_INDEX_DEPTH} levels")
            for child in m.children():
                if child.digest not in seen:
                    seen.add(child.digest)
                    walk(fetch(child.digest), depth + 1)
        out.append(m)

    walk(top, 0)
    return out
