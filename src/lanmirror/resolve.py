"""The resolve-image use case: pick the newest usable nightly and make it available locally.

Sources in order: the runner's Docker cache, the LAN registries, the upstream ("Hub"). Each
source's candidates are probed in parallel with manifest HEADs (free on Docker Hub); a LAN
registry gets a bounded time, after which it is abandoned; a LAN hit is checked against the
Hub's digest before it is trusted; a pull that stops making progress falls back to the next
source. Returns a `Resolution` (or raises `NothingFound`) and prints nothing: the entry points do.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

import requests

from lanmirror.engine import Engine, ProgressFn, plain_http_allowed
from lanmirror.errors import BadInput, LanmirrorError, PullLimitExceeded
from lanmirror.reference import (
    DOCKER_HUB,
    Reference,
    nightly_candidates,
    nightly_date,
    normalize_registry,
    parse,
    repository_on,
    utc_today,
    validate_repository,
)
from lanmirror.registry import Registry
from lanmirror.retry import DEFAULT_POLICY, RetryPolicy, describe
from lanmirror.transport import Credentials, Timeouts, Transport, is_insecure

log = logging.getLogger("lanmirror.resolve")

POLICIES = ("cache-first", "newest")


@dataclass(frozen=True)
class Candidate:
    tag: str
    date: dt.date | None
    base_index: int  # preference of its base tag (0 = first)
    age_days: int


@dataclass
class Attempt:
    """One line of the 'what was tried' table: a source, what it answered, how long it took."""

    source: str
    registry: str
    result: str
    seconds: float
    tag: str = ""


@dataclass
class ResolveOptions:
    repo: str
    base_tags: list[str] = field(default_factory=list)
    days: int = 7
    lan_registries: list[str] = field(default_factory=list)
    hub_registry: str = DOCKER_HUB
    policy: str = "cache-first"
    pull: bool = True
    verify: bool = True
    image: str | None = None
    probe_timeout: float = 2.0
    hub_timeout: float = 30.0
    stall_timeout: float = 120.0
    pull_timeout: float = 3600.0
    hub_credentials: Credentials | None = None
    insecure_registries: list[str] = field(default_factory=list)
    today: dt.date | None = None
    daemon_probe: bool = True

    def validate(self) -> None:
        validate_repository(self.repo)
        if self.policy not in POLICIES:
            raise BadInput(f"invalid policy {self.policy!r}: choose one of {', '.join(POLICIES)}")
        if not self.image and not self.base_tags:
            raise BadInput("give at least one --base-tag (or an explicit --image)")
        for name, value in (("probe-timeout", self.probe_timeout), ("stall-timeout", self.stall_timeout),
                            ("pull-timeout", self.pull_timeout), ("hub-timeout", self.hub_timeout)):
            if not value > 0:
                raise BadInput(f"invalid {name} {value!r}: must be a positive number of seconds")
        self.hub_registry = normalize_registry(self.hub_registry)
        self.lan_registries = [normalize_registry(r) for r in self.lan_registries]


@dataclass
class Resolution:
    image: str
    source: str  # local | lan | hub
    registry: str
    tag: str
    date: str
    age_days: int | None
    digest: str
    pinned: str
    ratelimit_remaining: int | None
    verified: bool | None
    pulled: bool
    attempts: list[Attempt] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def outputs(self) -> dict[str, str]:
        """The action outputs / --json fields, kebab-case, all strings."""
        return {
            "image": self.image, "source": self.source, "tag": self.tag, "date": self.date,
            "age-days": "" if self.age_days is None else str(self.age_days), "digest": self.digest,
            "pinned": self.pinned,
            "ratelimit-remaining": "" if self.ratelimit_remaining is None else str(self.ratelimit_remaining),
        }

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = dict(self.outputs())
        data.update({"registry": self.registry, "verified": self.verified, "pulled": self.pulled,
                     "attempts": [asdict(a) for a in self.attempts], "warnings": list(self.warnings)})
        return data


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


class NothingFound(LanmirrorError):
    """No candidate could be found (exit 1) — or found but not fetched; `attempts` says where and why."""

    def __init__(self, message: str, attempts: list[Attempt]) -> None:
        super().__init__(message)
        self.attempts = attempts


def candidates(opts: ResolveOptions) -> list[Candidate]:
    today = opts.today or utc_today()
    out = []
    for index, base in enumerate(opts.base_tags):
        for tag, day in nightly_candidates(base, opts.days, today):
            out.append(Candidate(tag, day, index, (today - day).days))
    if opts.policy == "newest":
        out.sort(key=lambda c: (c.age_days, c.base_index))
    return out  # cache-first: base-tag preference, then newest first


class _Resolver:
    def __init__(self, opts: ResolveOptions, engine: Engine | None, policy: RetryPolicy,
                 on_progress: ProgressFn | None, on_event: Callable[[str], None] | None) -> None:
        self.opts = opts
        self.engine = engine
        self.policy = policy
        self.on_progress = on_progress
        self.on_event = on_event or (lambda msg: log.info("%s", msg))
        self.attempts: list[Attempt] = []
        self.warnings: list[str] = []
        self.ratelimit: int | None = None
        self.upstream = Reference(opts.hub_registry, self._repository(opts.hub_registry), tag="latest")
        self._hub: Registry | None = None
        self._insecure: list[str] | None = None
        self._fallback_hits: dict[str, str] | None = None

    @staticmethod
    def _clock() -> float:
        return time.monotonic()

    def _repository(self, registry: str) -> str:
        return repository_on(registry, self.opts.repo)

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        log.warning("%s", message)

    def record(self, source: str, registry: str, result: str, started: float, tag: str = "") -> None:
        self.attempts.append(Attempt(source, registry, result, round(self._clock() - started, 3), tag))
        self.on_event(f"{source} {registry}: {result}")

    def insecure(self) -> list[str]:
        if self._insecure is None:
            self._insecure = plain_http_allowed(self.opts.insecure_registries, self.opts.lan_registries,
                                                self.engine, ask_daemon=self.engine is not None)
        return self._insecure

    def hub(self) -> Registry:
        if self._hub is None:
            reg = self.opts.hub_registry
            self._hub = Registry(Transport(reg, insecure=is_insecure(reg, self.insecure()),
                                           credentials=self.opts.hub_credentials,
                                           timeouts=Timeouts(connect=3.0, read=10.0), policy=self.policy))
        return self._hub

    # -- probes -------------------------------------------------------------------------------

    def probe_local(self, cands: list[Candidate]) -> dict[str, str]:
        """Tags of the canonical name present in the daemon's cache → a digest (RepoDigest if known)."""
        if self.engine is None:
            return {}
        started = self._clock()
        hits: dict[str, str] = {}
        try:
            for cand in cands:
                img = self.engine.local_image(str(self.upstream.with_tag(cand.tag)))
                if img is not None:
                    digests = [d.split("@", 1)[1] for d in img.repo_digests if "@" in d]
                    hits[cand.tag] = digests[0] if digests else img.id
        except LanmirrorError as exc:
            self.record("local", "docker", f"unavailable ({describe(exc)})", started)
            return {}
        self.record("local", "docker", f"{len(hits)} of {len(cands)} candidates cached" if hits else "miss", started)
        return hits

    def _parallel_heads(self, reg: Registry, repo: str, cands: list[Candidate], deadline: float,
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
                    self.ratelimit = value.ratelimit.remaining
        return hits, errors, unknown

    def probe_lan(self, lan: str, cands: list[Candidate]) -> dict[str, str] | None:
        """Digests of candidates on one LAN registry; None when it cannot be reached at all."""
        started = self._clock()
        t = self.opts.probe_timeout
        reg = Registry(Transport(lan, insecure=is_insecure(lan, self.insecure()),
                                 timeouts=Timeouts(connect=t, read=t), policy=self.policy))
        repo = self._repository(lan)
        hits, errors, unknown = self._parallel_heads(reg, repo, cands, t, retry=False)
        unreachable = [e for e in errors if isinstance(e, (requests.ConnectionError, requests.Timeout,
                                                           TimeoutError, OSError))]
        if errors and len(errors) == len(cands) and len(unreachable) == len(errors):
            reason = describe(errors[0])
            if self.opts.daemon_probe and self.engine is not None:
                self.record("lan", lan, f"unreachable from here ({reason}); asking the Docker daemon", started)
                return self.probe_lan_via_daemon(lan, repo, cands)
            self.record("lan", lan, f"unreachable ({reason})", started)
            return None
        best = next((i for i, c in enumerate(cands) if c.tag in hits), len(cands))
        newer_unknown = [c for c in cands[:best] if c.tag in unknown]
        if newer_unknown:
            # The registry is alive but was slow for some probes: ask once more for those that could
            # beat the best answer, so a slow moment never makes us settle for an older image.
            again, errors, _ = self._parallel_heads(reg, repo, newer_unknown, t, retry=False)
            hits.update(again)
        if errors:
            self.warn(f"LAN registry {lan}: {len(errors)} of {len(cands)} probes failed ({describe(errors[0])})")
        self.record("lan", lan, f"{len(hits)} of {len(cands)} candidates present" if hits else "miss", started)
        return hits

    def probe_lan_via_daemon(self, lan: str, repo: str, cands: list[Candidate]) -> dict[str, str] | None:
        """The job may run where only the host's daemon can reach the LAN (a container, another
        network namespace). The daemon's distribution inspect does a GET, so LAN registries only."""
        assert self.engine is not None
        started = self._clock()
        t = self.opts.probe_timeout
        probe_engine = Engine(self.engine.base_url, timeout=t, policy=self.policy)
        results = run_bounded([partial(probe_engine.inspect_distribution, f"{lan}/{repo}:{c.tag}")
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
            self.record("lan-daemon", lan, f"unreachable from the daemon too "
                        f"({describe(errors[0]) if errors else f'no answer within {t:g}s'})", started)
            return None
        self.record("lan-daemon", lan, f"{len(hits)} of {len(cands)} candidates present" if hits else "miss",
                    started)
        return hits

    def probe_hub(self, cands: list[Candidate]) -> dict[str, str] | None:
        started = self._clock()
        hits, errors, _ = self._parallel_heads(self.hub(), self.upstream.repository, cands, self.opts.hub_timeout,
                                               retry=True)
        if errors and not hits and len(errors) == len(cands):
            self.record("hub", self.opts.hub_registry, f"unavailable ({describe(errors[0])})", started)
            return None
        rl = f", ratelimit-remaining {self.ratelimit}" if self.ratelimit is not None else ""
        self.record("hub", self.opts.hub_registry,
                    (f"{len(hits)} of {len(cands)} candidates present" if hits else "miss") + rl, started)
        return hits

    def hub_digest(self, tag: str) -> str | Exception | None:
        """The Hub's digest for one tag (a free HEAD); None if absent; the error if unreachable."""
        hits = self.probe_hub([Candidate(tag, None, 0, 0)])
        if hits is None:
            return LanmirrorError("Hub unreachable")
        return hits.get(tag)

    def refresh_ratelimit(self, tag: str) -> None:
        """After a Hub pull, one more free HEAD so the reported remaining quota includes that pull."""
        try:
            head = self.hub().head_manifest(self.upstream.repository, tag, retry=False)
        except Exception as exc:  # reporting only: never fail a successful pull over it
            log.debug("could not refresh the rate limit: %s", describe(exc))
            return
        if head and head.ratelimit and head.ratelimit.remaining is not None:
            self.ratelimit = head.ratelimit.remaining

    # -- choose, verify, pull -----------------------------------------------------------------

    def run(self) -> Resolution:
        opts = self.opts
        if opts.image:
            return self.run_override()
        cands = candidates(opts)
        local = self.probe_local(cands)
        if opts.policy == "cache-first" and local:
            best = next(c for c in cands if c.tag in local)
            return self.finish_local(best, local[best.tag])
        lan_hits: list[tuple[str, dict[str, str]]] = []
        for lan in opts.lan_registries:
            hits = self.probe_lan(lan, cands)
            if hits:
                lan_hits.append((lan, hits))
                if opts.policy == "cache-first":
                    break
        hub_hits: dict[str, str] | None = None
        if opts.policy == "newest" or not lan_hits:
            hub_hits = self.probe_hub(cands)
        # Every (candidate, source) pair, in the order the policy prefers them.
        options: list[tuple[Candidate, str, str, str]] = []  # cand, kind, registry, digest
        for cand in cands:
            if cand.tag in local:
                options.append((cand, "local", "docker", local[cand.tag]))
            for lan, hits in lan_hits:
                if cand.tag in hits:
                    options.append((cand, "lan", lan, hits[cand.tag]))
            if hub_hits and cand.tag in hub_hits:
                options.append((cand, "hub", opts.hub_registry, hub_hits[cand.tag]))
        if opts.policy == "cache-first":
            rank = {"local": 0, "lan": 1, "hub": 2}
            options.sort(key=lambda o: (rank[o[1]], cands.index(o[0])))
        if not options:
            raise NothingFound(self.nothing_message(), self.attempts)
        return self.take_first(options, cands, hub_hits)

    def nothing_message(self) -> str:
        tried = "; ".join(f"{a.source} {a.registry}: {a.result}" for a in self.attempts)
        tags = ", ".join(f"{b}-<YYYYMMDD>" for b in self.opts.base_tags)
        return (f"no nightly of {self.opts.repo} ({tags}) in the last {self.opts.days} day(s) was found. "
                f"Tried: {tried}")

    def take_first(self, options: list[tuple[Candidate, str, str, str]], cands: list[Candidate],
                   hub_hits: dict[str, str] | None) -> Resolution:
        """Try the options in order; a stale, stalled or failing source falls through to the next.
        When every LAN option failed and the Hub was not asked yet, ask it now."""
        failures: list[str] = []
        hub_blocked = False
        queue = list(options)
        while queue:
            cand, kind, registry, digest = queue.pop(0)
            if kind == "local":
                return self.finish_local(cand, digest)
            if kind == "hub" and hub_blocked:
                continue
            verified: bool | None = None
            if kind == "lan" and self.opts.verify:
                upstream = hub_hits.get(cand.tag) if hub_hits is not None else self.hub_digest(cand.tag)
                if isinstance(upstream, Exception):
                    verified = False
                    self.warn(f"LAN copy {registry}/{self.opts.repo}:{cand.tag} is unverified: "
                              f"the upstream {self.opts.hub_registry} could not be asked")
                elif upstream is None:
                    verified = False
                    self.warn(f"{cand.tag} is on the LAN registry {registry} but not on {self.opts.hub_registry}; "
                              "using the LAN copy unverified")
                elif upstream != digest:
                    self.warn(f"stale mirror: {registry}/{self.opts.repo}:{cand.tag} is {digest[:19]}… but "
                              f"{self.opts.hub_registry} has {upstream[:19]}…; not using the LAN copy")
                    failures.append(f"lan {registry}: stale digest for {cand.tag}")
                    queue = self._with_hub_fallback(queue, cands, hub_hits)
                    continue
                else:
                    verified = True
            try:
                return self.finish_remote(cand, kind, registry, digest, verified)
            except LanmirrorError as exc:
                failures.append(f"{kind} {registry}: {exc}")
                self.record(kind, registry, f"pull failed ({describe(exc)})", self._clock(), cand.tag)
                if isinstance(exc, PullLimitExceeded) and kind == "hub":
                    hub_blocked = True  # every other Hub pull would hit the same limit
                if kind == "lan":
                    queue = self._with_hub_fallback(queue, cands, hub_hits)
        raise NothingFound("found candidates but could not fetch any: " + "; ".join(failures), self.attempts)

    def _with_hub_fallback(self, queue: list[tuple[Candidate, str, str, str]], cands: list[Candidate],
                           hub_hits: dict[str, str] | None) -> list[tuple[Candidate, str, str, str]]:
        """Append the Hub's options when the queue holds none (cache-first skipped probing it)."""
        if any(kind == "hub" for _, kind, _, _ in queue):
            return queue
        if hub_hits is not None:
            hits: dict[str, str] | None = hub_hits
        else:
            if self._fallback_hits is None:
                self._fallback_hits = self.probe_hub(cands) or {}
            hits = self._fallback_hits
        return queue + [(c, "hub", self.opts.hub_registry, hits[c.tag]) for c in cands if hits and c.tag in hits]

    def _result(self, cand: Candidate, kind: str, registry: str, digest: str, image: str, pinned: str,
                verified: bool | None, pulled: bool) -> Resolution:
        day = cand.date or (nightly_date(cand.tag, self.opts.base_tags[cand.base_index])
                            if self.opts.base_tags else None)
        today = self.opts.today or utc_today()
        return Resolution(
            image=image, source=kind, registry=registry, tag=cand.tag, date=day.isoformat() if day else "",
            age_days=(today - day).days if day else None, digest=digest, pinned=pinned,
            ratelimit_remaining=self.ratelimit, verified=verified, pulled=pulled, attempts=self.attempts,
            warnings=self.warnings,
        )

    def finish_local(self, cand: Candidate, digest: str) -> Resolution:
        ref = self.upstream.with_tag(cand.tag)
        pinned = f"{ref.familiar_repository}@{digest}" if digest.startswith("sha256:") else str(ref)
        return self._result(cand, "local", "docker", digest, str(ref), pinned, None, False)

    def finish_remote(self, cand: Candidate, kind: str, registry: str, digest: str,
                      verified: bool | None) -> Resolution:
        canonical = self.upstream.with_tag(cand.tag)
        source_ref = Reference(registry, self._repository(registry), tag=cand.tag)
        pinned = f"{source_ref.familiar_repository}@{digest}"
        if not self.opts.pull:
            image = str(canonical) if kind == "hub" else str(source_ref)
            return self._result(cand, kind, registry, digest, image, pinned, verified, False)
        if self.engine is None:
            raise LanmirrorError("pulling needs the Docker daemon; pass --no-pull to only resolve")
        started = self._clock()
        creds = self.opts.hub_credentials if kind == "hub" else None

        def pull() -> Any:
            assert self.engine is not None
            return self.engine.pull(pinned, source=f"{kind} {registry}", stall_timeout=self.opts.stall_timeout,
                                    timeout=self.opts.pull_timeout, creds=creds, on_progress=self.on_progress)

        if kind == "hub":
            if creds is not None:
                self.engine.login(creds, registry if registry != DOCKER_HUB else "https://index.docker.io/v1/")
            self.policy.call(pull, f"pull {pinned}")
            self.refresh_ratelimit(cand.tag)
        else:
            pull()  # a stalled LAN falls back to the next source instead of being retried
        self.engine.tag(pinned, canonical.familiar_repository, cand.tag)
        self.record(kind, registry, f"pulled {cand.tag}", started, cand.tag)
        return self._result(cand, kind, registry, digest, str(canonical), pinned, verified, True)

    def run_override(self) -> Resolution:
        """An explicit image: no search, but still the local cache first, then pull and report."""
        assert self.opts.image
        ref = parse(self.opts.image)
        cand = Candidate(ref.tag or ref.identifier, None, 0, 0)
        for index, base in enumerate(self.opts.base_tags):
            day = nightly_date(cand.tag, base)
            if day:
                cand = Candidate(cand.tag, day, index, ((self.opts.today or utc_today()) - day).days)
                break
        started = self._clock()
        if self.engine is not None:
            try:
                img = self.engine.local_image(str(ref))
            except LanmirrorError:
                img = None
            if img is not None:
                digests = [d.split("@", 1)[1] for d in img.repo_digests if "@" in d]
                self.record("local", "docker", "override cached", started, cand.tag)
                digest = digests[0] if digests else img.id
                pinned = f"{ref.familiar_repository}@{digest}" if digests else str(ref)
                return self._result(cand, "local", "docker", digest, str(ref), pinned, None, False)
        kind = "lan" if ref.registry in self.opts.lan_registries else "hub"
        reg = self.hub() if kind == "hub" and ref.registry == self.opts.hub_registry else Registry(Transport(
            ref.registry, insecure=is_insecure(ref.registry, self.insecure()),
            timeouts=Timeouts(self.opts.probe_timeout, max(self.opts.probe_timeout, 10.0)), policy=self.policy))
        head = reg.head_manifest(ref.repository, ref.identifier, deadline=self.opts.hub_timeout)
        if head is None:
            self.record(kind, ref.registry, f"override {ref} not found", started, cand.tag)
            raise NothingFound(f"the image {ref} does not exist on {ref.registry}", self.attempts)
        if head.ratelimit and head.ratelimit.remaining is not None:
            self.ratelimit = head.ratelimit.remaining
        self.record(kind, ref.registry, "override present", started, cand.tag)
        if not self.opts.pull:
            return self._result(cand, kind, ref.registry, head.digest, str(ref),
                                f"{ref.familiar_repository}@{head.digest}", None, False)
        if self.engine is None:
            raise LanmirrorError("pulling needs the Docker daemon; pass --no-pull to only resolve")
        pinned = f"{ref.familiar_repository}@{head.digest}"
        self.policy.call(lambda: self.engine.pull(  # type: ignore[union-attr]
            pinned, source=f"{kind} {ref.registry}", stall_timeout=self.opts.stall_timeout,
            timeout=self.opts.pull_timeout, on_progress=self.on_progress), f"pull {pinned}")
        if ref.tag:
            self.engine.tag(pinned, ref.familiar_repository, ref.tag)
        return self._result(cand, kind, ref.registry, head.digest, str(ref), pinned, None, True)


def resolve(opts: ResolveOptions, *, engine: Engine | None = None, policy: RetryPolicy = DEFAULT_POLICY,
            on_progress: ProgressFn | None = None, on_event: Callable[[str], None] | None = None) -> Resolution:
    """Resolve (and by default pull) the newest nightly per `opts`. Raises BadInput, NothingFound."""
    opts.validate()
    return _Resolver(opts, engine, policy, on_progress, on_event).run()
