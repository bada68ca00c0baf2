"""Synthetic images, built from scratch and pushed through the registry API.

Layers are gzip'd tars of seeded random bytes: the same seed gives the same blob, so two
"nightlies" can share layers exactly as real ones do. Images are real: the daemon pulls and runs
`inspect` on them; the config names no command because nothing here is ever executed.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import random
import tarfile
from dataclasses import dataclass, field
from functools import lru_cache

from lanmirror.remote.registry import DOCKER_LIST, DOCKER_MANIFEST, Manifest, Registry, sha256_digest

LAYER_TYPE = "application/vnd.docker.image.rootfs.diff.tar.gzip"
CONFIG_TYPE = "application/vnd.docker.container.image.v1+json"


@lru_cache(maxsize=64)
def layer(seed: str, size: int) -> tuple[bytes, str]:
    """(gzip blob, diff_id) for a tar holding `size` seeded random bytes. Stored (level 0) gzip: the
    data is incompressible anyway, and this keeps building a GB of layers fast."""
    # randbytes() overflows past 256 MiB: build big layers from 64 MiB pieces with derived seeds.
    piece = 64 << 20
    data = b"".join(random.Random(f"{seed}/{i}" if size > piece else seed).randbytes(min(piece, size - i))
                    for i in range(0, size, piece)) if size else b""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(f"layers/{hashlib.sha256(seed.encode()).hexdigest()[:16]}.bin")
        info.size = size
        info.mtime = 0
        tar.addfile(info, io.BytesIO(data))
    tar_bytes = raw.getvalue()
    blob = gzip.compress(tar_bytes, compresslevel=0, mtime=0)
    return blob, sha256_digest(tar_bytes)


@dataclass
class Image:
    manifest: Manifest
    blobs: dict[str, bytes] = field(repr=False)

    @property
    def digest(self) -> str:
        return self.manifest.digest

    @property
    def layer_digests(self) -> list[str]:
        return [d.digest for d in self.manifest.blobs()[1:]]


def build(seeds: list[str], size: int, arch: str = "amd64", sizes: list[int] | None = None) -> Image:
    """An image of one layer per seed, each `size` bytes (or `sizes[i]`), the last one on top."""
    blobs: dict[str, bytes] = {}
    layers = []
    diff_ids = []
    for i, seed in enumerate(seeds):
        blob, diff_id = layer(seed, sizes[i] if sizes else size)
        digest = sha256_digest(blob)
        blobs[digest] = blob
        layers.append({"mediaType": LAYER_TYPE, "size": len(blob), "digest": digest})
        diff_ids.append(diff_id)
    config = json.dumps({
        "architecture": arch, "os": "linux", "created": "2026-01-01T00:00:00Z",
        "config": {"Labels": {"org.lanmirror.test": ",".join(seeds)}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": "2026-01-01T00:00:00Z", "created_by": f"lanmirror test layer {s}"} for s in seeds],
    }, sort_keys=True).encode()
    config_digest = sha256_digest(config)
    blobs[config_digest] = config
    body = json.dumps({
        "schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": CONFIG_TYPE, "size": len(config), "digest": config_digest},
        "layers": layers,
    }, indent=3).encode()
    return Image(Manifest(body, DOCKER_MANIFEST, sha256_digest(body)), blobs)


def push(registry: Registry, repo: str, tag: str, image: Image) -> str:
    for digest, blob in image.blobs.items():
        if registry.head_blob(repo, digest) is None:
            registry.upload_bytes(repo, blob)
    return registry.put_manifest(repo, tag, image.manifest)


def index_of(images: dict[str, Image]) -> Manifest:
    body = json.dumps({
        "schemaVersion": 2, "mediaType": DOCKER_LIST,
        "manifests": [{"mediaType": DOCKER_MANIFEST, "size": len(img.manifest.body), "digest": img.digest,
                       "platform": {"architecture": arch, "os": "linux"}} for arch, img in images.items()],
    }, indent=3).encode()
    return Manifest(body, DOCKER_LIST, sha256_digest(body))


def push_index(registry: Registry, repo: str, tag: str, images: dict[str, Image]) -> str:
    """Push every platform image by digest, then the index under `tag`."""
    for img in images.values():
        push(registry, repo, img.digest, img)
    return registry.put_manifest(repo, tag, index_of(images))
