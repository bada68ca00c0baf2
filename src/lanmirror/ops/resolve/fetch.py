"""Step 5 and 6: make the chosen image local (pull by digest, retag to the canonical name) and
report it as a `Resolution`."""

from __future__ import annotations

import logging

from lanmirror.authn import Credentials
from lanmirror.daemon import LocalImage
from lanmirror.errors import LanmirrorError
from lanmirror.name import DOCKER_HUB, Reference, nightly_date, utc_today
from lanmirror.ops.resolve.context import Run, clock
from lanmirror.ops.resolve.fastpull import pull_fast
from lanmirror.ops.resolve.model import Candidate, Option, PullStats, Resolution
from lanmirror.ops.resolve.probe import refresh_ratelimit
from lanmirror.ops.resolve.provenance import mark_unverified
from lanmirror.ops.resolve.served import FastPull
from lanmirror.retry import describe

log = logging.getLogger("lanmirror.resolve")


def report(run: Run, cand: Candidate, kind: str, registry: str, digest: str, image: str, pinned: str,
           verified: bool | None, pulled: bool) -> Resolution:
    opts = run.opts
    day = cand.date or (nightly_date(cand.tag, opts.base_tags[cand.base_index]) if opts.base_tags else None)
    today = opts.today or utc_today()
    return Resolution(
        image=image, source=kind, registry=registry, tag=cand.tag, date=day.isoformat() if day else "",
        age_days=(today - day).days if day else None, digest=digest, pinned=pinned,
        ratelimit_remaining=run.ratelimit, verified=verified, pulled=pulled, attempts=run.attempts,
        warnings=run.warnings, pull=pull_stats(run, kind, pulled),
    )


def pull_stats(run: Run, kind: str, pulled: bool) -> PullStats | None:
    """The pull that made the image local: the last pull line of the attempts table; for a cache
    hit, 0 bytes in the time the run took to accept it (the cache check and its verification)."""
    if kind == "local":
        return PullStats("local", "docker", "cache", round(clock() - run.started, 3), 0, None)
    if not pulled:
        return None
    done = [a for a in run.attempts if a.event == "pull"]
    return PullStats.of(done[-1]) if done else None


def use_local(run: Run, cand: Candidate, digest: str, verified: bool | None = None,
              degraded: bool = False) -> Resolution:
    ref = run.upstream.with_tag(cand.tag)
    pinned = f"{ref.familiar_repository}@{digest}" if digest.startswith("sha256:") else str(ref)
    result = report(run, cand, "local", "docker", digest, str(ref), pinned, verified, False)
    result.degraded = degraded
    return result


def fetch(run: Run, option: Option, verified: bool | None) -> Resolution:
    """Pull `option` by digest and tag it with the canonical name. A Hub pull is retried with the
    one policy; a stalled LAN pull is not (the caller falls back to the next source instead)."""
    cand, kind, registry, digest = option
    canonical = run.upstream.with_tag(cand.tag)
    source_ref = Reference(registry, run.repository(registry), tag=cand.tag)
    pinned = f"{source_ref.familiar_repository}@{digest}"
    if not run.opts.pull:
        name = str(canonical) if kind == "hub" else str(source_ref)
        return report(run, cand, kind, registry, digest, name, pinned, verified, False)
    engine = run.engine
    if engine is None:
        raise LanmirrorError("pulling needs the Docker daemon; pass --no-pull to only resolve")
    started = clock()
    # The LAN's login goes with its pull too (X-Registry-Auth), so the daemon needs no `docker login`.
    creds = run.clients.credentials(registry)

    # The throughput floor hands a slow LAN's pull to the next source; the Hub is the last one.
    floor = run.opts.min_pull_rate * 1e6 if kind == "lan" else 0.0

    def pull() -> LocalImage:
        return engine.pull(pinned, source=f"{kind} {registry}", stall_timeout=run.opts.stall_timeout,
                           timeout=run.within(run.opts.pull_timeout), creds=creds, on_progress=run.on_progress,
                           min_rate=floor, rate_window=run.opts.pull_rate_window)

    mirror = node_mirror(run)
    if mirror:
        return via_node_mirror(run, option, canonical, pinned, verified, mirror, started)
    try:
        fast = pull_fast(run, option, floor) if run.opts.pull_via != "daemon" else None
    except Exception as exc:  # whatever broke in the endpoint, the next step is the same
        failed = exc if isinstance(exc, LanmirrorError) else LanmirrorError(
            f"the pull through the endpoint failed ({describe(exc)})")
        if kind != "hub" or run.opts.pull_via == "ranges":
            raise failed from None  # a LAN's failed pull goes to the next source, as a direct one does
        # The Hub is the last source: its pull gets the daemon's own retried path rather than nothing.
        run.warn(f"the pull through the endpoint failed ({describe(exc)}); pulling directly from {registry}")
        fast = None
    nbytes: int | None = None
    if fast is not None:
        image, nbytes = fast.image, fast.served
        engine.tag(fast.ref, canonical.familiar_repository, cand.tag)
        rename_fast_pull(run, fast, pinned, kind, creds)
    elif kind == "hub":
        if creds is not None and not creds.identity_token:
            engine.login(creds, registry if registry != DOCKER_HUB else "https://index.docker.io/v1/")
        image = run.policy.call(pull, f"pull {pinned}")
        engine.tag(pinned, canonical.familiar_repository, cand.tag)
    else:
        image = pull()
        engine.tag(pinned, canonical.familiar_repository, cand.tag)
    if kind == "hub":
        refresh_ratelimit(run, cand.tag)
    if nbytes is None:
        nbytes = image.bytes  # the daemon pulled directly: the layer sizes its progress named
    return pulled(run, option, str(canonical), pinned, verified, image, nbytes, started,
                  where=registry, path=fast.path if fast else "daemon", result=f"pulled {cand.tag}")


