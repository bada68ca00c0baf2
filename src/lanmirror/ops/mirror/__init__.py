"""The mirror-to-lan use case: copy tags from the source registry to LAN registries.

Default engine `registry`: registry-to-registry, no daemon and no local disk. Per tag and target
the steps are modules of their own:

    plan       what the source holds and the target lacks (or: unchanged, warm a pull-through cache)
    blobs      per blob: HEAD on the target (skip) → cross-repository mount → streamed GET piped
               into a resumable upload, hashed on the way
    manifests  byte for byte (digests survive), children of an index first, the tag's last
    verify     every blob present before any manifest goes up; the tag read back after
    report     what happened, per tag and target

A rerun after an interruption therefore skips what already arrived and can never expose a tag
whose blobs are missing. `fanout` sends one source read to several targets; `daemon` is the
engine `docker` (pull, tag, push through the local daemon).
"""

from lanmirror.ops.mirror.context import Target, target_mode
from lanmirror.ops.mirror.fanout import mirror_to_all
from lanmirror.ops.mirror.options import ENGINES, LAN_MODES, MirrorOptions
from lanmirror.ops.mirror.outcome import MirrorReport, TagResult
from lanmirror.ops.mirror.pipeline import copy_tag, mirror
from lanmirror.ops.mirror.plan import blobs_to_copy

__all__ = ["ENGINES", "LAN_MODES", "MirrorOptions", "MirrorReport", "TagResult", "Target", "blobs_to_copy",
           "copy_tag", "mirror", "mirror_to_all", "target_mode"]
