"""The record line, the record file and the report's arithmetic and formats, on their own."""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import re

import pytest

from lanmirror.cmd.reportfmt import markdown, prometheus, table
from lanmirror.ops.runrecord import clip, envelope
from lanmirror.records import PREFIX, Rejected, from_line, to_line
from lanmirror.records.scan import record_lines, scan
from lanmirror.records.store import append, lines
from lanmirror.report import aggregate
from lanmirror.report.aggregate import percentile
from lanmirror.report.verdict import verdicts

NOW = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.timezone.utc)


def resolve_record(source="lan", registry="10.0.0.5:5000", seconds=10.0, nbytes=1000, *, runner="gpu-1",
                   day=NOW, ok=True, attempts=(), hub_pulls=0, remaining=None):
    pull = {"source": source, "registry": registry, "path": "ranges", "seconds": seconds, "bytes": nbytes,
            "mbps": None} if ok else None
    body = {"repo": "rocm/sgl-dev", "pull": pull, "attempts": list(attempts), "hub_pulls": hub_pulls,
            "ratelimit_remaining": remaining}
    return envelope("resolve", body, ok=ok, exit_code=0 if ok else 1, seconds=seconds,
                    environ={"RUNNER_NAME": runner}, now=day)


def test_a_record_is_one_inert_line_whatever_it_quotes():
    rec = resolve_record()
    rec["resolve"]["error"] = "line one\n::error::forged\r\n\u2028é ##[set-output name=image;]evil"
    line = to_line(rec, "k")
    assert line.startswith(PREFIX) and "\n" not in line and "\r" not in line and line.isascii()
    assert "##[" not in line
    assert from_line(line, "k")["resolve"]["error"] == rec["resolve"]["error"]


def test_signature_round_trip_and_refusals():
    line = to_line(resolve_record(), "k1")
    assert from_line(line, "k1")["mac"].startswith("hmac-sha256:")
    for key, reason in (("k2", "forged"),):
        with pytest.raises(Rejected) as info:
            from_line(line, key)
        assert info.value.reason == reason
    tampered = line.replace('"seconds":10.0', '"seconds":1.0', 1)
    with pytest.raises(Rejected, match="forged"):
        from_line(tampered, "k1")
    with pytest.raises(Rejected, match="unsigned"):
        from_line(to_line(resolve_record()), "k1")
    for bad in (PREFIX + "{", PREFIX + "[]", PREFIX + json.dumps({"schema": 2}),
                to_line({**resolve_record(), "nonce": "x"}), to_line({**resolve_record(), "kind": "other"})):
        with pytest.raises(Rejected, match="malformed"):
            from_line(bad)


def test_secrets_are_cut_out_of_messages():
    env = {"DOCKERHUB_TOKEN": "dckr_pat_secret", "LANMIRROR_RECORD_KEY": "the-key", "HOME": "/root"}
    assert clip("auth dckr_pat_secret failed with the-key at /root", env) == "auth *** failed with *** at /root"


def test_only_lines_that_start_with_the_prefix_are_candidates():
    line = to_line(resolve_record())
    log = "\n".join([f"2026-12-02T12:00:00.1234567Z {line}", f"2026-12-02T12:00:01Z   {line}",
                     f"2026-12-02T12:00:02Z > {line}", f"{line}", "2026-12-02T12:00:03Z other"])
    assert record_lines(log) == [line, line]
    found = scan(record_lines(log), "")
    assert len(found.records) == 1 and found.rejected == {"duplicate": 1} and found.unsigned == 1


def _append_many(path: str, worker: int) -> None:
    for i in range(150):
        rec = resolve_record(runner=f"w{worker}-{i}")
        rec["resolve"]["error"] = "x" * (9000 + worker)  # longer than a pipe's atomic write
        append(path, to_line(rec))


