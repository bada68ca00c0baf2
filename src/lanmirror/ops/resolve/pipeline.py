"""The resolve-image use case as a pipeline: candidates → probe sources → choose → verify →
fetch → report. Each step is a function of its own module; this one only strings them together
and decides what happens when a step fails (fall through to the next source)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from lanmirror.daemon import ProgressFn
from lanmirror.errors import LanmirrorError, PullLimitExceeded, SlowPullError
from lanmirror.name import Reference, nightly_date, parse, utc_today
from lanmirror.ops.clients import Clients
from lanmirror.ops.resolve.candidates import candidates
from lanmirror.ops.resolve.choose import better_unknowns, hub_options, rank
from lanmirror.ops.resolve.context import Run, clock
from lanmirror.ops.resolve.fallback import last_resort
from lanmirror.ops.resolve.fetch import fetch as fetch_option
from lanmirror.ops.resolve.fetch import report, use_local
from lanmirror.ops.resolve.model import Candidate, NothingFound, Option, Resolution, ResolveOptions
from lanmirror.ops.resolve.probe import local_digest, probe_hub, probe_lan, probe_local
from lanmirror.ops.resolve.slownote import handed_off, reorder
from lanmirror.ops.resolve.spread import rendezvous, runner_identity
from lanmirror.ops.resolve.verify import STALE, UNPUBLISHED, verify_lan, verify_local
from lanmirror.retry import describe, run_bounded
from lanmirror.transport import Timeouts


def resolve(opts: ResolveOptions, clients: Clients, *, on_progress: ProgressFn | None = None,
            on_event: Callable[[str], None] | None = None) -> Resolution:
    """Resolve (and by default pull) the newest nightly per `opts`. Raises BadInput, NothingFound.
    When nothing is in the window, the last resorts `opts.fallback` names are tried (fallback.py)."""
    def search(o: ResolveOptions) -> Resolution:
        return search_window(o, clients, on_progress=on_progress, on_event=on_event)

    try:
        return search(opts)
    except NothingFound as missed:
        if not opts.fallback or opts.image:
            raise
        if on_event is not None:
            on_event(f"nothing in the window; trying the fallback: {', '.join(opts.fallback)}")
        return last_resort(opts, clients, missed, search)


def search_window(opts: ResolveOptions, clients: Clients, *, on_progress: ProgressFn | None = None,
                  on_event: Callable[[str], None] | None = None) -> Resolution:
    """The search itself: the window's candidates (or the named image) from cache, LAN and Hub."""
    opts.validate()
    run = Run(opts, clients, on_progress=on_progress)
    if on_event is not None:
        run.on_event = on_event
    order = reorder(opts.lan_registries)
    if order != opts.lan_registries:
        run.on_event(f"LAN registries abandoned for slowness on this runner lately go last: {', '.join(order)}")
        opts.lan_registries = order
    if opts.image:
        ref = parse(opts.image, default_registry=opts.hub_registry)
        if ref.registry != opts.hub_registry or not ref.tag:
            return resolve_override(run, ref)  # a LAN or other registry's image, or a digest: as named
        # A Hub image: one candidate, through the same sources as a searched tag (cache, LAN, Hub).
        opts.repo = ref.repository
        cands = [named_candidate(opts, ref.tag)]
    else:
        cands = candidates(opts)
    local = probe_local(run, cands)
    for cand in [c for c in cands if c.tag in local]:
        verdict = verify_local(run, cand)
        if verdict in (STALE, UNPUBLISHED):
            del local[cand.tag]  # someone else's image under the canonical name: fetch the real one
        elif opts.policy == "cache-first":
            return use_local(run, cand, local[cand.tag], verdict if verdict is None else bool(verdict))
        else:
            run.local_verdicts[cand.tag] = verdict if verdict is None else bool(verdict)
            break
    lan_hits: list[tuple[str, dict[str, str]]] = []
    if opts.lan_select == "spread" and len(opts.lan_registries) > 1:
        lan_hits = probe_replicas(run, cands)
    else:
        for lan in opts.lan_registries:
            hits = probe_lan(run, lan, cands)
            if hits:
                lan_hits.append((lan, hits))
                if opts.policy == "cache-first":
                    break
    hub_hits: dict[str, str] | None = None
    if opts.policy == "newest" or not lan_hits:
        hub_hits = probe_hub(run, cands)
    elif run.unknown:
        # A LAN could not say whether it holds a newer tag: a free HEAD tells whether that tag
        # exists at all. If the Hub has none of them, the older LAN copy is simply the newest.
        asked = [c for c in cands if any(u.cand.tag == c.tag for u in run.unknown)]
        probe_hub(run, asked)
    options = rank(opts.policy, cands, local, lan_hits, opts.hub_registry, hub_hits)
    if not options:
        if opts.image:
            raise NothingFound(f"the image {opts.image} was found nowhere: "
                               + "; ".join(f"{a.source} {a.registry}: {a.result}" for a in run.attempts), run.attempts)
        raise NothingFound(nothing_message(run), run.attempts)
    return take_first(run, options, cands, hub_hits)


