"""Step 2: ask each source which candidates it holds. The local cache through the engine; LAN
registries with parallel HEADs inside a bounded time (through the daemon when this process cannot
reach them); the Hub with HEADs only, which do not count against its pull limit."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from functools import partial
from typing import Any

import requests

from lanmirror.errors import LanmirrorError
from lanmirror.name import DIGEST_RE
from lanmirror.ops.resolve.context import Run, clock
from lanmirror.ops.resolve.model import Candidate, Option
from lanmirror.remote.registry import Registry
from lanmirror.retry import describe, is_transient, run_bounded
from lanmirror.transport import Timeouts

log = logging.getLogger("lanmirror.resolve")


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
                   retry: bool, on_result: Callable[[object], None] | None = None,
                   ) -> tuple[dict[str, str], list[BaseException], set[str]]:
    """HEAD every candidate at once; what is not answered within `deadline` counts as failed.
    Returns the hits (tag → digest), the errors, and the tags whose answer is unknown.
    `on_result` hears each answer or error as it comes."""
    def head(cand: Candidate) -> Any:
        try:
            value = reg.head_manifest(repo, cand.tag, retry=retry, deadline=deadline if retry else None)
        except BaseException as exc:
            if on_result is not None:
                on_result(exc)
            raise
        if on_result is not None:
            on_result(value)
        return value

    results = run_bounded([partial(head, c) for c in cands], deadline)
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


# How long the job-side probes of a LAN get before the daemon is asked too, unless one fails to
# connect first: long enough that a LAN this process reaches answers (then the daemon is never
# asked), short enough that a LAN that only the daemon reaches, or a dead one, costs one bound.
DAEMON_GRACE = 0.3


def probe_lan(run: Run, lan: str, cands: list[Candidate]) -> dict[str, str] | None:
    """Digests of candidates on one LAN registry; None when it cannot be reached at all. The
    daemon is asked at the same time where this process fails to connect, so a LAN that only the
    daemon reaches, or a dead one, costs one probe timeout in all. A LAN found unreachable is not
    asked again by any step of the run."""
    if lan in run.unreachable:
        return None
    run.probed_lans.add(lan)
    started = clock()
    t = run.within(run.opts.probe_timeout)
    reg = run.clients.registry(lan, timeouts=Timeouts(connect=t, read=t))
    repo = run.repository(lan)
    side = DaemonSide(run, lan, repo, cands, started + t) if run.opts.daemon_probe and run.engine else None
    hits, errors, unknown = parallel_heads(run, reg, repo, cands, t, retry=False,
                                           on_result=side.job_said if side else None)
    unreachable = [e for e in errors if isinstance(e, _UNREACHABLE)]
    if errors and len(errors) == len(cands) and len(unreachable) == len(errors):
        reason = describe(errors[0])
        if side is not None:
            run.record("lan", lan, f"unreachable from here ({reason}); asking the Docker daemon", started)
            found = side.result()
            (run.unreachable if found is None else run.daemon_only).add(lan)
            return found
        run.record("lan", lan, f"unreachable ({reason})", started)
        run.unreachable.add(lan)
        return None
    if side is not None:
        side.cancel()
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


_UNREACHABLE = (requests.ConnectionError, requests.Timeout, TimeoutError, OSError)


class DaemonSide:
    """The daemon-side probe of one LAN, run beside the job-side one: it starts when a job-side
    probe fails to connect, or after DAEMON_GRACE with no job-side answer, and ends by `ends` (the
    job side's own deadline); a job-side answer within the grace cancels it."""

    def __init__(self, run: Run, lan: str, repo: str, cands: list[Candidate], ends: float) -> None:
        self.run, self.lan, self.repo, self.cands, self.ends = run, lan, repo, cands, ends
        self.go = threading.Event()
        self.answered = threading.Event()
        self.done = threading.Event()
        self.found: dict[str, str] | None = None
        self.said = f"no answer within {max(0.0, ends - clock()):.3g}s"
        self.began = clock()
        threading.Thread(target=self._work, name="daemon-probe", daemon=True).start()

    def job_said(self, value: object) -> None:
        """A job-side probe's result: an answer (even "absent") cancels; a failure to connect starts."""
        if not isinstance(value, _UNREACHABLE):
            if isinstance(value, BaseException):
                return
            self.answered.set()
        self.go.set()

    def cancel(self) -> None:
        self.answered.set()
        self.go.set()

    def _work(self) -> None:
        try:
            self.go.wait(DAEMON_GRACE)
            left = self.ends - clock()
            if not self.answered.is_set() and left > 0:
                self.began = clock()
                self.found, self.said = probe_lan_via_daemon(self.run, self.lan, self.repo, self.cands, left)
        finally:
            self.done.set()

    def result(self) -> dict[str, str] | None:
        """What the daemon found, waiting at most until the deadline (None: nothing, or no answer)."""
        self.go.set()
        finished = self.done.wait(max(0.0, self.ends - clock()) + 0.5)
        found = self.found if finished else None
        self.run.record("lan-daemon", self.lan, self.said if finished else "unreachable from the daemon too "
                        "(no answer by the probe deadline)", self.began)
        return found


def probe_lan_via_daemon(run: Run, lan: str, repo: str, cands: list[Candidate],
                         deadline: float) -> tuple[dict[str, str] | None, str]:
    """The job may run where only the host's daemon can reach the LAN (a container, another
    network namespace). The daemon's distribution inspect does a GET, so LAN registries only.
    Returns the hits (None: unreachable from the daemon too) and the line for the attempts table
    (recorded by the caller, once it takes the answer)."""
    t = deadline
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
        return None, (f"unreachable from the daemon too "
                      f"({describe(errors[0]) if errors else f'no answer within {t:g}s'})")
    return hits, f"{len(hits)} of {len(cands)} candidates present" if hits else "miss"


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
