"""The fleet report as text: a terminal table, JSON, Markdown for a job summary (with Mermaid charts
GitHub renders) and node_exporter's textfile format. Runner and registry names come from records,
so from outside: Markdown cells escape them, Prometheus label values are escaped as the exposition
format says, and the charts carry only dates, numbers and the three source names."""

from __future__ import annotations

import json
from typing import Any

from lanmirror.cmd.escape import markdown_cell
from lanmirror.report.aggregate import SOURCES, FleetReport, Stats


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _mb(nbytes: int) -> str:
    return f"{nbytes / 1e6:.1f} MB" if nbytes < 1e9 else f"{nbytes / 1e9:.2f} GB"


def _rows(rep: FleetReport) -> dict[str, tuple[list[str], list[list[str]]]]:
    """Every table of the report as header + rows of plain text (cells still unescaped)."""
    def stat_cells(s: Stats) -> list[str]:
        d = s.summary()
        return [str(d["pulls"]), str(d["failures"]), str(d["handoffs"]), _s(d["p50"]), _s(d["p95"]), _s(d["max"]),
                _s(d["mbps"])]

    stat_head = ["pulls", "failures", "hand-offs", "p50 s", "p95 s", "max s", "MB/s"]
    sources = [[k, r, *stat_cells(s)] for (k, r), s in sorted(rep.by_source.items(),
                                                              key=lambda i: (SOURCES.index(i[0][0]), i[0][1]))]
    runners = [[n, *stat_cells(s)] for n, s in sorted(rep.by_runner.items())]
    present = [k for k in SOURCES if any(k in per for per in rep.by_day.values())]
    days = []
    for day, per in sorted(rep.by_day.items()):
        cells = [day, str(sum(s.pulls for s in per.values()))]
        for k in present:
            d = per[k].summary() if k in per else {"pulls": 0, "p50": None, "p95": None}
            cells += [str(d["pulls"]), _s(d["p50"]), _s(d["p95"])]
        days.append([*cells, str(rep.hub_pulls_by_day.get(day, 0))])
    day_head = ["day", "pulls", *[f"{k} {c}" for k in present for c in ("pulls", "p50 s", "p95 s")], "Hub pulls"]
    mirror = [[t, str(m.tags), str(m.failed), _mb(m.bytes_read), _mb(m.bytes_written), _s(m.summary()["mbps"])]
              for t, m in sorted(rep.mirror.items())]
    return {
        "Pulls by source and registry": (["source", "registry", *stat_head], sources),
        "By runner": (["runner", *stat_head], runners),
        "By day": (day_head, days),
        "Mirror, by target": (["target", "tags", "failed", "read", "written", "MB/s"], mirror),
    }


def _facts(rep: FleetReport) -> list[str]:
    lines = [f"Hub: {rep.hub_pulls} counted pull(s); lowest ratelimit-remaining seen: "
             f"{rep.lowest_ratelimit if rep.lowest_ratelimit is not None else 'n/a'}"]
    if rep.rejected:
        lines.append("records not counted: " + ", ".join(f"{n} {why}" for why, n in sorted(rep.rejected.items())))
    gh = rep.github
    if gh:
        line = (f"GitHub: {gh.get('jobs_read', 0)} job log(s) read, {gh.get('jobs_cached', 0)} from the cache, "
                f"{gh.get('logs_gone', 0)} gone (deleted or expired)")
        if gh.get("rate_remaining") is not None:
            line += f"; API rate limit {gh['rate_remaining']} of {gh.get('rate_limit')} left"
        lines.append(line)
        if gh.get("stopped"):
            lines.append(f"GitHub: stopped early: {gh['stopped']}")
    return lines


def title(rep: FleetReport) -> str:
    return (f"lanmirror fleet report: {rep.since} to {rep.until} ({rep.days} day(s)), {rep.resolves} resolve(s), "
            f"{rep.failed_resolves} failed")


def table(rep: FleetReport) -> str:
    out = [title(rep), ""]
    for name, (head, rows) in _rows(rep).items():
        if not rows:
            continue
        widths = [max(len(str(c)) for c in col) for col in zip(head, *rows, strict=False)]
        out.append(name)
        for row in [head, *rows]:
            out.append("  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths,
                                                                                                     strict=True))))
        out.append("")
    out += _facts(rep)
    out += [f"verdict: {v}" for v in rep.verdicts]
    return "\n".join(out) + "\n"


def as_json(rep: FleetReport) -> str:
    return json.dumps(rep.to_json(), indent=2) + "\n"


