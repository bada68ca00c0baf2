"""Numbers from records. A pull is one resolve that made its image local; a cache hit is a pull
of 0 bytes. Failures and hand-offs are counted where they happened (the source and registry the
pull was tried at), so a LAN replica that hands most of its pulls to the Hub shows it."""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from lanmirror.records import safe_name
from lanmirror.records.line import finite

SOURCES = ("local", "lan", "hub")


def percentile(values: list[float], p: float) -> float | None:
    """Nearest rank: the smallest value with at least p% of the values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


@dataclass
class Stats:
    """Pulls of one group: counts, and seconds and throughput of the successful ones."""

    pulls: int = 0
    failures: int = 0
    handoffs: int = 0
    seconds: list[float] = field(default_factory=list)
    bytes: int = 0
    byte_seconds: float = 0.0  # seconds of the pulls that moved bytes (MB/s leaves cache hits out)

    def add_pull(self, seconds: float, nbytes: int) -> None:
        self.pulls += 1
        self.seconds.append(seconds)
        if nbytes > 0:
            self.bytes += nbytes
            self.byte_seconds += seconds

    @property
    def mbps(self) -> float | None:
        return round(self.bytes / self.byte_seconds / 1e6, 1) if self.byte_seconds > 0 else None

    def summary(self) -> dict[str, Any]:
        p50, p95 = percentile(self.seconds, 50), percentile(self.seconds, 95)
        return {"pulls": self.pulls, "failures": self.failures, "handoffs": self.handoffs,
                "p50": p50, "p95": p95, "max": max(self.seconds) if self.seconds else None,
                "sum_seconds": round(sum(self.seconds), 3), "bytes": self.bytes, "mbps": self.mbps}


@dataclass
class MirrorStats:
    tags: int = 0
    failed: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        mbps = round(self.bytes_written / self.seconds / 1e6, 1) if self.seconds > 0 and self.bytes_written else None
        return {"tags": self.tags, "failed": self.failed, "bytes_read": self.bytes_read,
                "bytes_written": self.bytes_written, "seconds": round(self.seconds, 3), "mbps": mbps}


@dataclass
class NodeStats:
    """One node mirror's pulls served and what it read from upstream for them."""

    pulls: int = 0
    unverified: int = 0  # served while the Hub was unavailable
    blobs: int = 0  # blobs read from upstream (each once per host)
    upstream: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # bytes by lan / hub

    def summary(self) -> dict[str, Any]:
        return {"pulls": self.pulls, "unverified": self.unverified, "blobs_read": self.blobs,
                "lan_bytes": self.upstream.get("lan", 0), "hub_bytes": self.upstream.get("hub", 0)}


