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

from lanmirror.remote.manifest import DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, Manifest, sha256_digest
from lanmirror.remote.registry import Registry

LAYER_TYPE = "application/vnd.docker.image.rootfs.diff.tar.gzip"
CONFIG_TYPE = "application/vnd.docker.container.image.v1+json"


def layer_tar(seed: str, size: int) -> bytes:
    """The uncompressed tar of a layer: one file of `size` seeded random bytes."""
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
    return raw.getvalue()


@lru_cache(maxsize=64)
def layer(seed: str, size: int) -> tuple[bytes, str]:
    """(gzip blob, diff_id) for a tar holding `size` seeded random bytes. Stored (level 0) gzip: the
    data is incompressible anyway, and this keeps building a GB of layers fast."""
    tar_bytes = layer_tar(seed, size)
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


# -- the shapes buildx and other builders push ------------------------------------------------------

OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_LAYER_FOREIGN = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
DOCKER_LAYER_FOREIGN = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"  # Windows base layers
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
IN_TOTO = "application/vnd.in-toto+json"


def zstd_frame(data: bytes) -> bytes:
    """A valid zstd frame holding `data` in raw (stored) blocks: the format, not the compression,
    is what a registry copy and a daemon's decoder have to get right (RFC 8878, 3.1.1)."""
    block = 128 << 10
    out = bytearray(b"\x28\xb5\x2f\xfd")  # magic number
    out += bytes([0x00, 0x38])  # no content size, no checksum; window 2**17 (= the largest block)
    pieces = [data[i:i + block] for i in range(0, len(data), block)] or [b""]
    for n, piece in enumerate(pieces):
        header = (len(piece) << 3) | (0 << 1) | (1 if n == len(pieces) - 1 else 0)  # raw block
        out += header.to_bytes(3, "little") + piece
    return bytes(out)


def build_oci(seeds: list[str], size: int, *, zstd: bool = False, foreign: dict[str, str] | None = None,
              subject: Image | None = None, arch: str = "amd64", docker_v2: bool = False) -> Image:
    """An OCI image manifest (`docker_v2`: a Docker v2 one). `zstd` compresses its layers with zstd;
    `foreign` maps a seed to the URL its non-distributable layer is served from (the blob is then
    not pushed); `subject` makes it refer to another image, as a signature or SBOM does."""
    layer_type, foreign_type = (LAYER_TYPE, DOCKER_LAYER_FOREIGN) if docker_v2 else (OCI_LAYER, OCI_LAYER_FOREIGN)
    blobs: dict[str, bytes] = {}
    layers, diff_ids = [], []
    for seed in seeds:
        if zstd:
            tar = layer_tar(seed, size)
            blob, diff_id = zstd_frame(tar), sha256_digest(tar)
        else:
            blob, diff_id = layer(seed, size)  # the same gzip'd layer a Docker v2 image of that seed has
        digest = sha256_digest(blob)
        desc: dict[str, object] = {"mediaType": OCI_LAYER_ZSTD if zstd else layer_type, "size": len(blob),
                                   "digest": digest}
        if foreign and seed in foreign:
            desc.update(mediaType=foreign_type, urls=[foreign[seed]])
        else:
            blobs[digest] = blob
        layers.append(desc)
        diff_ids.append(diff_id)
    config = json.dumps({"architecture": arch, "os": "linux", "created": "2026-01-01T00:00:00Z",
                         "config": {"Labels": {"org.lanmirror.test": ",".join(seeds)}},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}, sort_keys=True).encode()
    blobs[sha256_digest(config)] = config
    media_type = DOCKER_MANIFEST if docker_v2 else OCI_MANIFEST
    doc: dict[str, object] = {"schemaVersion": 2, "mediaType": media_type,
                              "config": {"mediaType": CONFIG_TYPE if docker_v2 else OCI_CONFIG, "size": len(config),
                                         "digest": sha256_digest(config)},
                              "layers": layers}
    if subject is not None:
        doc["subject"] = {"mediaType": subject.manifest.media_type, "size": len(subject.manifest.body),
                          "digest": subject.digest}
    body = json.dumps(doc, indent=2).encode()
    return Image(Manifest(body, media_type, sha256_digest(body)), blobs)


def attestation_for(image: Image) -> Image:
    """What buildx attaches with --provenance/--sbom: an OCI manifest of in-toto statements."""
    statement = json.dumps({"_type": "https://in-toto.io/Statement/v0.1",
                            "predicateType": "https://slsa.dev/provenance/v0.2",
                            "subject": [{"name": "_", "digest": {"sha256": image.digest[7:]}}],
                            "predicate": {"builder": {"id": "lanmirror-tests"}}}).encode()
    config = b'{"architecture":"unknown","os":"unknown","config":{},"rootfs":{"type":"layers","diff_ids":[]}}'
    body = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "size": len(config), "digest": sha256_digest(config)},
        "layers": [{"mediaType": IN_TOTO, "size": len(statement), "digest": sha256_digest(statement),
                    "annotations": {"in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2"}}],
    }, indent=2).encode()
    return Image(Manifest(body, OCI_MANIFEST, sha256_digest(body)),
                 {sha256_digest(config): config, sha256_digest(statement): statement})


def oci_index(entries: list[tuple[Image | Manifest, dict[str, object]]]) -> Manifest:
    """An OCI index of (image or nested index, extra descriptor fields such as platform)."""
    manifests = []
    for item, extra in entries:
        m = item.manifest if isinstance(item, Image) else item
        manifests.append({"mediaType": m.media_type, "size": len(m.body), "digest": m.digest, **extra})
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}, indent=2).encode()
    return Manifest(body, OCI_INDEX, sha256_digest(body))


def buildx_index(image: Image) -> tuple[Manifest, list[Image]]:
    """The index `docker buildx build --push` writes by default: the image, and its attestation
    manifest on platform unknown/unknown pointing back at it."""
    att = attestation_for(image)
    index = oci_index([
        (image, {"platform": {"architecture": "amd64", "os": "linux"}}),
        (att, {"platform": {"architecture": "unknown", "os": "unknown"},
               "annotations": {"vnd.docker.reference.digest": image.digest,
                               "vnd.docker.reference.type": "attestation-manifest"}}),
    ])
    return index, [image, att]
