"""After the tag: what refers to each mirrored digest (the tag's, and each platform's of an index)
goes with it: cosign's `.sig`/`.att`/`.sbom` tags, and OCI referrers, read through the source's
referrers API or its fallback tag, written so the target lists them (its API indexes them itself;
without one, its fallback tag's index is merged: nothing another client listed there is dropped).

Blobs first, verified present, then the manifest, as for the image. Nothing is written when the
target already has it: a second mirror costs HEADs (two per cosign tag found, two per fallback tag),
and a source GET only for what the target lacks."""

from __future__ import annotations

import logging

from lanmirror.errors import RegistryError
from lanmirror.ops.mirror.blobs import copy_blob
from lanmirror.ops.mirror.context import Target
from lanmirror.ops.mirror.outcome import TagResult
from lanmirror.ops.mirror.verify import blobs_present
from lanmirror.remote.manifest import INDEX_TYPES, Descriptor, manifest_tree
from lanmirror.remote.referrers import (
    COSIGN,
    Referrer,
    Referrers,
    cosign_tag,
    entries,
    fallback_tag,
    head_fallback,
    list_referrers,
    merged_index,
    referrers_api,
)

log = logging.getLogger("lanmirror.ops.mirror")

# What one subject may bring along: a source (or a tampered LAN acting as one) can list millions of
# referrers in 100 pages, each a copy. Past these, the rest is skipped with one warning.
MAX_REFERRERS = 64
MAX_REFERRER_BYTES = 256 << 20


class OverBudget(Exception):
    """A referrer whose blobs would take the subject past MAX_REFERRER_BYTES."""


def copy_referrers(t: Target, digest: str, result: TagResult) -> None:
    for subject in subjects(t, digest):
        for kind, artifact_type in COSIGN.items():
            if wanted(t, artifact_type):
                cosign(t, subject, kind, result)
        oci(t, subject, result)
    if result.referrers_copied:
        log.info("%s: %d signature(s), attestation(s) or SBOM(s) copied to %s", result.tag, result.referrers_copied,
                 t.name)


def subjects(t: Target, digest: str) -> list[str]:
    """The tag's digest and, for an index, each of its manifests'. Read from the target: its copy is
    the source's byte for byte, and a LAN read costs no Hub quota."""
    head = t.dst.head_manifest(t.dst_repo, digest)
    if head is None or head.media_type not in INDEX_TYPES:
        return [digest]
    return [digest, *(c.digest for c in t.dst.get_manifest(t.dst_repo, digest).children())]


def wanted(t: Target, artifact_type: str) -> bool:
    return not t.opts.artifact_types or artifact_type in t.opts.artifact_types


def cosign(t: Target, subject: str, kind: str, result: TagResult) -> None:
    tag = cosign_tag(subject, kind)
    src = t.src.head_manifest(t.src_repo, tag)
    if src is None:
        return
    dst = t.dst.head_manifest(t.dst_repo, tag)
    if dst is not None and dst.digest == src.digest:
        return
    copy_manifest(t, src.digest, result, tag=tag)
    result.referrers_copied += 1


def oci(t: Target, subject: str, result: TagResult) -> None:
    src = source_referrers(t, subject)
    if src is None:
        return
    items = [r for r in src.items if wanted(t, r.artifact_type)]
    if not items:
        return
    dst = list_referrers(t.dst, t.dst_repo, subject, api=t.dst_api)
    t.dst_api = dst.api
    have = {r.digest for r in dst.items}
    missing = [r for r in items if r.digest not in have]
    if not missing:
        return
    indexed = True
    copied: list[Referrer] = []
    room = MAX_REFERRER_BYTES
    for r in missing[:MAX_REFERRERS]:
        try:
            ok, spent = copy_manifest(t, r.digest, result, subject=subject, room=room)
        except OverBudget:
            break
        indexed, room = ok and indexed, room - spent
        copied.append(r)
        result.referrers_copied += 1
    skipped = len(missing) - len(copied)
    if skipped:
        log.warning("%s: %d of the %d referrers of %s not copied to %s: at most %d referrers and %d MB of "
                    "their blobs are copied per image", result.tag, skipped, len(missing), subject[:19], t.name,
                    MAX_REFERRERS, MAX_REFERRER_BYTES >> 20)
    if copied and not indexed:
        write_fallback(t, subject, src, dst, copied, whole=not skipped)


def source_referrers(t: Target, subject: str) -> Referrers | None:
    """What the source lists as referring to `subject`; None when there is nothing to do: nothing
    refers to it, or the target's fallback tag already is the source's (two HEADs, nothing read).
    Whether the source has the referrers API is asked once per run."""
    head = None
    if t.src_api is not True:
        head = head_fallback(t.src, t.src_repo, subject)
        if head is not None:
            dst_head = head_fallback(t.dst, t.dst_repo, subject)
            if dst_head is not None and dst_head.digest == head.digest:
                return None
    if t.src_api is not False:
        listed = referrers_api(t.src, t.src_repo, subject)
        t.src_api = listed is not None
        if listed is not None:
            return Referrers(listed, True)
    if head is None:
        return None
    index = t.src.get_manifest(t.src_repo, fallback_tag(subject))
    return Referrers(entries(index), False, index)


def write_fallback(t: Target, subject: str, src: Referrers, dst: Referrers, missing: list[Referrer], *,
                   whole: bool = True) -> None:
    """The target has no referrers API: list the new referrers under its fallback tag. With nothing
    there yet and nothing filtered out or skipped, the source's index goes as it is (the same digest
    on both sides: the next run sees that in two HEADs); otherwise the target's index gains what it
    lacks."""
    if dst.index is None and not dst.items and src.index is not None and not t.opts.artifact_types and whole:
        index = src.index
    else:
        index = merged_index(dst.index, missing)
    t.dst.put_manifest(t.dst_repo, fallback_tag(subject), index)


def copy_manifest(t: Target, digest: str, result: TagResult, tag: str | None = None, *, subject: str = "",
                  room: int | None = None) -> tuple[bool, int]:
    """One referrer (or, with `tag`, a cosign tag) with everything under it, blobs first. Returns
    whether the target lists it by itself (its referrers API answered `OCI-Subject`), and the bytes
    of its blobs. A referrer must name `subject` as its subject; with `room`, one whose blobs are
    larger raises OverBudget before anything is written."""
    top = t.source_manifest(digest)
    if tag is None:
        named = top.parsed().get("subject")
        if not isinstance(named, dict) or named.get("digest") != subject:
            raise RegistryError(f"{t.opts.source_registry}: referrer {digest[:19]}… does not name "
                                f"{subject[:19]}… as its subject")
    tree = manifest_tree(top, t.source_manifest)
    blobs: dict[str, Descriptor] = {}
    for m in tree:
        if not m.is_index:
            blobs.update({d.digest: d for d in m.blobs() if d.distributable})
    size = sum(d.size for d in blobs.values())
    if room is not None and size > room:
        raise OverBudget(digest)
    count, read = t.tally(result, "bytes_written"), t.tally(result, "bytes_read")
    for d in blobs.values():
        copy_blob(t, d, count, read)
    blobs_present(t, blobs)
    for m in tree[:-1]:
        t.dst.put_manifest(t.dst_repo, m.digest, m)
    if tag is not None:
        t.dst.put_manifest(t.dst_repo, tag, top)
        return True, size
    if t.dst.head_manifest(t.dst_repo, digest) is not None and t.dst_api:
        return True, size
    return t.dst.put_referrer(t.dst_repo, top) or bool(t.dst_api), size
