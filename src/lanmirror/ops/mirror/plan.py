"""Everything before the blobs: what the source holds, what the target already has, and what is
left to copy. The only step that decides; the others carry the plan out."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from lanmirror.errors import RegistryError
from lanmirror.ops.mirror.context import Target
from lanmirror.ops.mirror.outcome import TagResult
from lanmirror.remote.manifest import Descriptor, Manifest, manifest_tree

log = logging.getLogger("lanmirror.ops.mirror")


@dataclass
class Plan:
    """What one target still needs for a tag. `copy`: the blobs, then the manifests (the tagged one
    last); `warm`: read the tag through a pull-through cache; `docker`: the daemon copies it."""

    digest: str
    manifests: list[Manifest] = field(default_factory=list)
    blobs: dict[str, Descriptor] = field(default_factory=dict)
    replacing: bool = False
    action: str = "copy"


def blobs_to_copy(tag: str, manifests: list[Manifest], result: TagResult) -> dict[str, Descriptor]:
    """The blobs the image manifests name, once each. Non-distributable layers (with `urls`) are
    left out with a warning: their manifest is copied as it is, and a pull fetches them from the
    URLs, as it would from the Hub."""
    blobs: dict[str, Descriptor] = {}
    for m in manifests:
        if m.is_index:
            continue
        for d in m.blobs():
            if d.distributable:
                blobs.setdefault(d.digest, d)
            elif d.digest not in result.foreign:
                result.foreign.append(d.digest)
                log.warning("%s: layer %s is non-distributable (its manifest lists URLs): the manifest is "
                            "copied, the layer is not", tag, d.digest[:19])
    return blobs


def prepare(t: Target, tag: str, result: TagResult) -> Plan | None:
    """The source's digest, whether the target already has it (or is a pull-through cache to warm,
    or gets the docker engine), and the manifests to copy. None when nothing is left to do
    (unchanged, or a dry run, whose plan is in `result`)."""
    head = t.src.head_manifest(t.src_repo, tag)
    if head is None:
        raise RegistryError(f"{t.opts.source_registry}/{t.src_repo}:{tag} does not exist on the source")
    result.digest = head.digest
    if t.pull_through():
        # Its manifest HEAD answers from upstream while it holds no blob: "unchanged" would be a
        # false claim. Reading through it is what fills it.
        return Plan(head.digest, action="warm")
    existing = t.dst.head_manifest(t.dst_repo, tag)
    if existing is not None and existing.digest == head.digest:
        result.status = "unchanged"
        log.info("%s: already on %s with digest %s", tag, t.name, head.digest[:19])
        return None
    if existing is not None:
        result.previous_digest = existing.digest
        if not t.opts.overwrite:
            raise RegistryError(f"{t.name}/{t.dst_repo}:{tag} exists with another digest "
                                f"({existing.digest[:19]}… vs {head.digest[:19]}…) and overwriting is off")
    if t.opts.engine == "docker":
        return Plan(head.digest, replacing=existing is not None, action="docker")
    manifests = manifest_tree(t.source_manifest(head.digest), t.source_manifest)
    blobs = blobs_to_copy(tag, manifests, result)
    if t.opts.dry_run:
        dry_run(t, tag, result, blobs)
        return None
    return Plan(head.digest, manifests, blobs, existing is not None)


def dry_run(t: Target, tag: str, result: TagResult, blobs: dict[str, Descriptor]) -> None:
    """What a real run would copy and skip, from HEADs only."""
    for d in blobs.values():
        if t.dst.head_blob(t.dst_repo, d.digest) is not None:
            result.blobs_skipped += 1
            result.plan.append(f"skip  {d.digest[:19]} ({d.size} bytes, already there)")
        else:
            result.blobs_copied += 1
            result.bytes += d.size
            result.plan.append(f"copy  {d.digest[:19]} ({d.size} bytes)")
    result.plan.append(f"then PUT manifest {tag}")
    result.status = "dry-run"
