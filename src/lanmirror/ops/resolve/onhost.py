"""Step 5 where the daemon cannot reach this job's loopback (docker outside of docker: the job
drives the host's daemon through its socket, from its own network namespace, and may not reach the
LAN at all): the endpoint runs where the daemon is, in a short-lived helper container of
lanmirror's own image on the daemon's host network (`daemon.helper`), and reads the sources from
there. The daemon then pulls from 127.0.0.1 on its own host, as in the job's own namespace.

The helper image must be at hand without a counted Hub pull: the one `--helper-image` names, or
`lanmirror/lanmirror:<version>` on the daemon, or the same on a LAN registry the daemon reaches
(`mirror` puts it there; a LAN pull costs no Hub quota). Its version must be this job's."""

from __future__ import annotations

import dataclasses
import logging
import re

from lanmirror import __version__
from lanmirror.daemon.helper import Helper, image_version, reap
from lanmirror.errors import EngineError, LanmirrorError
from lanmirror.ops.resolve.context import Run, clock
from lanmirror.ops.resolve.model import Option
from lanmirror.ops.resolve.served import FastPull, account, manifest_deadline
from lanmirror.retry import describe
from lanmirror.serve import Source

log = logging.getLogger("lanmirror.resolve")
PATH = "endpoint-on-host"
HELPER_REPO = "lanmirror/lanmirror"


def helper_tag(version: str = __version__) -> str:
    """The image tag of a lanmirror version (a tag cannot hold the `+` of a local version)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "-", version)


def helper_image(run: Run) -> tuple[str | None, str]:
    """The helper image to run, or None and why none can be."""
    engine = run.engine
    assert engine is not None
    named = run.opts.helper_image
    local = named or f"{HELPER_REPO}:{helper_tag()}"
    candidates = [local] if named else [local, *(f"{lan}/{HELPER_REPO}:{helper_tag()}"
                                                for lan in run.opts.lan_registries if lan not in run.unreachable)]
    for ref in candidates:
        version = image_version(engine, ref)
        if version is None and ref != local:
            try:  # from a LAN registry the daemon reaches: no Hub quota
                engine.pull(ref, source=f"helper image {ref}", stall_timeout=30.0, timeout=run.within(120.0))
            except LanmirrorError as exc:
                log.info("helper image %s: %s", ref, describe(exc))
                continue
            version = image_version(engine, ref)
        if version is None:
            continue
        if version != __version__:
            return None, (f"the helper image {ref} is lanmirror {version or '(no version label)'}, this job runs "
                          f"{__version__}: give the job's own version (--helper-image / input helper-image)")
        return ref, ""
    where = local if named else f"{local} on the daemon or on the LAN registries"
    return None, (f"no helper image ({where}): mirror lanmirror's image to the LAN, or name one with "
                  "--helper-image")


def host_sources(run: Run, option: Option) -> list[Source]:
    """What the helper reads from: the chosen registry, the other LAN replicas known to hold the
    digest (whichever side found them), the Hub last when it has the same digest."""
    cand, kind, registry, digest = option
    skip = run.bad_sources | run.slow_sources | run.unreachable
    lans = [lan for lan, hits in run.lan_holders if hits.get(cand.tag) == digest and lan != registry
            and lan not in skip]
    out = [Source(kind, run.clients.registry(registry), run.repository(registry))]
    out += [Source("lan", run.clients.registry(lan), run.repository(lan)) for lan in lans]
    if kind != "hub" and run.hub_digests.get(cand.tag) == digest and run.opts.hub_registry not in skip:
        out.append(Source("hub", run.hub(), run.upstream.repository))
    return out


def spec_for(run: Run, option: Option, sources: list[Source], seconds: float) -> dict[str, object]:
    """The helper's spec: sent on its stdin, never on a command line."""
    creds = {}
    for s in sources:
        c = run.clients.credentials(s.name)
        if c is not None:
            creds[s.name] = {"username": c.username, "password": c.password}
    return {"version": __version__, "repo": run.upstream.repository, "digest": option.digest,
            "sources": [{"kind": s.kind, "registry": s.name, "repo": s.repo} for s in sources],
            "credentials": creds, "insecure": [s.name for s in sources if run.clients.insecure(s.name)],
            "seconds": seconds, "manifest_seconds": manifest_deadline(run),
            "range": dataclasses.asdict(run.opts.range_settings)}


def pull_on_host(run: Run, option: Option, floor: float, started: float) -> tuple[FastPull | None, str]:
    """The pull through a helper on the daemon's host, or (None, why not). A helper that cannot be
    had, or does not come up, leaves the pull to the daemon; a pull that fails once it is up fails
    as any pull does (the next source is tried)."""
    if run.opts.pull_via == "daemon" or run.engine is None:
        return None, "not asked for"
    engine = run.engine
    try:
        reaped = reap(engine)
    except Exception as exc:
        log.debug("could not list helpers: %s", exc)
        reaped = 0
    if reaped:
        log.info("removed %d helper container(s) left past their deadline", reaped)
    image, why = helper_image(run)
    if image is None:
        return None, why
    sources = host_sources(run, option)
    seconds = run.within(run.opts.pull_timeout) + 30.0
    spec = spec_for(run, option, sources, seconds)
    helper = Helper(engine, image, spec, seconds)
    try:
        ready = helper.start()
    except LanmirrorError as exc:
        return None, f"the helper did not come up ({describe(exc)})"
    try:
        run.record(PATH, f"127.0.0.1:{ready['port']}", f"helper {image} up in {helper.started_in:.1f}s", started,
                   option.cand.tag, path=PATH)
        threshold = run.opts.range_settings.threshold
        biggest = ready.get("biggest_layer")
        if run.opts.pull_via == "auto" and isinstance(biggest, int) and biggest <= threshold:
            return None, f"not needed: no layer over {threshold >> 20} MiB"
        ref = f"127.0.0.1:{int(ready['port'])}/{ready['prefix']}/{run.upstream.repository}@{option.digest}"
        image_local = engine.pull(ref, source=f"{option.kind} {option.registry} (ranges, on the daemon's host)",
                                  stall_timeout=run.opts.stall_timeout, timeout=run.within(run.opts.pull_timeout),
                                  on_progress=run.on_progress, min_rate=floor, rate_window=run.opts.pull_rate_window)
        done = helper.stop()
        fetched = delivered(sources, done)
        account(run, option, fetched, started, PATH)
        return FastPull(image_local, ref, fetched, int(done.get("served") or 0), PATH), ""
    except EngineError:  # a slow or failed pull (SlowPullError is one): its rows, then on up
        account(run, option, delivered(sources, helper.stop()), started, PATH)
        raise
    finally:
        helper.close()
        log.debug("helper closed after %.1fs", clock() - started)


def delivered(sources: list[Source], done: dict[str, object]) -> list[Source]:
    """The job's sources with what the helper said each delivered."""
    said = done.get("sources")
    by_name = {str(d.get("name")): d for d in said if isinstance(d, dict)} if isinstance(said, list) else {}
    for s in sources:
        d = by_name.get(s.name)
        if d is None:
            continue
        s.bytes = int(d.get("bytes") or 0)
        s.seconds = float(d.get("seconds") or 0.0)
        s.failures = int(d.get("failures") or 0)
        s.bad = bool(d.get("bad"))
    return sources
