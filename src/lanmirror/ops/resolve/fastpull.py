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
import time
from dataclasses import dataclass, field
from functools import partial

import requests

from lanmirror.errors import LanmirrorError, SlowPullError
from lanmirror.ops.resolve.context import Run, clock
from lanmirror.ops.resolve.model import Option
from lanmirror.ops.resolve.onhost import pull_on_host
from lanmirror.ops.resolve.served import FastPull, account, manifest_deadline
from lanmirror.ops.resolve.slownote import slow_now
from lanmirror.remote.manifest import Manifest
from lanmirror.retry import describe, run_bounded
from lanmirror.serve import BlobSources, Endpoint, Source
from lanmirror.serve.feed import load_manifest
from lanmirror.serve.image import ServedImage

log = logging.getLogger("lanmirror.resolve")

class EndpointUnreachable(LanmirrorError):
    """The daemon could not reach the loopback endpoint."""


def chosen_source(run: Run, option: Option) -> Source:
    return Source(option.kind, run.clients.registry(option.registry), run.repository(option.registry))


def sources_for(run: Run, option: Option, first: Source) -> list[Source]:
    """The chosen registry (`first`), then every other LAN replica that holds the same digest, then
    the Hub when its digest is the same one (for a Hub option, the Hub alone unless replicas hold it)."""
    cand, kind, registry, digest = option
    out = [first]
    if registry in run.bad_sources:
        out[0].bad = True  # it served wrong bytes earlier in this run: the others go first, it never
    known = {lan for lan, hits in run.lan_holders if hits.get(cand.tag) == digest} - {registry}
    asked = {lan for lan, _ in run.lan_holders} | {registry}
    # A replica noted slow on this runner lately is left out: it would only hold ranges back.
    # Nor one that this process cannot reach: not probed again, and no range would get through.
    skip = run.bad_sources | run.slow_sources | slow_now() | run.unreachable | run.daemon_only
    for lan in [r for r in run.opts.lan_registries if (r in known or r not in asked) and r not in skip]:
        out.append(Source("lan", run.clients.registry(lan), run.repository(lan)))
    if len(out) > 1:
        out = out[:1] + holders(run, out[1:], digest, known)
    if kind != "hub" and run.hub_digests.get(cand.tag) == digest:
        out.append(Source("hub", run.hub(), run.upstream.repository))
    return out


def holders(run: Run, replicas: list[Source], digest: str, known: set[str]) -> list[Source]:
    """The replicas that hold `digest`: those whose probe said so, and those not probed yet that
    answer one HEAD by digest within the probe timeout (all at once: a dead one costs that bound)."""
    unknown = [s for s in replicas if s.name not in known]
    t = run.opts.probe_timeout
    results = run_bounded([partial(s.registry.head_manifest, s.repo, digest, retry=False, timeout=(t, t))
                           for s in unknown], t)
    have = {s.name for s, (done, value) in zip(unknown, results, strict=True)
            if done and not isinstance(value, BaseException) and value is not None and value.digest == digest}
    return [s for s in replicas if s.name in known or s.name in have]


def pull_through_endpoint(run: Run, option: Option, sources: list[Source], *, floor: float,
                          top: Manifest | None = None) -> FastPull:
    """Pull `option` through a loopback endpoint fed from `sources` (`top`: its manifest, when
    already fetched). Raises EndpointUnreachable (nothing fetched yet) when the daemon cannot reach
    it; any other error is the pull's own."""
    _, kind, registry, digest = option
    engine = run.engine
    assert engine is not None
    bound = manifest_deadline(run)
    image = ServedImage(lambda d: load_manifest(sources, d, bound))
    feed = BlobSources(sources, run.policy, run.opts.range_settings)
    with Endpoint(run.upstream.repository, image, feed) as endpoint:
        probe = run.clients.engine(max(run.opts.probe_timeout, 5.0))
        assert probe is not None
        try:
            probe.inspect_distribution(f"{endpoint.name}@{image.probe.digest}")
        except LanmirrorError as exc:
            raise EndpointUnreachable(f"the Docker daemon cannot reach lanmirror's endpoint on {endpoint.registry} "
                                      f"({describe(exc)})") from None
        image.add_top(top or load_manifest(sources, digest, bound))
        ref = f"{endpoint.name}@{digest}"
        local = engine.pull(ref, source=f"{kind} {registry} (ranges)", stall_timeout=run.opts.stall_timeout,
                            timeout=run.within(run.opts.pull_timeout), on_progress=run.on_progress, min_rate=floor,
                            rate_window=run.opts.pull_rate_window)
        fast = FastPull(local, ref, sources, endpoint.served)
        if kind == "hub" and engine.image_store() != "containerd":
            fast.named = record_plain_name(run, endpoint, digest)
        return fast


