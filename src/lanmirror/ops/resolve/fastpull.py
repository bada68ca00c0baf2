"""Step 5, the fast path: the daemon pulls the chosen digest from lanmirror's loopback endpoint,
which reads each blob with the parallel-range reader from every source that holds it (the chosen
registry, the other LAN replicas that answered with the same digest, the Hub last when it has that
digest too).

`auto` falls back to today's direct daemon pull, with one line saying why, when the daemon cannot
reach the endpoint (it runs on another host or network namespace, rootless with host loopback off,
or behind a socket mounted from elsewhere): a tiny image of the endpoint's own is inspected through
the daemon first, so that check costs no source anything."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from lanmirror.daemon import LocalImage
from lanmirror.errors import LanmirrorError
from lanmirror.ops.resolve.context import Run, clock
from lanmirror.ops.resolve.model import Option
from lanmirror.remote.registry import Manifest
from lanmirror.retry import describe
from lanmirror.serve import BlobSources, Endpoint, Source
from lanmirror.serve.image import ServedImage

log = logging.getLogger("lanmirror.resolve")

class EndpointUnreachable(LanmirrorError):
    """The daemon could not reach the loopback endpoint."""


@dataclass
class FastPull:
    """What a pull through the endpoint did: the image, the loopback reference the daemon pulled
    (to be renamed), and per source what it delivered."""

    image: LocalImage
    ref: str
    sources: list[Source] = field(default_factory=list)
    served: int = 0


def sources_for(run: Run, option: Option) -> list[Source]:
    """The chosen registry first, then every other LAN replica that holds the same digest, then
    the Hub when its digest is the same one (for a Hub option, the Hub alone unless replicas hold it)."""
    cand, kind, registry, digest = option
    out = [Source(kind, run.clients.registry(registry), run.repository(registry))]
    for lan, hits in run.lan_holders:
        if lan != registry and hits.get(cand.tag) == digest:
            out.append(Source("lan", run.clients.registry(lan), run.repository(lan)))
    if kind != "hub" and run.hub_digests.get(cand.tag) == digest:
        out.append(Source("hub", run.hub(), run.upstream.repository))
    return out


def load_manifest(sources: list[Source], digest: str) -> Manifest:
    """A manifest by digest from the first source that gives it (get_manifest checks the digest)."""
    last: LanmirrorError | None = None
    for source in sources:
        if source.bad:
            continue
        try:
            return source.registry.get_manifest(source.repo, digest)
        except LanmirrorError as exc:
            last = exc
            log.info("%s %s: manifest %s failed (%s)", source.kind, source.name, digest[:19], describe(exc))
    raise last or LanmirrorError(f"no source left for manifest {digest[:19]}")


def pull_through_endpoint(run: Run, option: Option, *, floor: float) -> FastPull:
    """Pull `option` through a loopback endpoint. Raises EndpointUnreachable (nothing fetched yet)
    when the daemon cannot reach it; any other error is the pull's own."""
    _, kind, registry, digest = option
    engine = run.engine
    assert engine is not None
    sources = sources_for(run, option)
    image = ServedImage(lambda d: load_manifest(sources, d))
    feed = BlobSources(sources, run.policy, run.opts.range_settings)
    with Endpoint(run.upstream.repository, image, feed) as endpoint:
        probe = run.clients.engine(max(run.opts.probe_timeout, 5.0))
        assert probe is not None
        try:
            probe.inspect_distribution(f"{endpoint.name}@{image.probe.digest}")
        except LanmirrorError as exc:
            raise EndpointUnreachable(f"the Docker daemon cannot reach lanmirror's endpoint on {endpoint.registry} "
                                      f"({describe(exc)})") from None
        image.add_top(load_manifest(sources, digest))
        ref = f"{endpoint.name}@{digest}"
        local = engine.pull(ref, source=f"{kind} {registry} (ranges)", stall_timeout=run.opts.stall_timeout,
                            timeout=run.opts.pull_timeout, on_progress=run.on_progress, min_rate=floor,
                            rate_window=run.opts.pull_rate_window)
        return FastPull(local, ref, sources, endpoint.served)


def pull_fast(run: Run, option: Option, floor: float) -> FastPull | None:
    """The pull through the endpoint, or None when `auto` must leave it to the daemon (said in one
    line). Each source that delivered bytes gets a row in the attempts table."""
    started = clock()
    try:
        fast = pull_through_endpoint(run, option, floor=floor)
    except EndpointUnreachable as exc:
        if run.opts.pull_via == "ranges":
            raise LanmirrorError(f"{exc}; --pull-via ranges needs it (use auto to fall back to the daemon's "
                                 "own pull)") from None
        run.record("endpoint", "127.0.0.1", "unreachable from the daemon: pulling directly", started,
                   option.cand.tag, path="daemon")
        return None
    for source in fast.sources:
        if source.bytes or source.failures or source.bad:
            state = "served wrong bytes; not used again" if source.bad else (
                f"{source.failures} failure(s), handed on" if source.failures else "delivered")
            run.record(source.kind, source.name, f"{state}: {source.bytes / 1e6:.1f} MB", started, option.cand.tag,
                       path="ranges", nbytes=source.bytes, mbps=round(source.rate() / 1e6, 1))
    return fast
