"""One tag to one target, step by step: plan → blobs → manifests (verified). A failing tag is
reported and the run goes on with the next."""

from __future__ import annotations

import logging
import time

from lanmirror.errors import LanmirrorError
from lanmirror.ops.clients import Clients
from lanmirror.ops.mirror.blobs import copy_blobs, warm
from lanmirror.ops.mirror.context import ProgressFn, Target
from lanmirror.ops.mirror.daemon import copy_with_docker
from lanmirror.ops.mirror.manifests import publish
from lanmirror.ops.mirror.options import MirrorOptions
from lanmirror.ops.mirror.outcome import MirrorReport, TagResult
from lanmirror.ops.mirror.plan import Plan, prepare
from lanmirror.ops.mirror.referrers import copy_referrers
from lanmirror.retry import describe

log = logging.getLogger("lanmirror.ops.mirror")


def settle(t: Target, tag: str, result: TagResult) -> Plan | None:
    """The plan, with the cases that need no blob copy carried out here (warming a pull-through
    cache, the docker engine). What is returned is a copy still to do."""
    todo = prepare(t, tag, result)
    if todo is not None and todo.action == "warm":
        warm(t, tag, todo.digest, result)
        return None
    if todo is not None and todo.action == "docker":
        copy_with_docker(t, tag, result)
        return None
    return todo


def with_referrers(t: Target, result: TagResult) -> None:
    """What refers to the tag's image follows it (a tag copied now or already there: signatures
    are often added after the image). A failure here leaves the image published and is reported."""
    if t.opts.referrers != "all" or t.opts.engine != "registry" or t.opts.dry_run or \
            result.status not in ("copied", "replaced", "unchanged"):
        return
    try:
        copy_referrers(t, result.digest, result)
    except Exception as exc:
        why = str(exc) if isinstance(exc, LanmirrorError) else describe(exc)
        result.error = f"the image is mirrored, its signatures/referrers are not: {why}"
        log.error("%s: %s", result.tag, result.error)


def copy_tag(t: Target, tag: str) -> TagResult:
    started = time.monotonic()
    result = TagResult(tag, "failed", registry=t.name)
    try:
        todo = settle(t, tag, result)
        if todo is not None:
            copy_blobs(t, tag, todo.blobs, result)
            publish(t, tag, todo, result)
        with_referrers(t, result)
    except LanmirrorError as exc:
        result.status, result.error = "failed", str(exc)
        log.error("%s: %s", tag, exc)
    except Exception as exc:  # a network library error we did not classify: report, go on
        result.status, result.error = "failed", describe(exc)
        log.error("%s: %s", tag, describe(exc))
    result.seconds = round(time.monotonic() - started, 3)
    if result.status in ("copied", "replaced"):
        log.info("%s: %s %s (%d blobs copied, %d mounted, %d already there; %.1f MB in %.1fs, %.0f MB/s)",
                 tag, result.status, result.digest[:19], result.blobs_copied, result.blobs_mounted,
                 result.blobs_skipped, result.bytes / 1e6, result.seconds, result.mb_per_s)
    return result


def mirror(opts: MirrorOptions, clients: Clients, *, on_bytes: ProgressFn | None = None) -> MirrorReport:
    """Mirror every tag in `opts.tags` to `opts.lan_registry`; a failing tag does not stop the others."""
    opts.validate()
    target = Target(opts, clients, on_bytes)
    return MirrorReport([copy_tag(target, tag) for tag in dict.fromkeys(opts.tags)])