def probe_replicas(run: Run, cands: list[Candidate]) -> list[tuple[str, dict[str, str]]]:
    """spread: every replica at once (a dead one costs the probe bound, not one bound each), then
    the ones that answered in this runner's rendezvous order."""
    runner = runner_identity(run.opts.runner_id or None)
    order = reorder(rendezvous(runner, run.opts.lan_registries))  # a replica just found slow goes last
    results = run_bounded([partial(probe_lan, run, lan, cands) for lan in order],
                          run.opts.probe_timeout * 2 + 1)
    answered = [(lan, value) for lan, (done, value) in zip(order, results, strict=True)
                if done and isinstance(value, dict) and value]
    run.on_event(f"spread: runner {runner!r} prefers {', '.join(order)}")
    run.opts.lan_registries = order  # the rank of a site is its place in this runner's order
    return answered


def nothing_message(run: Run) -> str:
    tried = "; ".join(f"{a.source} {a.registry}: {a.result}" for a in run.attempts)
    tags = ", ".join(f"{b}-<YYYYMMDD>" for b in run.opts.base_tags)
    return f"no nightly of {run.opts.repo} ({tags}) in the last {run.opts.days} day(s) was found. Tried: {tried}"


def take_first(run: Run, options: list[Option], cands: list[Candidate], hub_hits: dict[str, str] | None) -> Resolution:
    """Try the options in order; a stale, stalled or failing source falls through to the next.
    When every LAN option failed and the Hub was not asked yet, ask it now."""
    failures: list[str] = []
    hub_blocked = False
    fallback: dict[str, str] | None = None
    queue = list(options)

    def with_lan_fallback(cand: Candidate, failed: str) -> None:
        """Another LAN replica that was not asked yet may hold the same tag: it goes before the Hub."""
        if any(o.kind == "lan" and o.cand.tag == cand.tag and o.registry != failed for o in queue):
            return
        for lan in run.opts.lan_registries:
            if lan not in run.probed_lans:
                hits = probe_lan(run, lan, [cand])
                if hits and cand.tag in hits:
                    queue.insert(0, Option(cand, "lan", lan, hits[cand.tag]))
                    return

    def with_hub_fallback() -> None:
        nonlocal fallback
        if any(o.kind == "hub" for o in queue):
            return
        if hub_hits is not None:
            hits: dict[str, str] | None = hub_hits
        else:
            if fallback is None:
                fallback = probe_hub(run, cands) or {}
            hits = fallback
        queue.extend(hub_options(cands, run.opts.hub_registry, hits))

    while queue:
        option = queue.pop(0)
        cand, kind, registry, _ = option
        if run.remaining() <= 0:
            failures.append(f"the budget of {run.opts.budget:g}s (--budget) ran out before {kind} {registry} "
                            f"could be tried")
            break
        unknown = [u for u in run.unknown if u.cand.tag not in run.hub_absent]
        degraded = better_unknowns(run.opts.policy, cands, run.opts.lan_registries, option, unknown)
        if degraded:
            settle(run, option, degraded)
        if kind == "local":
            return use_local(run, cand, option.digest, run.local_verdicts.get(cand.tag), bool(degraded))
        if kind == "hub" and hub_blocked:
            continue
        verified: bool | None = None
        if kind == "lan" and run.opts.verify:
            verdict = verify_lan(run, option, hub_hits)
            if verdict in (STALE, UNPUBLISHED):
                failures.append(f"lan {registry}: {'stale digest' if verdict == STALE else 'not on the Hub'} "
                                f"for {cand.tag}")
                with_hub_fallback()
                continue
            verified = bool(verdict)
        tried = clock()
        try:
            result = fetch_option(run, option, verified)
            result.degraded = bool(degraded)
            return result
        except LanmirrorError as exc:
            failures.append(f"{kind} {registry}: {exc}")
            if isinstance(exc, SlowPullError):
                handed_off(run, option, exc, tried)
            else:
                run.record(kind, registry, f"pull failed ({describe(exc)})", tried, cand.tag, event="pull-failed")
            if isinstance(exc, PullLimitExceeded) and kind == "hub":
                hub_blocked = True  # every other Hub pull would hit the same limit
            if kind == "lan":
                with_lan_fallback(cand, registry)
                with_hub_fallback()
    raise NothingFound("found candidates but could not fetch any: " + "; ".join(failures), run.attempts)


