"""Step 2: ask each source which candidates it holds. The local cache through the engine; LAN
registries with parallel HEADs inside a bounded time (through the daemon when this process cannot
reach them); the Hub with HEADs only, which do not count against its pull limit."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import requests

from lanmirror.errors import LanmirrorError
from lanmirror.name import DIGEST_RE
from lanmirror.ops.resolve.context import Run, clock
from lanmirror.ops.resolve.model import Candidate, Option
from lanmirror.remote.registry import Registry
from lanmirror.retry import describe, is_transient
from lanmirror.transport import Timeouts

log = logging.getLogger("lanmirror.resolve")


def run_bounded(tasks: list[Callable[[], Any]], deadline: float) -> list[tuple[bool, Any]]:
    """Run every task at once on daemon threads; return (finished, result-or-exception) per task
    after at most `deadline` seconds. Daemon threads, because a probe stuck on a dead registry
    must not hold the process open after the answer is known (a ThreadPoolExecutor joins its
    threads at exit)."""
    results: list[tuple[bool, Any]] = [(False, None)] * len(tasks)
    done = threading.Semaphore(0)

    def work(i: int, task: Callable[[], Any]) -> None:
        try:
            results[i] = (True, task())
        except BaseException as exc:
            results[i] = (True, exc)
        finally:
            done.release()

    for i, task in enumerate(tasks):
        threading.Thread(target=work, args=(i, task), name="probe", daemon=True).start()
    end = time.monotonic() + deadline
    for _ in tasks:
        if not done.acquire(timeout=max(0.0, end - time.monotonic())):
            break
    return list(results)


def local_digest(repo_digests: tuple[str, ...], image_id: str) -> str:
    tails = [d.split("@", 1)[1] for d in repo_digests if "@" in d]
    digests = [t for t in tails if DIGEST_RE.fullmatch(t)]
    return digests[0] if digests else image_id


def probe_local(run: Run, cands: list[Candidate]) -> dict[str, str]:
    """Tags of the canonical name present in the daemon's cache → a digest (RepoDigest if known)."""
    engine = run.engine
    if engine is None:
        return {}
    started = clock()
    hits: dict[str, str] = {}
    try:
        for cand in cands:
            img = engine.local_image(str(run.upstream.with_tag(cand.tag)))
            if img is not None:
                hits[cand.tag] = local_digest(img.repo_digests, img.id)
                run.local_images[cand.tag] = img
    except LanmirrorError as exc:
        run.record("local", "docker", f"unavailable ({describe(exc)})", started)
        return {}
    run.record("local", "docker", f"{len(hits)} of {len(cands)} candidates cached" if hits else "miss", started)
    return hits


def parallel_heads(run: Run, reg: Registry, repo: str, cands: list[Candidate], deadline: float,
                   retry: bool) -> tuple[dict[str, str], list[BaseException], set[str]]:
    """HEAD every candidate at once; what is not answered within `deadline` counts as failed.
    Returns the hits (tag → digest), the errors, and the tags whose answer is unknown."""
    results = run_bounded([partial(reg.head_manifest, repo, c.tag, retry=retry,
                                   deadline=deadline if retry else None) for c in cands], deadline)
    hits: dict[str, str] = {}
    errors: list[BaseException] = []
    unknown: set[str] = set()
    stuck = f" (waiting on {reg.transport.waiting_on})" if reg.transport.waiting_on else ""
    for cand, (done, value) in zip(cands, results, strict=True):
        if not done:
            errors.append(TimeoutError(f"no answer within {deadline:g}s{stuck}"))
            unknown.add(cand.tag)
        elif isinstance(value, BaseException):
            errors.append(value)
            unknown.add(cand.tag)
        elif value is not None:
            hits[cand.tag] = value.digest
            if value.ratelimit and value.ratelimit.remaining is not None:
                run.ratelimit = value.ratelimit.remaining
    return hits, errors, unknown


def remember_unknown(run: Run, kind: str, registry: str, cands: list[Candidate], tags: set[str],
                     error: BaseException) -> None:
    run.unknown += [Option(c, kind, registry, describe(error)) for c in cands if c.tag in tags]