def chart(rep: FleetReport, source: str) -> str:
    """A Mermaid xychart of one source's daily p50 (line) and p95 (bars); days without a pull from it
    are left out rather than drawn as zero."""
    points = [(day[5:], per[source].summary()) for day, per in sorted(rep.by_day.items()) if source in per]
    if not points:
        return ""
    days = ", ".join(f'"{d}"' for d, _ in points)
    p50 = ", ".join(f"{s['p50']:.1f}" for _, s in points)
    p95 = ", ".join(f"{s['p95']:.1f}" for _, s in points)
    top = max(s["p95"] for _, s in points) * 1.1 or 1
    return (f"```mermaid\nxychart-beta\n    title \"{source}: seconds per pull, daily p95 (bars) and p50 (line)\"\n"
            f"    x-axis [{days}]\n    y-axis \"seconds\" 0 --> {top:.0f}\n    bar [{p95}]\n    line [{p50}]\n```\n")


def markdown(rep: FleetReport) -> str:
    out = [f"### {markdown_cell(title(rep))}", ""]
    out += [f"> **{markdown_cell(v)}**" for v in rep.verdicts]
    if rep.verdicts:
        out.append("")
    for name, (head, rows) in _rows(rep).items():
        if not rows:
            continue
        out += [f"#### {name}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        out += ["| " + " | ".join(markdown_cell(c) for c in row) + " |" for row in rows]
        out.append("")
        if name == "By day":
            out += [c for c in (chart(rep, k) for k in SOURCES) if c]
    out += [f"- {markdown_cell(f)}" for f in _facts(rep)]
    return "\n".join(out) + "\n"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def prometheus(rep: FleetReport) -> str:
    """node_exporter's textfile collector format. The numbers cover the report's window (the
    `lanmirror_report_window_days` gauge says how long), recomputed on each run."""
    out: list[str] = []

    def sample(name: str, labels: dict[str, str], value: float) -> str:
        text = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
        return f"{name}{{{text}}} {value:g}" if text else f"{name} {value:g}"

    def metric(name: str, kind: str, help_text: str, samples: list[tuple[dict[str, str], float]]) -> None:
        out.append(f"# HELP {name} {help_text}")
        out.append(f"# TYPE {name} {kind}")
        out.extend(sample(name, labels, value) for labels, value in samples)

    groups = sorted(rep.by_all.items())

    def lab(key: tuple[str, str, str]) -> dict[str, str]:
        return {"source": key[0], "registry": key[1], "runner": key[2]}

    metric("lanmirror_report_window_days", "gauge", "Days of records this report covers.", [({}, rep.days)])
    metric("lanmirror_pulls_total", "counter", "Images made local, by where they came from.",
           [(lab(k), s.pulls) for k, s in groups])
    metric("lanmirror_pull_failures_total", "counter", "Pulls that failed at this source.",
           [(lab(k), s.failures) for k, s in groups])
    metric("lanmirror_pull_handoffs_total", "counter", "Pulls handed to the next source for slowness.",
           [(lab(k), s.handoffs) for k, s in groups])
    metric("lanmirror_pull_bytes_total", "counter", "Bytes pulled.", [(lab(k), s.bytes) for k, s in groups])
    summary: list[tuple[dict[str, str], float]] = []
    for k, s in groups:
        if not s.seconds:
            continue
        d = s.summary()
        summary += [({**lab(k), "quantile": "0.5"}, d["p50"]), ({**lab(k), "quantile": "0.95"}, d["p95"])]
    metric("lanmirror_pull_seconds", "summary", "Seconds per pull.", summary)
    out += [sample("lanmirror_pull_seconds_sum", lab(k), sum(s.seconds)) for k, s in groups if s.seconds]
    out += [sample("lanmirror_pull_seconds_count", lab(k), len(s.seconds)) for k, s in groups if s.seconds]
    metric("lanmirror_hub_counted_pulls_total", "counter", "Pulls Docker Hub counted against the quota.",
           [({}, rep.hub_pulls)])
    if rep.lowest_ratelimit is not None:
        metric("lanmirror_hub_ratelimit_remaining_min", "gauge", "Lowest ratelimit-remaining a run saw.",
               [({}, rep.lowest_ratelimit)])
    metric("lanmirror_mirror_bytes_written_total", "counter", "Bytes mirror wrote, by target.",
           [({"target": t}, m.bytes_written) for t, m in sorted(rep.mirror.items())])
    metric("lanmirror_mirror_bytes_read_total", "counter", "Bytes mirror read from the source for a target.",
           [({"target": t}, m.bytes_read) for t, m in sorted(rep.mirror.items())])
    metric("lanmirror_records_rejected_total", "counter", "Record lines not counted, by reason.",
           [({"reason": r}, n) for r, n in sorted(rep.rejected.items())])
    return "\n".join(out) + "\n"


FORMATS: dict[str, Any] = {"table": table, "json": as_json, "markdown": markdown, "prometheus": prometheus}
