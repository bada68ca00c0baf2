"""Publishing a tag on one target: manifests byte for byte (so digests survive), the children of an
index first and the tagged manifest last, only after every blob is verified present."""

from __future__ import annotations

from lanmirror.ops.mirror.context import Target
from lanmirror.ops.mirror.outcome import TagResult
from lanmirror.ops.mirror.plan import Plan
from lanmirror.ops.mirror.verify import blobs_present, tag_reads_back


def publish(t: Target, tag: str, plan: Plan, result: TagResult) -> None:
    blobs_present(t, plan.blobs)
    for m in plan.manifests[:-1]:
        t.dst.put_manifest(t.dst_repo, m.digest, m)
    stored = t.dst.put_manifest(t.dst_repo, tag, plan.manifests[-1])
    tag_reads_back(t, tag, plan.digest, stored)
    result.status = "replaced" if plan.replacing else "copied"
