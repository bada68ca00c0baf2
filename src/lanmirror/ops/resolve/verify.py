"""Step 4: a LAN copy is trusted only if its digest equals the Hub's (one free HEAD)."""

from __future__ import annotations

from lanmirror.ops.resolve.context import Run
from lanmirror.ops.resolve.model import Option
from lanmirror.ops.resolve.probe import hub_digest

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
