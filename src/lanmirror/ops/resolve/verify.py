"""Step 4: a LAN copy is trusted only if its digest equals the Hub's (one free HEAD)."""

from __future__ import annotations

from lanmirror.ops.resolve.context import Run
from lanmirror.ops.resolve.model import Candidate, Option
from lanmirror.ops.resolve.probe import hub_digest
from lanmirror.ops.resolve.provenance import clear, unverified_source

STALE = "stale"


def verify_lan(run: Run, option: Option, hub_hits: dict[str, str] | None) -> bool | str:
    """True when the Hub has the same digest; False when the Hub could not tell (unreachable, or
    the tag is not there: the copy is used, marked unverified); STALE when the Hub has another."""
    cand, _, registry, digest = option
    upstream = hub_hits.get(cand.tag) if hub_hits is not None else hub_digest(run, cand.tag)
    hub, repo = run.opts.hub_registry, run.opts.repo
    if isinstance(upstream, Exception):
        run.warn(f"LAN copy {registry}/{repo}:{cand.tag} is unverified: the upstream {hub} could not be asked")
        return False
    if upstream is None:
        run.warn(f"{cand.tag} is on the LAN registry {registry} but not on {hub}; using the LAN copy unverified")
        return False
    if upstream != digest:
        run.warn(f"stale mirror: {registry}/{repo}:{cand.tag} is {digest[:19]}… but {hub} has {upstream[:19]}…; "
                 "not using the LAN copy")
        return STALE
    return True


def verify_local(run: Run, cand: Candidate) -> bool | str | None:
    """A cached image under the canonical name is whatever the last job tagged there: trust it only
    if one of its RepoDigests is the Hub's digest (one free HEAD). STALE when the Hub has another
    digest; False when the Hub could not tell, or this runner once pulled it unverified from a LAN;
    None without --verify."""
    if not run.opts.verify:
        return None
    image = run.local_images[cand.tag]
    upstream = hub_digest(run, cand.tag)
    ref = f"{run.upstream.with_tag(cand.tag)}"
    if isinstance(upstream, str):
        if any(d.endswith("@" + upstream) for d in image.repo_digests):
            clear(image.id)
            return True
        run.warn(f"the cached {ref} is not the image {run.opts.hub_registry} has ({upstream[:19]}…); "
                 "not using it, fetching the right one")
        return STALE
    origin = unverified_source(image.id)
    why = "is not on" if upstream is None else "could not be checked against"
    if origin:
        run.warn(f"the cached {ref} came unverified from {origin} and still {why} {run.opts.hub_registry}")
    else:
        run.warn(f"the cached {ref} {why} {run.opts.hub_registry}; using it unverified")
    return False
