"""Engine `docker`: pull, tag and push through the local daemon, for sources the registry engine
cannot read. The daemon may re-encode manifests, so the pushed digest can differ (it is reported)."""

from __future__ import annotations

import logging

from lanmirror.errors import LanmirrorError
from lanmirror.name import DOCKER_HUB
from lanmirror.ops.mirror.context import Target
from lanmirror.ops.mirror.outcome import TagResult

log = logging.getLogger("lanmirror.ops.mirror")


def copy_with_docker(t: Target, tag: str, result: TagResult) -> None:
    engine = t.clients.engine()
    if engine is None:
        raise LanmirrorError("engine 'docker' needs the Docker daemon")
    src_ref = f"{t.src.transport.registry}/{t.src_repo}:{tag}" if t.opts.source_registry != DOCKER_HUB \
        else f"{t.src_repo}:{tag}"
    if t.opts.dry_run:
        result.status = "dry-run"
        result.plan.append(f"docker pull {src_ref}; docker tag; docker push {t.name}/{t.dst_repo}:{tag}")
        return
    source_creds = t.clients.credentials(t.opts.source_registry)
    pulled = t.policy.call(lambda: engine.pull(src_ref, source=t.opts.source_registry, creds=source_creds),
                           f"docker pull {src_ref}")
    result.bytes_read = pulled.bytes or 0  # as the daemon's progress sized the layers; its push is not sized
    target_repo = f"{t.name}/{t.dst_repo}"
    engine.tag(src_ref, target_repo, tag)
    pushed = engine.push(target_repo, tag, source=t.name, creds=t.clients.credentials(t.name))
    if pushed and pushed != result.digest:
        log.warning("%s: the daemon pushed %s, the source has %s (docker may re-encode manifests)", tag,
                    pushed[:19], result.digest[:19])
        result.digest = pushed
    result.status = "replaced" if result.previous_digest else "copied"