def pulled(run: Run, option: Option, image_name: str, pinned: str, verified: bool | None, image: LocalImage,
           nbytes: int | None, started: float, *, where: str, path: str, result: str) -> Resolution:
    """The image is local: mark a LAN copy the Hub could not confirm, record the pull (`where` the
    bytes came from, by which `path`) and report it."""
    cand, kind, registry, digest = option
    if kind == "lan" and verified is False:
        mark_unverified(image.id, registry)
    seconds = clock() - started
    run.record(kind, where, result, started, cand.tag, path=path, nbytes=nbytes,
               mbps=round(nbytes / seconds / 1e6, 1) if nbytes and seconds > 0 else None,
               download_seconds=image.download_seconds, event="pull")
    return report(run, cand, kind, registry, digest, image_name, pinned, verified, True)


def rename_fast_pull(run: Run, fast: FastPull, pinned: str, kind: str, creds: Credentials | None) -> None:
    """Leave the image named as a direct pull leaves it, so the next run's cache check accepts it
    and scripts that look for the source's name find it, and remove the endpoint's prefixed name.
    A LAN's reference is recorded by a second pull from the LAN: every layer is present, so it costs
    one manifest request, no blob and no Hub quota. For a Hub image that second pull would be a
    counted Hub pull: the containerd store derives the Hub's RepoDigest from the canonical tag
    anyway; the classic store (which keeps only the digest references it pulled) keeps
    `127.0.0.1:PORT/<repo>@digest` instead (`record_plain_name`), which the cache check accepts too."""
    engine = run.engine
    assert engine is not None
    loopback = fast.ref
    if kind == "hub" and fast.named:
        engine.untag(loopback)
        return
    if kind == "lan":
        try:
            engine.pull(pinned, source=f"{kind} (name only)", stall_timeout=min(run.opts.stall_timeout, 30.0),
                        timeout=run.within(min(run.opts.pull_timeout, 60.0)), creds=creds)
        except LanmirrorError as exc:
            log.info("could not record %s on the image (%s); keeping the loopback name", pinned, exc)
            return
    elif engine.image_store() != "containerd":
        return
    engine.untag(loopback)


def node_mirror(run: Run) -> str:
    """The registry mirror the daemon pulls Docker Hub images through (`lanmirror serve` on the
    host), when the image is a Docker Hub image: "" otherwise, or when the daemon has none."""
    if run.upstream.registry != DOCKER_HUB or run.engine is None or run.opts.pull_via == "ranges":
        return ""
    try:
        mirrors = (run.engine.info().get("RegistryConfig") or {}).get("Mirrors") or []
    except LanmirrorError:
        return ""
    return str(mirrors[0]).rstrip("/") if mirrors else ""


def via_node_mirror(run: Run, option: Option, canonical: Reference, pinned: str, verified: bool | None,
                    mirror: str, started: float) -> Resolution:
    """The daemon has a node mirror: leave the pull to it, by the Hub name and the digest this run
    checked. The mirror reads the LAN once for the whole host (and the daemon falls back to the Hub
    by itself if the mirror fails); the job needs no endpoint and no LAN route of its own."""
    cand, digest = option.cand, option.digest
    engine = run.engine
    assert engine is not None
    by_hub_name = f"{canonical.familiar_repository}@{digest}"
    image = engine.pull(by_hub_name, source=f"node mirror {mirror}", stall_timeout=run.opts.stall_timeout,
                        timeout=run.within(run.opts.pull_timeout), on_progress=run.on_progress, counted=False)
    engine.tag(by_hub_name, canonical.familiar_repository, cand.tag)
    # The source stays what the check chose (lan, or hub when the LAN lacks the tag); the registry is
    # the mirror the bytes came through, and the path says so: the report's "via".
    return pulled(run, option, str(canonical), pinned, verified, image, image.bytes or 0, started,
                  where=mirror.split("://", 1)[-1], path="node-mirror",
                  result=f"pulled {cand.tag} (the daemon, through its node mirror {mirror})")