def settle(run: Run, chosen: Option, unknown: list[Option]) -> None:
    """A failed probe is not an absent tag: settling for `chosen` while a preferred candidate may
    exist is refused, unless --allow-degraded says an older image beats no image."""
    first = unknown[0]
    what = (f"could not tell whether {first.cand.tag} is on {first.kind} {first.registry} ({first.digest}), "
            f"which the policy prefers to {chosen.cand.tag} from {chosen.kind} {chosen.registry}")
    if not run.opts.allow_degraded:
        raise NothingFound(f"{what}; refusing to settle for an older image. Rerun when the source answers, "
                           "or pass --allow-degraded to use it anyway", run.attempts)
    run.warn(f"degraded: {what}; using it because of --allow-degraded")


def named_candidate(opts: ResolveOptions, tag: str) -> Candidate:
    """An explicitly named tag, dated when it matches a base tag's nightly pattern."""
    for index, base in enumerate(opts.base_tags):
        day = nightly_date(tag, base)
        if day:
            return Candidate(tag, day, index, ((opts.today or utc_today()) - day).days)
    return Candidate(tag, None, 0, 0)


def resolve_override(run: Run, ref: Reference) -> Resolution:
    """An explicit image of another registry than the Hub (or by digest): no search, but still the
    local cache first, then pull and report."""
    opts = run.opts
    cand = named_candidate(opts, ref.tag or ref.identifier)
    started = clock()
    engine = run.engine
    if engine is not None:
        try:
            img = engine.local_image(str(ref))
        except LanmirrorError:
            img = None
        if img is not None:
            run.record("local", "docker", "override cached", started, cand.tag)
            digest = local_digest(img.repo_digests, img.id)
            pinned = f"{ref.familiar_repository}@{digest}" if any("@" in d for d in img.repo_digests) else str(ref)
            return report(run, cand, "local", "docker", digest, str(ref), pinned, None, False)
    kind = "lan" if ref.registry in opts.lan_registries else "hub"
    reg = run.hub() if kind == "hub" and ref.registry == opts.hub_registry else run.clients.registry(
        ref.registry, timeouts=Timeouts(opts.probe_timeout, max(opts.probe_timeout, 10.0)))
    head = reg.head_manifest(ref.repository, ref.identifier, deadline=run.within(opts.hub_timeout))
    if head is None:
        run.record(kind, ref.registry, f"override {ref} not found", started, cand.tag)
        raise NothingFound(f"the image {ref} does not exist on {ref.registry}", run.attempts)
    if head.ratelimit and head.ratelimit.remaining is not None:
        run.ratelimit = head.ratelimit.remaining
    run.record(kind, ref.registry, "override present", started, cand.tag)
    pinned = f"{ref.familiar_repository}@{head.digest}"
    if not opts.pull:
        return report(run, cand, kind, ref.registry, head.digest, str(ref), pinned, None, False)
    if engine is None:
        raise LanmirrorError("pulling needs the Docker daemon; pass --no-pull to only resolve")
    pulling = clock()
    image = run.policy.call(lambda: engine.pull(pinned, source=f"{kind} {ref.registry}",
                                                stall_timeout=opts.stall_timeout, timeout=run.within(opts.pull_timeout),
                                                on_progress=run.on_progress), f"pull {pinned}")
    run.record(kind, ref.registry, f"pulled {ref}", pulling, cand.tag, path="daemon", nbytes=image.bytes,
               download_seconds=image.download_seconds, event="pull")
    if ref.tag:
        engine.tag(pinned, ref.familiar_repository, ref.tag)
    return report(run, cand, kind, ref.registry, head.digest, str(ref), pinned, None, True)