@dataclass
class FleetReport:
    days: int
    since: dt.date
    until: dt.date
    resolves: int = 0  # = pulled + resolved_only + failed_resolves
    failed_resolves: int = 0
    pulled: int = 0  # resolves that made their image local: the pulls of the tables, cache hits included
    resolved_only: int = 0  # resolves that succeeded without a pull (pull: false)
    by_source: dict[tuple[str, str], Stats] = field(default_factory=lambda: defaultdict(Stats))
    by_runner: dict[str, Stats] = field(default_factory=lambda: defaultdict(Stats))
    # source, registry, runner together: the label set of the Prometheus series
    by_all: dict[tuple[str, str, str], Stats] = field(default_factory=lambda: defaultdict(Stats))
    by_day: dict[str, dict[str, Stats]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(Stats)))
    hub_pulls: int = 0  # counted by the Hub against the quota: jobs' and mirror's together
    hub_pulls_mirror: int = 0  # of which mirror's (it reads manifests from the Hub by design)
    hub_pulls_by_day: dict[str, int] = field(default_factory=lambda: defaultdict(int))  # both, by day
    hub_pulls_mirror_by_day: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    # Records outside the window are counted, so that a report of old records says where they are.
    outside: int = 0
    outside_first: str | None = None
    outside_last: str | None = None
    lowest_ratelimit: int | None = None
    mirror: dict[str, MirrorStats] = field(default_factory=lambda: defaultdict(MirrorStats))
    source_bytes_read: int = 0
    nodes: dict[str, NodeStats] = field(default_factory=lambda: defaultdict(NodeStats))  # node mirrors, by host
    rejected: dict[str, int] = field(default_factory=dict)
    unsigned: int = 0
    github: dict[str, Any] = field(default_factory=dict)  # what reading the runs cost and skipped
    verdicts: list[str] = field(default_factory=list)

    def source(self, kind: str) -> Stats:
        """Every registry of one kind of source together (all LAN replicas, say)."""
        total = Stats()
        for (k, _), s in self.by_source.items():
            if k == kind:
                add_stats(total, s)
        return total

    def days_seen(self) -> list[str]:
        """Days with a pull or a counted Hub request (a day of mirror runs only is a day too)."""
        return sorted(set(self.by_day) | {d for d, n in self.hub_pulls_by_day.items() if n})

    def to_json(self) -> dict[str, Any]:
        return {
            "days": self.days, "since": self.since.isoformat(), "until": self.until.isoformat(),
            "resolves": self.resolves, "failed_resolves": self.failed_resolves, "pulled": self.pulled,
            "resolved_only": self.resolved_only,
            "sources": [{"source": k, "registry": r, **s.summary()} for (k, r), s in sorted(self.by_source.items())],
            "runners": [{"runner": n, **s.summary()} for n, s in sorted(self.by_runner.items())],
            "days_detail": [{"day": d, "sources": {k: s.summary() for k, s in sorted(per.items())},
                             "hub_pulls": self.hub_pulls_by_day.get(d, 0),
                             "hub_pulls_mirror": self.hub_pulls_mirror_by_day.get(d, 0)}
                            for d, per in ((d, self.by_day.get(d, {})) for d in self.days_seen())],
            "hub": {"counted_pulls": self.hub_pulls, "counted_pulls_jobs": self.hub_pulls - self.hub_pulls_mirror,
                    "counted_pulls_mirror": self.hub_pulls_mirror, "lowest_ratelimit_remaining": self.lowest_ratelimit},
            "mirror": {"targets": [{"target": t, **m.summary()} for t, m in sorted(self.mirror.items())],
                       "source_bytes_read": self.source_bytes_read},
            "node_mirrors": [{"node": n, **s.summary()} for n, s in sorted(self.nodes.items())],
            "records": {"rejected": dict(sorted(self.rejected.items())), "unsigned": self.unsigned,
                        "outside_window": self.outside, "outside_first": self.outside_first,
                        "outside_last": self.outside_last},
            "github": self.github, "verdicts": list(self.verdicts),
        }


_num = finite


def _text(value: object, default: str = "?") -> str:
    """A registry, runner or target name from a record: anyone may have written the record, and the
    name ends up in a log (the table) and in labels, so it keeps to a plain charset and never starts
    a line with `::`."""
    if not isinstance(value, str) or not value:
        return default
    clean = safe_name(value)
    return "_" + clean if clean.startswith(":") else clean


def _day(record: dict[str, Any]) -> dt.date:
    return dt.date.fromisoformat(record["time"][:10])


def aggregate(records: Iterable[dict[str, Any]], days: int, today: dt.date | None = None) -> FleetReport:
    """Records of the last `days` days (today included) into a report. Fields are read
    defensively: a record is well-formed (`records.line`) but its numbers may be anything."""
    until = today or dt.datetime.now(dt.timezone.utc).date()
    since = until - dt.timedelta(days=days - 1)
    rep = FleetReport(days, since, until)
    for record in records:
        try:
            day = _day(record)
            if not since <= day <= until:
                note_outside(rep, day.isoformat())
                continue
            # Into a scratch report first: a record that cannot be read leaves no half of itself behind.
            scratch = FleetReport(days, since, until)
            if record["kind"] == "resolve":
                add_resolve(scratch, record, day.isoformat())
            elif record["kind"] == "serve":
                add_serve(scratch, record)
            else:
                add_mirror(scratch, record)
        except Exception as exc:  # records are anyone's text: one that trips a reader is rejected, not fatal
            reason = f"unreadable ({type(exc).__name__})"
            rep.rejected[reason] = rep.rejected.get(reason, 0) + 1
            continue
        merge(rep, scratch)
    return rep


def note_outside(rep: FleetReport, day: str) -> None:
    rep.outside += 1
    rep.outside_first = min(day, rep.outside_first or day)
    rep.outside_last = max(day, rep.outside_last or day)