def record_plain_name(run: Run, endpoint: Endpoint, digest: str) -> str:
    """The classic store keeps only the digest references it pulled, and the next run's cache check
    needs one. For a LAN image the LAN's own name is recorded (`rename_fast_pull`); for a Hub image
    that would cost a counted Hub pull, so the daemon records `127.0.0.1:PORT/<repo>@digest` from
    the endpoint instead: one manifest request, every layer already present. The prefixed name,
    which nobody could read, is removed afterwards. "" when the daemon did not take it."""
    engine = run.engine
    assert engine is not None
    endpoint.plain_manifests = True
    plain = f"{endpoint.plain_name}@{digest}"
    try:
        engine.pull(plain, source="hub (name only)", stall_timeout=min(run.opts.stall_timeout, 30.0),
                    timeout=run.within(min(run.opts.pull_timeout, 60.0)))
    except LanmirrorError as exc:
        log.info("could not record %s on the image (%s); keeping the endpoint's name", plain, exc)
        return ""
    return plain


@dataclass
class StreamCheck:
    """What `one_stream_is_enough` found: why the daemon's own pull is enough ("" when it is not
    known to be), the manifest read on the way, and the one stream's measured rate (bytes/s; None
    when it was not measured)."""

    why: str = ""
    top: Manifest | None = None
    rate: float | None = None
    # Set when the caller stopped waiting: the measuring thread stops at its next chunk. (Closing the
    # response from the caller would wait for the lock the blocked read holds.)
    abandoned: bool = field(default=False, repr=False)


def one_stream_is_enough(run: Run, source: Source, digest: str) -> StreamCheck:
    """For `auto` from a LAN: why the daemon's own pull (one stream per layer) is as fast as the
    endpoint would be, and the manifest read on the way (the endpoint serves it, rather than
    reading it again). It is when the image has no layer big enough for ranges, or when one stream
    from this LAN already runs at the rate where the reader itself would not switch to ranges
    (measured over the reader's own probe length). Relaying a fast stream through this process only
    adds a copy; a slow one is what ranges beat. The manifest GET is free on a LAN; a failure here
    leaves the choice to the endpoint, which handles it.

    The whole check is bounded by the probe timeout, however slowly the LAN answers: a LAN that
    drips its probe range is measured at what arrived by then."""
    check = StreamCheck()
    progress = [0, 0.0]  # bytes after the first chunk, and when the first chunk came
    deadline = run.within(run.opts.probe_timeout)
    [(done, value)] = run_bounded([partial(_measure, run, source, digest, check, progress)], deadline)
    if done and isinstance(value, BaseException):
        log.info("could not measure one stream from %s (%s); using the endpoint", source.name, describe(value))
        return StreamCheck(top=check.top)
    if not done:
        check.abandoned = True
        if check.top is None:
            log.info("%s gave no manifest within %gs; using the endpoint", source.name, deadline)
            return StreamCheck()
        got, first = progress
        rate = got / max(time.monotonic() - first, 1e-6) if first else 0.0
        log.info("one stream from %s delivered %d bytes in %.1fs", source.name, got, deadline)
        return StreamCheck(top=check.top, rate=rate)
    return check


