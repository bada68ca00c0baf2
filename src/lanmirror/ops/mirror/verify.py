"""The checks that keep a half-copied image from ever being published: every blob present on the
target before a manifest names it, and the tag reading back as the source's digest after."""

from __future__ import annotations

import concurrent.futures as cf

from lanmirror.errors import DigestMismatch, RegistryError
from lanmirror.ops.mirror.context import Target
from lanmirror.remote.manifest import Descriptor


def blobs_present(t: Target, blobs: dict[str, Descriptor]) -> None:
    """Every blob must be on the target before any manifest referencing it goes up."""
    with cf.ThreadPoolExecutor(max_workers=t.opts.parallel) as pool:
        sizes = dict(zip(blobs, pool.map(lambda dg: t.dst.head_blob(t.dst_repo, dg), blobs), strict=True))
    missing = [dg for dg, size in sizes.items() if size is None]
    if missing:
        raise RegistryError(f"{t.name}: {len(missing)} blob(s) missing after the copy "
                            f"(first {missing[0][:19]}); the manifest was not pushed")


def tag_reads_back(t: Target, tag: str, digest: str, stored: str) -> None:
    """The registry's answer to the PUT and a fresh HEAD must both be the source's digest."""
    check = t.dst.head_manifest(t.dst_repo, tag)
    if check is None or check.digest != digest or stored != digest:
        raise DigestMismatch(f"{t.name}: {tag} reads back as {check.digest if check else 'missing'}, "
                             f"expected {digest}")