def merge(into: FleetReport, part: FleetReport) -> None:
    """Add the counts of `part` (one record's) to `into`."""
    into.resolves += part.resolves
    into.failed_resolves += part.failed_resolves
    into.pulled += part.pulled
    into.resolved_only += part.resolved_only
    into.hub_pulls += part.hub_pulls
    into.hub_pulls_mirror += part.hub_pulls_mirror
    into.source_bytes_read += part.source_bytes_read
    for day, n in part.hub_pulls_by_day.items():
        into.hub_pulls_by_day[day] += n
    for day, n in part.hub_pulls_mirror_by_day.items():
        into.hub_pulls_mirror_by_day[day] += n
    if part.lowest_ratelimit is not None and (into.lowest_ratelimit is None
                                               or part.lowest_ratelimit < into.lowest_ratelimit):
        into.lowest_ratelimit = part.lowest_ratelimit
    for table, other in ((into.by_source, part.by_source), (into.by_runner, part.by_runner),
                         (into.by_all, part.by_all)):
        for k, stats in other.items():
            add_stats(table[k], stats)  # type: ignore[index]
    for day, per in part.by_day.items():
        for k, stats in per.items():
            add_stats(into.by_day[day][k], stats)
    for node, served in part.nodes.items():
        total = into.nodes[node]
        total.pulls += served.pulls
        total.unverified += served.unverified
        total.blobs += served.blobs
        for kind, nbytes in served.upstream.items():
            total.upstream[kind] += nbytes
    for target, m in part.mirror.items():
        t = into.mirror[target]
        t.tags, t.failed = t.tags + m.tags, t.failed + m.failed
        t.bytes_read, t.bytes_written, t.seconds = t.bytes_read + m.bytes_read, t.bytes_written + m.bytes_written, \
            t.seconds + m.seconds


def add_stats(into: Stats, part: Stats) -> None:
    into.pulls += part.pulls
    into.failures += part.failures
    into.handoffs += part.handoffs
    into.seconds += part.seconds
    into.bytes += part.bytes
    into.byte_seconds += part.byte_seconds


def add_resolve(rep: FleetReport, record: dict[str, Any], day: str) -> None:
    body = record["resolve"]
    runner = _text(record.get("runner"))
    rep.resolves += 1
    for a in body.get("attempts") or []:
        if not isinstance(a, dict) or a.get("source") not in SOURCES:
            continue
        where = (a["source"], _text(a.get("registry")))
        groups = (rep.by_source[where], rep.by_runner[runner], rep.by_all[(where[0], where[1], runner)])
        for stats in groups:
            if a.get("event") == "handoff":
                stats.handoffs += 1
            elif a.get("event") == "pull-failed":
                stats.failures += 1
    pull = body.get("pull")
    if not record.get("ok"):
        rep.failed_resolves += 1
    elif isinstance(pull, dict) and pull.get("source") in SOURCES and _num(pull.get("seconds")) is not None:
        seconds, nbytes = _num(pull.get("seconds")), _num(pull.get("bytes"))
        assert seconds is not None
        rep.pulled += 1
        where = (pull["source"], _text(pull.get("registry")))
        for stats in (rep.by_source[where], rep.by_runner[runner], rep.by_day[day][pull["source"]],
                      rep.by_all[(where[0], where[1], runner)]):
            stats.add_pull(seconds, int(nbytes or 0))
    else:
        rep.resolved_only += 1
    hub = _num(body.get("hub_pulls"))
    if hub:
        rep.hub_pulls += int(hub)
        rep.hub_pulls_by_day[day] += int(hub)
    remaining = _num(body.get("ratelimit_remaining"))
    if remaining is not None and (rep.lowest_ratelimit is None or remaining < rep.lowest_ratelimit):
        rep.lowest_ratelimit = int(remaining)


def add_mirror(rep: FleetReport, record: dict[str, Any]) -> None:
    body = record["mirror"]
    rep.source_bytes_read += int(_num(body.get("source_bytes_read")) or 0)
    pulls = _num(body.get("source_pulls"))  # mirror reads from the Hub: its manifest GETs count too
    if pulls:
        day = _day(record).isoformat()
        rep.hub_pulls += int(pulls)
        rep.hub_pulls_mirror += int(pulls)
        rep.hub_pulls_by_day[day] += int(pulls)
        rep.hub_pulls_mirror_by_day[day] += int(pulls)
    for row in body.get("results") or []:
        if not isinstance(row, dict):
            continue
        m = rep.mirror[_text(row.get("target"))]
        m.tags += 1
        m.failed += row.get("status") == "failed"
        m.bytes_read += int(_num(row.get("bytes_read")) or 0)
        m.bytes_written += int(_num(row.get("bytes_written")) or 0)
        m.seconds += _num(row.get("seconds")) or 0.0


def add_serve(rep: FleetReport, record: dict[str, Any]) -> None:
    """A node mirror's record: a pull served (its tag checked) or a blob read from upstream."""
    body = record["serve"]
    node = rep.nodes[_text(record.get("runner"))]
    if body.get("event") == "pull":
        node.pulls += 1
        node.unverified += body.get("verified") is False
    elif body.get("event") == "blob":
        node.blobs += 1
        for source in body.get("sources") or []:
            if isinstance(source, dict) and source.get("kind") in ("lan", "hub"):
                node.upstream[source["kind"]] += int(_num(source.get("bytes")) or 0)
