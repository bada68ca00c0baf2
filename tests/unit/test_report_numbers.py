"""The report's numbers agree across its tables and formats: the header's parts add up to the
resolves, every table sums to the same pulls, the Hub quota splits into jobs and mirror, and the
Prometheus output is what promtool accepts (gauges over a window, integers as integers)."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
from pathlib import Path

from lanmirror.cmd.reportfmt import as_json, prometheus, table
from lanmirror.ops.runrecord import envelope
from lanmirror.report import aggregate

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "docs" / "fleet-report-sample.jsonl"
NOW = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.timezone.utc)


def sample_records() -> list[dict]:
    return [json.loads(line) for line in SAMPLE.read_text().splitlines() if line.strip()]


def resolve(source: str | None, *, ok: bool = True, hub_pulls: int = 0, nbytes: int = 6442969088,
            day: dt.datetime = NOW) -> dict:
    pull = None if source is None else {"source": source, "registry": "10.0.0.5:5000", "seconds": 12.5,
                                        "bytes": nbytes if source != "local" else 0}
    return envelope("resolve", {"repo": "rocm/sgl-dev", "pull": pull, "attempts": [], "hub_pulls": hub_pulls},
                    ok=ok, exit_code=0 if ok else 1, seconds=13.0, environ={"RUNNER_NAME": "gpu-1"}, now=day)


def mirror(source_pulls: int, day: dt.datetime = NOW) -> dict:
    body = {"source_pulls": source_pulls, "source_bytes_read": 100, "results": [
        {"target": "10.0.0.5:5000", "status": "copied", "bytes_read": 100, "bytes_written": 100, "seconds": 1.0}]}
    return envelope("mirror", body, ok=True, exit_code=0, seconds=1.0, environ={"RUNNER_NAME": "pub"}, now=day)


def mixed() -> list[dict]:
    return ([resolve("lan") for _ in range(4)] + [resolve("hub", hub_pulls=1) for _ in range(2)]
            + [resolve("local")] + [resolve(None) for _ in range(3)] + [resolve(None, ok=False)]
            + [mirror(2), mirror(1, NOW - dt.timedelta(days=1))])


def table_rows(text: str, title: str) -> tuple[list[str], list[list[str]]]:
    block = text.split(f"\n{title}\n", 1)[1].split("\n\n", 1)[0].splitlines()
    head = re.split(r"\s{2,}", block[0].strip())
    return head, [re.split(r"\s{2,}", line.strip()) for line in block[1:]]


def test_the_header_tables_and_json_add_up_on_the_sample_and_a_mixed_week():
    for records, until in ((sample_records(), dt.date(2026, 12, 2)), (mixed(), NOW.date())):
        rep = aggregate(records, 7, today=until)
        text, data = table(rep), json.loads(as_json(rep))
        pulled, no_pull, failed = map(int, re.search(r"(\d+) pulled, (\d+) without a pull, (\d+) failed",
                                                     text).groups())
        assert pulled + no_pull + failed == data["resolves"] == int(re.search(r"(\d+) resolve\(s\)", text)[1])
        _, sources = table_rows(text, "Pulls by source and registry")
        assert sum(int(r[2]) for r in sources) == pulled == data["pulled"]
        _, runners = table_rows(text, "By runner")
        assert sum(int(r[1]) for r in runners) == pulled
        head, days = table_rows(text, "By day")
        assert sum(int(r[1]) for r in days) == pulled
        assert head.count("hub pulls") <= 1 and "Hub pulls" not in head, "one name per number"
        jobs, mirrored = head.index("quota: jobs"), head.index("quota: mirror")
        assert sum(int(r[jobs]) + int(r[mirrored]) for r in days) == data["hub"]["counted_pulls"]
        assert sum(int(r[mirrored]) for r in days) == data["hub"]["counted_pulls_mirror"]
        quota = re.search(r"Hub quota: (\d+) counted pull\(s\), (\d+) by jobs and (\d+) by mirror", text)
        assert quota and int(quota[1]) == int(quota[2]) + int(quota[3]) == data["hub"]["counted_pulls"]
        downloads = re.search(r"(\d+) of (\d+) downloads", text)
        if downloads:
            lan_hub = sum(int(r[2]) for r in sources if r[0] in ("lan", "hub"))
            assert int(downloads[2]) == lan_hub


def test_a_mixed_week_counts_the_mirror_apart_from_the_jobs():
    rep = aggregate(mixed(), 7, today=NOW.date())
    assert (rep.resolves, rep.pulled, rep.resolved_only, rep.failed_resolves) == (11, 7, 3, 1)
    assert (rep.hub_pulls, rep.hub_pulls_mirror) == (5, 3)
    _, days = table_rows(table(rep), "By day")
    assert [r[0] for r in days] == ["2026-12-01", "2026-12-02"], "a day of mirror runs only is a day too"


def test_records_outside_the_window_are_named_with_the_until_that_reads_them():
    text = table(aggregate(sample_records(), 7, today=dt.date(2026, 12, 20)))
    assert "0 resolve(s)" in text
    assert "records outside the window: 25, dated 2026-12-02 to 2026-12-02 (--until 2026-12-02" in text


def test_prometheus_is_promtool_clean_with_gauges_and_whole_numbers(tmp_path):
    rep = aggregate(mixed(), 7, today=NOW.date())
    prom = prometheus(rep)
    assert "lanmirror_report_pull_bytes{" in prom and " 25771876352\n" in prom  # 4 × 6442969088, not 2.57719e+10
    assert "e+" not in prom
    assert "lanmirror_report_window_seconds 604800" in prom
    kinds = set(re.findall(r"^# TYPE \S+ (\w+)$", prom, re.M))
    assert kinds == {"gauge"}, "windowed numbers go down as records leave the window: never counters"
    assert not re.search(r"^\w+_total[{ ]", prom, re.M)
    promtool = shutil.which("promtool")
    assert promtool, "promtool (Debian's prometheus package) is installed by ./dev"
    out = subprocess.run([promtool, "check", "metrics"], input=prom, text=True, capture_output=True)
    assert out.returncode == 0, out.stdout + out.stderr
    sample = prometheus(aggregate(sample_records(), 7, today=dt.date(2026, 12, 2)))
    out = subprocess.run([promtool, "check", "metrics"], input=sample, text=True, capture_output=True)
    assert out.returncode == 0, out.stdout + out.stderr


def serve(event: str, **body) -> dict:
    return envelope("serve", {"event": event, **body}, ok=True, exit_code=0, seconds=0.1,
                    environ={"RUNNER_NAME": "node-7"}, now=NOW)


def test_node_mirror_records_make_their_own_table_and_series():
    recs = [serve("pull", repo="rocm/sgl-dev", tag="t", digest="sha256:" + "a" * 64, verified=True),
            serve("pull", repo="rocm/sgl-dev", tag="t", digest="sha256:" + "a" * 64, verified=False),
            serve("blob", digest="sha256:" + "b" * 64, sources=[{"kind": "lan", "registry": "10.0.0.5:5000",
                                                                 "bytes": 6442969088}]),
            serve("blob", digest="sha256:" + "c" * 64, sources=[{"kind": "hub", "registry": "docker.io", "bytes": 10}]),
            serve("blob", sources=[{"kind": "elsewhere", "bytes": 99}, "not a source"])]
    rep = aggregate(recs, 7, today=NOW.date())
    data = json.loads(as_json(rep))
    assert data["node_mirrors"] == [{"node": "node-7", "pulls": 2, "unverified": 1, "blobs_read": 3,
                                     "lan_bytes": 6442969088, "hub_bytes": 10}]
    assert data["resolves"] == 0 and not rep.rejected
    _, rows = table_rows(table(rep), "Node mirrors")
    assert rows == [["node-7", "2", "1", "3", "6.44 GB", "0.0 MB"]]
    prom = prometheus(rep)
    assert 'lanmirror_report_node_upstream_bytes{node="node-7",kind="lan"} 6442969088' in prom
