"""Every resolve and mirror writes one record; `lanmirror report` counts them right. Records come
from real runs on the stack (cache hit, LAN, Hub, a slow LAN handed off, a LAN pull that failed, a
resolve that found nothing, a mirror), and the report's numbers are checked against those records
and against what the Hub's proxy counted."""

from __future__ import annotations

import json
import math
import re

import pytest

from lanmirror.records import PREFIX, from_line
from tests.helpers import TODAY, publish, run_cli, tag_for
from tests.stack import images

pytestmark = pytest.mark.integration
BASE = "v0.5.5-rocm700-mi30x"
KEY = "record-key-for-the-tests-0123456789"
MB = 1 << 20


@pytest.fixture
def env(tmp_path):
    return {"LANMIRROR_RECORD_KEY": KEY, "LANMIRROR_CACHE": str(tmp_path / "cache"),
            "LANMIRROR_RECORD_FILE": str(tmp_path / "records.jsonl")}


def resolve(stack, repo, env, *extra):
    proc = run_cli(stack, "resolve", "--repo", repo, "--base-tag", BASE, "--lan-registry", stack.lan,
                   "--hub-registry", stack.hub, "--json", *extra, env=env, timeout=150)
    logged = [line for line in proc.stderr.splitlines() if line.startswith(PREFIX)]
    assert len(logged) == 1, proc.stderr  # exactly one record line in the log, at the start of its line
    record = from_line(logged[0], KEY)
    assert record["exit"] == proc.returncode
    return proc, record