def probe_lan(run: Run, lan: str, cands: list[Candidate]) -> dict[str, str] | None:
    """Digests of candidates on one LAN registry; None when it cannot be reached at all."""
    run.probed_lans.add(lan)
    started = clock()
    t = run.opts.probe_timeout
    reg = run.clients.registry(lan, timeouts=Timeouts(connect=t, read=t))
    repo = run.repository(lan)
    hits, errors, unknown = parallel_heads(run, reg, repo, cands, t, retry=False)
    unreachable = [e for e in errors if isinstance(e, (requests.ConnectionError, requests.Timeout,
                                                       TimeoutError, OSError))]
    if errors and len(errors) == len(cands) and len(unreachable) == len(errors):
        reason = describe(errors[0])
        if run.opts.daemon_probe and run.engine is not None:
            run.record("lan", lan, f"unreachable from here ({reason}); asking the Docker daemon", started)
            return probe_lan_via_daemon(run, lan, repo, cands)
        run.record("lan", lan, f"unreachable ({reason})", started)
        return None
    for _ in range(2):
        best = next((i for i, c in enumerate(cands) if c.tag in hits), len(cands))
        newer_unknown = [c for c in cands[:best] if c.tag in unknown]
        if not newer_unknown:
            break
        # The registry is alive but failed some probes (slow, or a 5xx burst): ask again for those
        # that could beat the best answer, so a bad moment never makes us settle for an older image.
        again, errors, still = parallel_heads(run, reg, repo, newer_unknown, t, retry=False)
        hits.update(again)
        unknown = (unknown - {c.tag for c in newer_unknown}) | still
    run.lan_holders.append((lan, hits))
    if errors:
        run.warn(f"LAN registry {lan}: {len(errors)} of {len(cands)} probes failed ({describe(errors[0])})")
        remember_unknown(run, "lan", lan, cands, unknown, errors[0])
    run.record("lan", lan, f"{len(hits)} of {len(cands)} candidates present" if hits else "miss", started)
    return hits


def probe_lan_via_daemon(run: Run, lan: str, repo: str, cands: list[Candidate]) -> dict[str, str] | None:
    """The job may run where only the host's daemon can reach the LAN (a container, another
    network namespace). The daemon's distribution inspect does a GET, so LAN registries only."""
    started = clock()
    t = run.opts.probe_timeout
    probe_engine = run.clients.engine(t)
    assert probe_engine is not None
    creds = run.clients.credentials(lan)
    results = run_bounded([partial(probe_engine.inspect_distribution, f"{lan}/{repo}:{c.tag}", creds)
                           for c in cands], t)
    hits: dict[str, str] = {}
    errors: list[BaseException] = []
    pending = [c for c, (done, _) in zip(cands, results, strict=True) if not done]
    for cand, (done, value) in zip(cands, results, strict=True):
        if done and isinstance(value, BaseException):
            errors.append(value)
        elif done:
            hits[cand.tag] = str(value)
    not_found = [e for e in errors if "not found" in str(e).lower() or "unknown" in str(e).lower()]
    if not hits and (pending or len(not_found) < len(errors)):
        run.record("lan-daemon", lan, f"unreachable from the daemon too "
                   f"({describe(errors[0]) if errors else f'no answer within {t:g}s'})", started)
        return None
    run.record("lan-daemon", lan, f"{len(hits)} of {len(cands)} candidates present" if hits else "miss", started)
    return hits


def probe_hub(run: Run, cands: list[Candidate]) -> dict[str, str] | None:
    started = clock()
    hits, errors, unknown = parallel_heads(run, run.hub(), run.upstream.repository, cands,
                                           run.within(run.opts.hub_timeout), retry=True)
    if errors:
        remember_unknown(run, "hub", run.opts.hub_registry, cands, unknown, errors[0])
    run.hub_absent |= {c.tag for c in cands} - set(hits) - unknown
    run.hub_digests.update(hits)
    if errors and not hits and len(errors) == len(cands):
        run.hub_error = errors[0]
        what = "unavailable" if is_transient(errors[0]) else "refused the check"
        run.record("hub", run.opts.hub_registry, f"{what} ({describe(errors[0])})", started)
        return None
    rl = f", ratelimit-remaining {run.ratelimit}" if run.ratelimit is not None else ""
    run.record("hub", run.opts.hub_registry,
               (f"{len(hits)} of {len(cands)} candidates present" if hits else "miss") + rl, started)
    return hits


def hub_digest(run: Run, tag: str) -> str | BaseException | None:
    """The Hub's digest for one tag (a free HEAD); None if absent; the error if it gave no answer."""
    hits = probe_hub(run, [Candidate(tag, None, 0, 0)])
    if hits is None:
        return run.hub_error or LanmirrorError("Hub unreachable")
    return hits.get(tag)


def refresh_ratelimit(run: Run, tag: str) -> None:
    """After a Hub pull, one more free HEAD so the reported remaining quota includes that pull."""
    try:
        head = run.hub().head_manifest(run.upstream.repository, tag, retry=False)
    except Exception as exc:  # reporting only: never fail a successful pull over it
        log.debug("could not refresh the rate limit: %s", describe(exc))
        return
    if head and head.ratelimit and head.ratelimit.remaining is not None:
        run.ratelimit = head.ratelimit.remaining
