"""--require-referrer: a LAN copy must carry what refers to the Hub's (a signature, an SBOM).

A LAN copy mirrored before the publisher signed the image has the right digest and no signature;
a fleet that verifies signatures before it runs an image cannot use it. Such a copy is stale, like
one with another digest, and resolve falls through to the next source. The Hub is asked with HEADs
where it can be (cosign's tags); an OCI artifact type needs its referrers list (the API, or the
fallback tag's index: a GET, which Docker Hub counts as a pull)."""

from __future__ import annotations

from lanmirror.errors import LanmirrorError
from lanmirror.ops.resolve.context import Run
from lanmirror.ops.resolve.model import Option
from lanmirror.remote.referrers import COSIGN, cosign_tag, list_referrers
from lanmirror.remote.registry import Registry
from lanmirror.retry import describe

COSIGN_KINDS = {**{k: k for k in COSIGN}, **{v: k for k, v in COSIGN.items()}}


def held(reg: Registry, repo: str, digest: str, kind: str) -> set[str]:
    """The digests of what `reg` lists of `kind` for `digest`: a LAN's answer is compared with the
    Hub's digests, not taken at its word, since any manifest can sit under a cosign tag's name."""
    if kind in COSIGN_KINDS:
        head = reg.head_manifest(repo, cosign_tag(digest, COSIGN_KINDS[kind]))
        return {head.digest} if head is not None else set()
    return {r.digest for r in list_referrers(reg, repo, digest).items if r.artifact_type == kind}


def lacking(run: Run, option: Option) -> str | None:
    """The first required type of which the Hub's copy carries something the LAN's does not."""
    for kind in run.opts.require_referrers:
        try:
            hub = held(run.hub(), run.upstream.repository, option.digest, kind)
        except LanmirrorError as exc:
            run.warn(f"could not tell whether {run.opts.hub_registry} has a {kind} for {option.cand.tag} "
                     f"({describe(exc)}); not requiring it")
            continue
        if not hub:
            continue  # nothing to require: the Hub's copy has none either
        lan = run.clients.registry(option.registry)
        if not hub <= held(lan, run.repository(option.registry), option.digest, kind):
            return kind
    return None