def nearest_rank(values, p):
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def test_records_of_real_runs_and_the_report_over_them(stack, repo, env, tmp_path):
    records = []
    hub_gets = 0
    # A LAN hit, then the same image again: a cache hit.
    lan_img = publish(stack, repo, BASE, 1, hub=True, lan=True, size=300_000)
    proc, rec = resolve(stack, repo, env)
    assert proc.returncode == 0, proc.stderr
    pull = rec["resolve"]["pull"]
    assert (pull["source"], pull["registry"], rec["resolve"]["digest"]) == ("lan", stack.lan, lan_img.digest)
    layer_bytes = sum(len(lan_img.blobs[d]) for d in lan_img.layer_digests)
    assert pull["bytes"] >= layer_bytes and pull["seconds"] > 0
    assert json.loads(proc.stdout)["pull"] == pull  # the JSON output and the record agree
    records.append(rec)
    hub_gets += stack.hub_proxy.counted_gets()
    stack.clear_faults()
    proc, rec = resolve(stack, repo, env)
    pull = rec["resolve"]["pull"]
    assert (pull["source"], pull["path"], pull["bytes"]) == ("local", "cache", 0) and pull["seconds"] > 0
    records.append(rec)

    # The Hub: a tag the LAN lacks.
    hub_repo = f"{repo}-hub"
    hub_img = publish(stack, hub_repo, BASE, 0, hub=True, lan=False)
    proc, rec = resolve(stack, hub_repo, env)
    assert rec["resolve"]["pull"]["source"] == "hub" and rec["resolve"]["digest"] == hub_img.digest
    assert rec["resolve"]["hub_pulls"] == 1
    records.append(rec)
    hub_gets += stack.hub_proxy.counted_gets()

    # A slow LAN: the top layer crawls, the pull goes to the Hub after the window.
    slow_repo = f"{repo}-slow"
    tag = tag_for(BASE, 0)
    img = images.build([f"{slow_repo}-{i}" for i in range(2)], 0, sizes=[MB, 4 * MB])
    for reg in (stack.hub_client(), stack.client(stack.lan)):
        images.push(reg, slow_repo, tag, img)
    stack.clear_faults()
    stack.lan_proxy.conn_rate, stack.lan_proxy.pace_path = 200_000, re.compile(img.layer_digests[-1])
    proc, rec = resolve(stack, slow_repo, env, "--pull-rate-window", "3")
    assert proc.returncode == 0, proc.stderr
    assert rec["resolve"]["handoffs"] == 1 and rec["resolve"]["pull"]["source"] == "hub"
    handoff = next(a for a in rec["resolve"]["attempts"] if a["event"] == "handoff")
    assert handoff["registry"] == stack.lan and handoff["seconds"] >= 3
    records.append(rec)
    hub_gets += stack.hub_proxy.counted_gets()
    stack.clear_faults()

    # A LAN that lost a blob: its pull fails, the Hub serves.
    lost_repo = f"{repo}-lost"
    lost = publish(stack, lost_repo, BASE, 1, hub=True, lan=True)
    stack.client(stack.lan_registry.address).transport.request(
        "DELETE", f"/v2/{lost_repo}/blobs/{lost.layer_digests[0]}").close()
    proc, rec = resolve(stack, lost_repo, env, "--pull-via", "daemon")
    assert proc.returncode == 0 and rec["resolve"]["failures"] == 1, proc.stderr
    records.append(rec)
    hub_gets += stack.hub_proxy.counted_gets()
    stack.clear_faults()

    # Nothing in the window: a failed resolve is recorded too.
    proc, rec = resolve(stack, f"{repo}-none", env)
    assert proc.returncode == 1 and rec["ok"] is False and "no nightly" in rec["resolve"]["error"]
    records.append(rec)

    # The record file holds exactly these, in order, one per line.
    file_lines = (tmp_path / "records.jsonl").read_text().splitlines()
    assert [json.loads(line)["nonce"] for line in file_lines] == [r["nonce"] for r in records]

    report = run_cli(stack, "report", "--records", env["LANMIRROR_RECORD_FILE"], "--format", "json", env=env)
    assert report.returncode == 0, report.stderr
    data = json.loads(report.stdout)
    assert (data["resolves"], data["failed_resolves"]) == (6, 1)
    assert data["records"] == {"rejected": {}, "unsigned": 0, "outside_window": 0, "outside_first": None,
                               "outside_last": None}
    rows = {(r["source"], r["registry"]): r for r in data["sources"]}
    pulls = [r["resolve"]["pull"] for r in records if r["ok"]]
    for (source, registry), row in rows.items():
        mine = [p["seconds"] for p in pulls if (p["source"], p["registry"]) == (source, registry)]
        assert row["pulls"] == len(mine)
        if mine:
            assert row["p50"] == nearest_rank(mine, 50) and row["p95"] == nearest_rank(mine, 95)
            assert row["max"] == max(mine)
    assert rows[("local", "docker")]["pulls"] == 1 and rows[("local", "docker")]["bytes"] == 0
    assert rows[("hub", stack.hub)]["pulls"] == 3
    lan_row = rows[("lan", stack.lan)]
    assert (lan_row["pulls"], lan_row["handoffs"], lan_row["failures"]) == (1, 1, 1)
    # The Hub pulls the report counts are the records' own, and what the Hub itself counted (its
    # manifest GETs), except that a direct daemon pull counts one even when the daemon already held
    # the manifest and only sent a HEAD (as after the LAN's failed pull of the same digest).
    assert data["hub"]["counted_pulls"] == sum(r["resolve"]["hub_pulls"] or 0 for r in records)
    direct = sum(1 for p in pulls if (p["source"], p["path"]) == ("hub", "daemon"))
    assert direct == 1 and hub_gets <= data["hub"]["counted_pulls"] <= hub_gets + direct
    assert hub_gets >= 2
    assert data["hub"]["lowest_ratelimit_remaining"] is not None
    assert data["days_detail"][0]["day"] == TODAY.isoformat()

    # The other formats carry the same numbers.
    md = run_cli(stack, "report", "--records", env["LANMIRROR_RECORD_FILE"], "--format", "markdown", env=env).stdout
    assert "```mermaid\nxychart-beta" in md and f"| hub | {stack.hub} | 3 |" in md
    prom = run_cli(stack, "report", "--records", env["LANMIRROR_RECORD_FILE"], "--format", "prometheus",
                   env=env).stdout
    assert f'lanmirror_report_pull_handoffs{{source="lan",registry="{stack.lan}",runner=' in prom
    assert 'lanmirror_report_hub_counted_pulls{by="jobs"} 3' in prom


def test_a_mirror_records_bytes_read_and_written_per_tag_and_target(stack, repo, env, tmp_path):
    img = publish(stack, repo, BASE, 1, hub=True, lan=False, size=200_000)
    tag = tag_for(BASE, 1)
    proc = run_cli(stack, "mirror", "--repo", repo, "--tag", tag, "--source-registry", stack.hub,
                   "--lan-registry", stack.lan, "--lan-registry", stack.lan2, "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    logged = [line for line in proc.stderr.splitlines() if line.startswith(PREFIX)]
    assert len(logged) == 1
    rec = from_line(logged[0], KEY)
    blob_bytes = sum(len(b) for b in img.blobs.values())
    rows = rec["mirror"]["results"]
    assert {r["target"] for r in rows} == {stack.lan, stack.lan2}
    for row in rows:
        assert row["bytes_written"] == blob_bytes and row["bytes_read"] == blob_bytes and row["seconds"] > 0
    # One read of the source served both targets.
    assert rec["mirror"]["source_bytes_read"] == blob_bytes
    assert json.loads(proc.stdout)["source_bytes_read"] == blob_bytes
    report = json.loads(run_cli(stack, "report", "--records", env["LANMIRROR_RECORD_FILE"], "--format", "json",
                                env=env).stdout)
    assert {t["target"]: t["bytes_written"] for t in report["mirror"]["targets"]} == {
        stack.lan: blob_bytes, stack.lan2: blob_bytes}
