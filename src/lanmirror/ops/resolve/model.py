"""What resolve reads and returns: options, candidates, the attempts table, the result."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

from lanmirror.errors import BadInput, LanmirrorError
from lanmirror.name import DOCKER_HUB, normalize_registry, validate_repository
from lanmirror.remote.ranges import RangeSettings

FALLBACKS = ("tags", "local")  # last resorts when the window is empty, in this order (fallback.py)
POLICIES = ("cache-first", "newest")
LAN_SELECT = ("ordered", "spread")
PULL_VIA = ("auto", "ranges", "daemon")


@dataclass(frozen=True)
class Candidate:
    tag: str
    date: dt.date | None
    base_index: int  # preference of its base tag (0 = first)
    age_days: int


class Option(NamedTuple):
    """One place a candidate can be had from: `kind` is local, lan or hub."""

    cand: Candidate
    kind: str
    registry: str
    digest: str


@dataclass
class Attempt:
    """One line of the 'what was tried' table: a source, what it answered, how long it took."""

    source: str
    registry: str
    result: str
    seconds: float
    tag: str = ""
    # A pull abandoned for slowness: the measured rate and the floor (MB/s), the bytes of layers that
    # had completed, and how many of those the daemon kept for the next source (None: unknown).
    rate_mbps: float | None = None
    floor_mbps: float | None = None
    bytes_completed: int | None = None
    bytes_kept: int | None = None
    # A pull: how it went (ranges: through the loopback endpoint; daemon: the daemon directly), and
    # for the endpoint, the bytes each source delivered and at what rate.
    path: str = ""
    bytes: int | None = None
    mbps: float | None = None
    download_seconds: float | None = None  # of `seconds`, until the last layer was downloaded
    # What the line stands for in the record and the fleet report: "pull" (the image was pulled),
    # "handoff" (a slow pull handed to the next source), "pull-failed"; empty for a probe.
    event: str = ""


@dataclass
class PullStats:
    """How the chosen image became local: the measure the fleet report aggregates. A cache hit is
    a pull of 0 bytes taking the time of the cache check; `path` is cache, ranges (lanmirror's
    loopback endpoint in the job), endpoint-on-host (the same, in a helper container on the
    daemon's host) or daemon (the daemon pulled directly)."""

    source: str
    registry: str
    path: str
    seconds: float
    bytes: int
    mbps: float | None

    @classmethod
    def of(cls, attempt: Attempt) -> PullStats:
        nbytes = attempt.bytes or 0
        mbps = round(nbytes / attempt.seconds / 1e6, 1) if nbytes and attempt.seconds > 0 else None
        return cls(attempt.source, attempt.registry, attempt.path or "daemon", attempt.seconds, nbytes, mbps)


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
    fallback: list[str] = field(default_factory=list)  # last resorts when nothing is in the window (fallback.py)
    # Artifact types (or cosign's sig, att, sbom) a LAN copy must carry when the Hub's does.
    require_referrers: list[str] = field(default_factory=list)
    probe_timeout: float = 2.0
    hub_timeout: float = 30.0
    stall_timeout: float = 120.0
    pull_timeout: float = 3600.0
    # The whole resolve's wall-clock budget: every step (probes, checks, pulls, fallbacks) gets at
    # most what is left of it, and no new source is tried once it is spent.
    budget: float = 3900.0
    today: dt.date | None = None
    daemon_probe: bool = True
    allow_degraded: bool = False
    # A Hub that refuses the check (401/403) leaves a cached or LAN copy unverifiable: it is not used
    # unless the user said so here, and then it is marked loudly.
    allow_unverified: bool = False
    min_pull_rate: float = 5.0  # MB/s over pull_rate_window seconds of downloading; 0: no floor
    pull_rate_window: float = 30.0
    lan_select: str = "ordered"  # ordered: sites in preference order; spread: rendezvous over replicas
    runner_id: str = ""  # spread's identity; empty: $RUNNER_NAME, then the host name
    # auto: the daemon pulls from lanmirror's loopback endpoint (parallel ranges, every replica),
    # or directly where it cannot reach it; ranges: the endpoint or fail; daemon: directly, as before.
    pull_via: str = "auto"
    # Where the daemon cannot reach this job's loopback: the image of the helper container that runs
    # the endpoint on the daemon's host ("": lanmirror/lanmirror:<version> on the daemon or a LAN).
    helper_image: str = ""
    # Not a flag of resolve, on purpose: the flow count already adapts to the link (4 ranges, more
    # while the rate grows), and the window bounds what a job may buffer on a shared runner (36 MiB).
    # mirror's --ranges and --range-chunk-mb exist for one long WAN copy on a publisher's host.
    range_settings: RangeSettings = field(default_factory=RangeSettings)

    def validate(self) -> None:
        validate_repository(self.repo)
        if self.lan_select not in LAN_SELECT:
            raise BadInput(f"invalid lan-select {self.lan_select!r}: choose one of {', '.join(LAN_SELECT)}")
        if self.pull_via not in PULL_VIA:
            raise BadInput(f"invalid pull-via {self.pull_via!r}: choose one of {', '.join(PULL_VIA)}")
        if self.policy not in POLICIES:
            raise BadInput(f"invalid policy {self.policy!r}: choose one of {', '.join(POLICIES)}")
        if not self.image and not self.base_tags:
            raise BadInput("give at least one --base-tag (or an explicit --image)")
        bad = [f for f in self.fallback if f not in FALLBACKS]
        if bad:
            raise BadInput(f"invalid fallback {', '.join(bad)}: choose tags, local or both (in that order)")
        if not self.min_pull_rate >= 0:
            raise BadInput(f"invalid min-pull-rate {self.min_pull_rate!r}: give MB/s, or 0 to turn the floor off")
        for name, value in (("probe-timeout", self.probe_timeout), ("stall-timeout", self.stall_timeout),
                            ("pull-timeout", self.pull_timeout), ("hub-timeout", self.hub_timeout),
                            ("pull-rate-window", self.pull_rate_window), ("budget", self.budget)):
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
    # A more preferred candidate could not be probed and --allow-degraded took this one anyway.
    degraded: bool = False
    # Nothing was in the window: "tags" (the newest of the line in the tag lists) or "local" (an
    # image of the line this runner holds), per --fallback; empty for a normal result.
    fallback: str = ""
    # How the image became local (None with --no-pull, where nothing did).
    pull: PullStats | None = None

    def outputs(self) -> dict[str, str]:
        """The action outputs / --json fields, kebab-case, all strings."""
        return {
            "image": self.image, "source": self.source, "tag": self.tag, "date": self.date,
            "age-days": "" if self.age_days is None else str(self.age_days), "digest": self.digest,
            "pinned": self.pinned,
            "ratelimit-remaining": "" if self.ratelimit_remaining is None else str(self.ratelimit_remaining),
            "degraded": "true" if self.degraded else "false",
            "registry": self.registry,
            "pull-seconds": "" if self.pull is None else f"{self.pull.seconds:.3f}",
            "pull-bytes": "" if self.pull is None else str(self.pull.bytes),
        }

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = dict(self.outputs())
        data["degraded"] = self.degraded
        data["fallback"] = self.fallback
        data["pull"] = asdict(self.pull) if self.pull is not None else None
        for key in ("pull-seconds", "pull-bytes"):  # in JSON, as numbers inside "pull"
            data.pop(key)
        data.update({"registry": self.registry, "verified": self.verified, "pulled": self.pulled,
                     "attempts": [asdict(a) for a in self.attempts], "warnings": list(self.warnings)})
        return data


class NothingFound(LanmirrorError):
    """No candidate could be found (exit 1) — or found but not fetched; `attempts` says where and why."""

    def __init__(self, message: str, attempts: list[Attempt]) -> None:
        super().__init__(message)
        self.attempts = attempts
