"""The state one resolve run shares between its steps: the clients, the attempts table, the
warnings and the last rate-limit reading. Steps are plain functions over it."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from lanmirror.daemon import Engine, LocalImage, ProgressFn
from lanmirror.name import Reference, repository_on
from lanmirror.ops.clients import Clients
from lanmirror.ops.resolve.model import Attempt, Option, ResolveOptions
from lanmirror.remote.registry import Registry
from lanmirror.retry import RetryPolicy
from lanmirror.transport import Timeouts

log = logging.getLogger("lanmirror.resolve")


def clock() -> float:
    return time.monotonic()


@dataclass
class Run:
    opts: ResolveOptions
    clients: Clients
    on_progress: ProgressFn | None = None
    on_event: Callable[[str], None] = lambda msg: log.info("%s", msg)
    attempts: list[Attempt] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    ratelimit: int | None = None
    # Probes that failed (not "absent": no answer, or an error) for a candidate at a source, with
    # the reason in `digest`; a choice ranked after one of them is degraded.
    unknown: list[Option] = field(default_factory=list)
    # Tags the Hub answered "not there" for: the LAN mirrors the Hub, so not knowing whether a LAN
    # has one of them changes nothing.
    hub_absent: set[str] = field(default_factory=set)
    probed_lans: set[str] = field(default_factory=set)
    # LAN registries neither this process nor the daemon reached (refused, or no answer within the
    # probe timeout): no step of the run asks them again. And those only the daemon reached: this
    # process cannot read from them (the job runs where the LAN is out of reach).
    unreachable: set[str] = field(default_factory=set)
    daemon_only: set[str] = field(default_factory=set)
    local_images: dict[str, LocalImage] = field(default_factory=dict)
    local_verdicts: dict[str, bool | None] = field(default_factory=dict)
    # Why the Hub gave no answer at all on its last probe (a network failure, or a refusal).
    hub_error: BaseException | None = None
    # What each source answered with, for the fast pull's list of sources holding the chosen digest:
    # LAN registries this process reached (registry, tag → digest), and the Hub's digests.
    lan_holders: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    hub_digests: dict[str, str] = field(default_factory=dict)
    # Sources that served bytes not matching their digest: never read from again in this run.
    bad_sources: set[str] = field(default_factory=set)
    # Sources abandoned for slowness in this run: no later option reads a byte from them.
    slow_sources: set[str] = field(default_factory=set)
    _hub: Registry | None = None
    started: float = field(default_factory=lambda: clock())

    @property
    def policy(self) -> RetryPolicy:
        return self.clients.policy

    @property
    def engine(self) -> Engine | None:
        return self.clients.engine()

    @property
    def upstream(self) -> Reference:
        """The canonical name: what a pulled image is tagged as, wherever it came from."""
        return Reference(self.opts.hub_registry, self.repository(self.opts.hub_registry), tag="latest")

    def repository(self, registry: str) -> str:
        return repository_on(registry, self.opts.repo)

    def hub(self) -> Registry:
        if self._hub is None:
            self._hub = self.clients.registry(self.opts.hub_registry, timeouts=Timeouts(connect=3.0, read=10.0))
        return self._hub

    def remaining(self) -> float:
        """Seconds left of the run's wall-clock budget (--budget)."""
        return self.started + self.opts.budget - clock()

    def within(self, seconds: float) -> float:
        """`seconds`, or what is left of the budget if that is less (never below a tenth of a second:
        a step asked to run at all gets a moment to say it ran out)."""
        return max(0.1, min(seconds, self.remaining()))

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        log.warning("%s", message)

    def record(self, source: str, registry: str, result: str, started: float, tag: str = "", *,
               rate_mbps: float | None = None, floor_mbps: float | None = None, bytes_completed: int | None = None,
               bytes_kept: int | None = None, path: str = "", nbytes: int | None = None,
               mbps: float | None = None, download_seconds: float | None = None, event: str = "") -> None:
        self.attempts.append(Attempt(source, registry, result, round(clock() - started, 3), tag,
                                     rate_mbps, floor_mbps, bytes_completed, bytes_kept, path, nbytes, mbps,
                                     download_seconds, event))
        self.on_event(f"{source} {registry}: {result}")
