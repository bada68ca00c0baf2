"""Step 4: a LAN or cached copy is trusted only if its digest equals the Hub's (one free HEAD).

A Hub that cannot be reached (the network failed) leaves the copy usable, marked unverified, as
before. A Hub that *answers* and refuses (401/403, or any other error that is not a network
failure) has failed the check: on a shared runner a refusal is exactly what another job can
arrange from disk (bogus credentials in a docker config, a planted ~/.netrc), so the copy is not
used unless --allow-unverified says so.

A tag the Hub answers 404 for is not verified either: anyone on the LAN may push, so a LAN-only
"newer" tag (or a local image under a name the Hub never published) would otherwise beat the Hub's
verified nightly. Such a copy is skipped, and the Hub's newest verified tag wins; only
--allow-unverified takes it, marked UNVERIFIED."""

from __future__ import annotations

from lanmirror.ops.resolve.context import Run, clock
from lanmirror.ops.resolve.model import Candidate, NothingFound, Option
from lanmirror.ops.resolve.probe import hub_digest
from lanmirror.ops.resolve.provenance import clear, unverified_source
from lanmirror.ops.resolve.referrers import lacking
from lanmirror.retry import describe, is_transient

STALE = "stale"
UNPUBLISHED = "unpublished"  # the Hub answered that the tag is not there: nothing vouches for the copy


def upstream_digest(run: Run, tag: str, hub_hits: dict[str, str] | None = None) -> str | BaseException | None:
    """The Hub's digest for `tag`: from the probe already made where it answered for that tag, else
    one more free HEAD. None: the Hub says the tag is not there."""
    if hub_hits is not None and (tag in hub_hits or tag in run.hub_absent):
        return hub_hits.get(tag)
    return hub_digest(run, tag)


def unverifiable(run: Run, what: str, error: BaseException) -> bool:
    """The Hub gave no answer for `what`. False (use it, unverified) when the network failed; a
    refusal raises, unless --allow-unverified."""
    hub = run.opts.hub_registry
    if is_transient(error):
        run.warn(f"{what} is unverified: {hub} is unavailable ({describe(error)}); using it unverified")
        return False
    if not run.opts.allow_unverified:
        raise NothingFound(
            f"{hub} refused the check of {what} ({describe(error)}), so that copy cannot be verified and is "
            "not used. A refusal is not an outage: fix the Hub login (DOCKERHUB_USERNAME/DOCKERHUB_TOKEN, the "
            "dockerhub-username/dockerhub-token inputs, or `docker login` in this job's DOCKER_CONFIG), or pass "
            "--allow-unverified (input allow-unverified) to use it anyway", run.attempts)
    run.warn(f"UNVERIFIED: {what} is used although {hub} refused to confirm it ({describe(error)}), "
             "because of --allow-unverified; it may be any image another job put there")
    return False


def unpublished(run: Run, what: str) -> bool | str:
    """The Hub answered that the tag of `what` does not exist: UNPUBLISHED (skip it), or False (use
    it, unverified) with --allow-unverified."""
    hub = run.opts.hub_registry
    if not run.opts.allow_unverified:
        run.warn(f"{what} is not on {hub}, so nothing can verify it; not using it (a tag only the LAN or this "
                 "runner has may be anyone's push; --allow-unverified takes it anyway)")
        return UNPUBLISHED
    run.warn(f"UNVERIFIED: {what} is not on {hub}; using it because of --allow-unverified")
    return False


def verify_lan(run: Run, option: Option, hub_hits: dict[str, str] | None) -> bool | str:
    """True when the Hub has the same digest; False when the Hub could not be reached (the copy is
    used, marked unverified); STALE when the Hub has another; UNPUBLISHED when the Hub has no such
    tag (see `unpublished`)."""
    cand, _, registry, digest = option
    upstream = upstream_digest(run, cand.tag, hub_hits)
    hub, repo = run.opts.hub_registry, run.opts.repo
    if isinstance(upstream, BaseException):
        return unverifiable(run, f"the LAN copy {registry}/{repo}:{cand.tag}", upstream)
    if upstream is None:
        return unpublished(run, f"the LAN copy {registry}/{repo}:{cand.tag}")
    if upstream != digest:
        run.warn(f"stale mirror: {registry}/{repo}:{cand.tag} is {digest[:19]}… but {hub} has {upstream[:19]}…; "
                 "not using the LAN copy")
        return STALE
    started = clock()
    missing = lacking(run, option) if run.opts.require_referrers else None
    if missing:
        run.record("lan", registry, f"lacks the {missing} the Hub's copy has: not used", started, cand.tag)
        run.warn(f"stale mirror: {registry}/{repo}:{cand.tag} lacks the {missing} that {hub} has (mirror it again: "
                 "mirror copies signatures and referrers); not using the LAN copy")
        return STALE
    return True


def verify_local(run: Run, cand: Candidate) -> bool | str | None:
    """A cached image under the canonical name is whatever the last job tagged there: trust it only
    if one of its RepoDigests is the Hub's digest (one free HEAD). STALE when the Hub has another
    digest; False when the Hub could not be reached; UNPUBLISHED when the Hub has no such tag (see
    `unpublished`); None without --verify. A Hub that refused raises (see `unverifiable`)."""
    if not run.opts.verify:
        return None
    image = run.local_images[cand.tag]
    upstream = upstream_digest(run, cand.tag)
    ref = f"{run.upstream.with_tag(cand.tag)}"
    if isinstance(upstream, str):
        if any(d.endswith("@" + upstream) for d in image.repo_digests):
            clear(image.id)
            return True
        run.warn(f"the cached {ref} is not the image {run.opts.hub_registry} has ({upstream[:19]}…); "
                 "not using it, fetching the right one")
        return STALE
    origin = unverified_source(image.id)
    if isinstance(upstream, BaseException):
        return unverifiable(run, f"the cached {ref}" + (f" (pulled unverified from {origin})" if origin else ""),
                            upstream)
    return unpublished(run, f"the cached {ref}" + (f" (pulled unverified from {origin})" if origin else ""))
