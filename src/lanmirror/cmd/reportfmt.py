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
    for day in rep.days_seen():
        per = rep.by_day.get(day, {})
        cells = [day, str(sum(s.pulls for s in per.values()))]
        for k in present:
            d = per[k].summary() if k in per else {"pulls": 0, "p50": None, "p95": None}
            cells += [str(d["pulls"]), _s(d["p50"]), _s(d["p95"])]
        mirror_quota = rep.hub_pulls_mirror_by_day.get(day, 0)
        days.append([*cells, str(rep.hub_pulls_by_day.get(day, 0) - mirror_quota), str(mirror_quota)])
    # "pulls" are images made local (per source); the quota columns are what the Hub counted, by
    # jobs and by mirror: a job's Hub pull is one, a mirror's is one per tag copied.
    day_head = ["day", "pulls", *[f"{k} {c}" for k in present for c in ("pulls", "p50 s", "p95 s")],
                "quota: jobs", "quota: mirror"]
    mirror = [[t, str(m.tags), str(m.failed), _mb(m.bytes_read), _mb(m.bytes_written), _s(m.summary()["mbps"])]
              for t, m in sorted(rep.mirror.items())]
    nodes = [[n, str(d["pulls"]), str(d["unverified"]), str(d["blobs_read"]), _mb(d["lan_bytes"]), _mb(d["hub_bytes"])]
             for n, d in ((n, st.summary()) for n, st in sorted(rep.nodes.items()))]
    return {
        "Pulls by source and registry": (["source", "registry", *stat_head], sources),
        "By runner": (["runner", *stat_head], runners),
        "By day": (day_head, days),
        "Mirror, by target": (["target", "tags", "failed", "read", "written", "MB/s"], mirror),
        "Node mirrors": (["node", "pulls served", "unverified", "blobs read", "from the LAN", "from the Hub"], nodes),
    }


def _facts(rep: FleetReport) -> list[str]:
    lines = [f"Hub quota: {rep.hub_pulls} counted pull(s), {rep.hub_pulls - rep.hub_pulls_mirror} by jobs and "
             f"{rep.hub_pulls_mirror} by mirror; lowest ratelimit-remaining seen: "
             f"{rep.lowest_ratelimit if rep.lowest_ratelimit is not None else 'n/a'}"]
    if rep.outside:
        lines.append(f"records outside the window: {rep.outside}, dated {rep.outside_first} to {rep.outside_last} "
                     f"(--until {rep.outside_last} reports on them)")
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
    """The three parts add up to the resolves; the pulls are the tables' (cache hits included)."""
    return (f"lanmirror fleet report: {rep.since} to {rep.until} ({rep.days} day(s)), {rep.resolves} resolve(s): "
            f"{rep.pulled} pulled, {rep.resolved_only} without a pull, {rep.failed_resolves} failed")


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


def _number(value: float) -> str:
    """Counts and bytes as integers (6442969088, not 6.44297e+09), seconds as they are."""
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def prometheus(rep: FleetReport) -> str:
    """node_exporter's textfile collector format. Every number covers the report's window (the
    `lanmirror_report_window_seconds` gauge says how long) and is recomputed on each run, so each is
    a gauge: old records leave the window and the numbers go down, which a counter must never do."""
    out: list[str] = []

    def sample(name: str, labels: dict[str, str], value: float) -> str:
        text = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
        return f"{name}{{{text}}} {_number(value)}" if text else f"{name} {_number(value)}"

    def gauge(name: str, help_text: str, samples: list[tuple[dict[str, str], float]]) -> None:
        out.append(f"# HELP {name} {help_text}")
        out.append(f"# TYPE {name} gauge")
        out.extend(sample(name, labels, value) for labels, value in samples)

    groups = sorted(rep.by_all.items())

    def lab(key: tuple[str, str, str]) -> dict[str, str]:
        return {"source": key[0], "registry": key[1], "runner": key[2]}

    def timed(field: str) -> list[tuple[dict[str, str], float]]:
        return [(lab(k), s.summary()[field]) for k, s in groups if s.seconds]

    gauge("lanmirror_report_window_seconds", "Length of the window this report covers.", [({}, rep.days * 86400)])
    gauge("lanmirror_report_resolves", "Resolves in the window, by outcome (pulled, without a pull, failed).",
          [({"outcome": "pulled"}, rep.pulled), ({"outcome": "no_pull"}, rep.resolved_only),
           ({"outcome": "failed"}, rep.failed_resolves)])
    gauge("lanmirror_report_pulls", "Images made local in the window, by where they came from.",
          [(lab(k), s.pulls) for k, s in groups])
    gauge("lanmirror_report_pull_failures", "Pulls that failed at this source in the window.",
          [(lab(k), s.failures) for k, s in groups])
    gauge("lanmirror_report_pull_handoffs", "Pulls handed to the next source for slowness in the window.",
          [(lab(k), s.handoffs) for k, s in groups])
    gauge("lanmirror_report_pull_bytes", "Bytes pulled in the window.", [(lab(k), s.bytes) for k, s in groups])
    gauge("lanmirror_report_pull_p50_seconds", "Median seconds per pull in the window.", timed("p50"))
    gauge("lanmirror_report_pull_p95_seconds", "95th percentile of seconds per pull in the window.", timed("p95"))
    gauge("lanmirror_report_pull_max_seconds", "Longest pull in the window, in seconds.", timed("max"))
    gauge("lanmirror_report_hub_counted_pulls", "Pulls Docker Hub counted against the quota in the window, by "
          "who spent them (jobs or mirror).",
          [({"by": "jobs"}, rep.hub_pulls - rep.hub_pulls_mirror), ({"by": "mirror"}, rep.hub_pulls_mirror)])
    if rep.lowest_ratelimit is not None:
        gauge("lanmirror_report_hub_ratelimit_remaining_min", "Lowest ratelimit-remaining a run saw in the window.",
              [({}, rep.lowest_ratelimit)])
    gauge("lanmirror_report_mirror_written_bytes", "Bytes mirror wrote in the window, by target.",
          [({"target": t}, m.bytes_written) for t, m in sorted(rep.mirror.items())])
    gauge("lanmirror_report_mirror_read_bytes", "Bytes mirror read from the source for a target in the window.",
          [({"target": t}, m.bytes_read) for t, m in sorted(rep.mirror.items())])
    gauge("lanmirror_report_node_pulls", "Pulls a node mirror served in the window, by node.",
          [({"node": n}, st.pulls) for n, st in sorted(rep.nodes.items())])
    gauge("lanmirror_report_node_upstream_bytes", "Bytes node mirrors read from upstream in the window.",
          [({"node": n, "kind": k}, st.upstream.get(k, 0)) for n, st in sorted(rep.nodes.items())
           for k in ("lan", "hub")])
    gauge("lanmirror_report_records_rejected", "Record lines of the window not counted, by reason.",
          [({"reason": r}, n) for r, n in sorted(rep.rejected.items())])
    return "\n".join(out) + "\n"


FORMATS: dict[str, Any] = {"table": table, "json": as_json, "markdown": markdown, "prometheus": prometheus}