def test_concurrent_appends_never_interleave(tmp_path):
    path = str(tmp_path / "records.jsonl")
    procs = [multiprocessing.get_context("fork").Process(target=_append_many, args=(path, w)) for w in range(6)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    found = scan(lines(path), "")
    assert len(found.records) == 900 and not found.rejected
    assert {r["runner"] for r in found.records} == {f"w{w}-{i}" for w in range(6) for i in range(150)}


def test_percentiles_are_nearest_rank():
    assert percentile([], 50) is None
    assert percentile([3.0], 95) == 3.0
    values = [float(v) for v in range(1, 21)]
    assert (percentile(values, 50), percentile(values, 95), percentile(values, 100)) == (10.0, 19.0, 20.0)


def test_counts_by_source_runner_day_and_the_window():
    old = NOW - dt.timedelta(days=9)
    recs = [resolve_record(seconds=s) for s in (10.0, 20.0, 30.0)]
    recs += [resolve_record("hub", "docker.io", 100.0, 5000, hub_pulls=1, remaining=42)]
    recs += [resolve_record("local", "docker", 0.5, 0, runner="gpu-2")]
    recs += [resolve_record(seconds=999.0, day=old)]  # outside a 7-day window
    recs += [resolve_record(ok=False, attempts=[{"event": "pull-failed", "source": "lan", "registry": "10.0.0.5:5000"},
                                                {"event": "handoff", "source": "lan", "registry": "10.0.0.5:5000"}])]
    rep = aggregate(recs, 7, today=NOW.date())
    data = rep.to_json()
    rows = {(r["source"], r["registry"]): r for r in data["sources"]}
    lan = rows[("lan", "10.0.0.5:5000")]
    assert (lan["pulls"], lan["failures"], lan["handoffs"], lan["p50"], lan["max"]) == (3, 1, 1, 20.0, 30.0)
    assert lan["mbps"] == round(3000 / 60 / 1e6, 1)
    assert rows[("local", "docker")]["mbps"] is None and rows[("local", "docker")]["bytes"] == 0
    assert (data["resolves"], data["pulled"], data["resolved_only"], data["failed_resolves"]) == (6, 5, 0, 1)
    assert data["hub"] == {"counted_pulls": 1, "counted_pulls_jobs": 1, "counted_pulls_mirror": 0,
                           "lowest_ratelimit_remaining": 42}
    assert (data["records"]["outside_window"], data["records"]["outside_first"]) == (1, "2026-11-23")
    assert {r["runner"] for r in data["runners"]} == {"gpu-1", "gpu-2"}


def test_verdicts_need_enough_pulls_and_say_what_to_do():
    few = aggregate([resolve_record(seconds=5.0), resolve_record("hub", "docker.io", 1.0)], 7, today=NOW.date())
    assert verdicts(few) == ["not enough pulls to compare the LAN with the Hub over 7 day(s) (LAN 1, Hub 1; 5 of "
                             "each are needed)"]
    slow_lan = [resolve_record(seconds=300.0) for _ in range(6)] + [
        resolve_record("hub", "docker.io", 200.0) for _ in range(6)]
    said = verdicts(aggregate(slow_lan, 7, today=NOW.date()))
    assert said[0].startswith("the LAN's p50 (300.0 s) is slower than the Hub's (200.0 s) over 7 day(s): add a replica")
    assert any("came from the Hub" in v for v in said)
    fast_lan = [resolve_record(seconds=60.0) for _ in range(10)] + [resolve_record("hub", "docker.io", 240.0)
                                                                  for _ in range(5)]
    assert verdicts(aggregate(fast_lan, 7, today=NOW.date()))[0].startswith("the LAN is worth it: p50 60.0 s")


def test_formats_escape_names_from_records():
    hostile = 'gpu"1\\n<img src=x onerror=alert(1)>|[x](https://evil.example)'
    recs = [resolve_record(runner=hostile, registry=hostile + '"\n{x}') for _ in range(2)]
    rep = aggregate(recs, 7, today=NOW.date())
    md = markdown(rep)
    assert "<img" not in md and "](https" not in md and "https://" not in md
    row = next(line for line in md.splitlines() if line.startswith("| lan |"))
    assert len(re.findall(r"(?<!\\)\|", row)) == 10  # 9 columns: the registry's own | is escaped
    assert "```mermaid\nxychart-beta" in md
    prom = prometheus(rep)
    sample = re.compile(r'^[a-z_0-9]+(\{([a-z_]+="([^"\\\n]|\\["\\n])*",?)*\})? -?[0-9.e+]+$')
    for line in prom.splitlines():
        assert line.startswith("# ") or sample.match(line), line
    assert "lanmirror_report_pull_p95_seconds{" in prom
    assert "2026-11-26 to 2026-12-02" in table(rep)


def test_names_from_forged_records_cannot_become_workflow_commands():
    """An unsigned record may say anything; the table the report prints into a job log stays inert."""
    rec = resolve_record(registry="##[set-output name=x;]evil")
    rec["runner"] = "::add-mask::secret"
    text = table(aggregate([rec], 7, today=NOW.date()))
    assert "##[" not in text
    assert not any(line.lstrip().startswith("::") for line in text.splitlines())