def _measure(run: Run, source: Source, digest: str, check: StreamCheck, progress: list[float]) -> None:
    """The body of `one_stream_is_enough`, run on a thread it may give up on."""
    s = run.opts.range_settings
    manifest = check.top = source.registry.get_manifest(source.repo, digest)
    if manifest.is_index:
        children = manifest.children()
        if not children:
            return
        manifest = source.registry.get_manifest(source.repo, children[0].digest)
    layers = [b for b in manifest.blobs()[1:] if b.distributable]
    if not layers:
        return
    big = max(layers, key=lambda b: b.size)
    if big.size <= s.threshold:
        check.why = f"no layer over {s.threshold >> 20} MiB"
        return
    if s.switch_below is None:
        return
    n = min(big.size, s.probe)
    resp = source.registry.open_blob(source.repo, big.digest, start=0, end=n - 1)
    try:
        for chunk in resp.iter_content(64 << 10):
            if check.abandoned:
                return
            if not progress[1]:
                progress[1] = time.monotonic()  # time to first byte is latency, not bandwidth
            else:
                progress[0] += len(chunk)
        rate = progress[0] / max(time.monotonic() - progress[1], 1e-6) if progress[1] else 0.0
    except (requests.RequestException, OSError) as exc:
        raise LanmirrorError(f"the probe range broke ({describe(exc)})") from None
    finally:
        resp.close()
    check.rate = rate
    if rate >= s.switch_below:
        check.why = f"one stream from it runs at {rate / 1e6:.0f} MB/s"


def too_slow_for_ranges(run: Run, option: Option, rate: float, floor: float) -> SlowPullError | None:
    """A LAN whose one stream is so slow that even every parallel range together stays under the
    throughput floor is left at once, as the floor would leave it after a whole window."""
    flows = run.opts.range_settings.window
    if not floor or rate * flows >= floor:
        return None
    return SlowPullError(f"one stream from {option.registry} ran at {rate / 1e3:.1f} kB/s over the probe: even "
                         f"{flows} parallel ranges stay below the floor of {floor / 1e6:g} MB/s",
                         rate=rate * flows, floor=floor, completed=0, kept=None)


def on_host(run: Run, option: Option, floor: float, started: float, why: str) -> FastPull | None:
    """The daemon cannot pull from an endpoint here (`why`): serve it where the daemon is, or say in
    one line why the daemon pulls directly (an error with --pull-via ranges)."""
    fast, not_used = pull_on_host(run, option, floor, started)
    if fast is not None:
        return fast
    if run.opts.pull_via == "ranges":
        raise LanmirrorError(f"{why}; and the endpoint on the daemon's host is not available ({not_used}); "
                             "--pull-via ranges needs one of them (auto lets the daemon pull directly)")
    run.record("endpoint", "127.0.0.1", f"not used ({why}; on the daemon's host: {not_used}): the daemon pulls "
               "directly", started, option.cand.tag, path="daemon")
    return None


def pull_fast(run: Run, option: Option, floor: float) -> FastPull | None:
    """The pull through the endpoint, or None when `auto` must leave it to the daemon (said in one
    line). Each source that delivered bytes, failed or served wrong bytes gets a row in the attempts
    table, whether the pull succeeded or not, and a source that served wrong bytes is not asked
    again for the rest of the run."""
    started = clock()
    first = chosen_source(run, option)
    top: Manifest | None = None
    if option.registry in run.daemon_only:
        why = (f"the Docker daemon reaches {option.registry}, this job does not (docker outside of docker): the "
               "endpoint here could not read it")
        return on_host(run, option, floor, started, why)
    if run.opts.pull_via == "auto" and option.kind == "lan":
        check = one_stream_is_enough(run, first, option.digest)
        top = check.top
        if check.why:
            run.record("endpoint", "127.0.0.1", f"not needed ({check.why}): the daemon pulls directly", started,
                       option.cand.tag, path="daemon")
            return None
        slow = too_slow_for_ranges(run, option, check.rate, floor) if check.rate is not None else None
        if slow is not None:
            raise slow
    sources = sources_for(run, option, first)
    try:
        return pull_through_endpoint(run, option, sources, floor=floor, top=top)
    except EndpointUnreachable as exc:
        return on_host(run, option, floor, started, str(exc))
    finally:
        account(run, option, sources, started, "ranges")
