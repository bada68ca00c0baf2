"""Scenario 12 report: `lanmirror report` over a fleet's week, 90 jobs a day for 7 days.

The GitHub side is the tests' GitHub-shaped server (runs and jobs paginated, the 302 to log
storage); each job log is --report-log-kb of ordinary output with one signed record line in it,
made by the real record code. Rows, side by side:
  12a the first report (nothing cached), against a script that reads every log with no cache and
      no pacing (what an operator's one-off script does);
  12b the next day's report: six days cached, the seventh new;
  12c the same 630 records from a JSON Lines file (aggregation and formatting alone)."""

from __future__ import annotations

import datetime as dt
import random
import tempfile
from pathlib import Path

from harness import LANMIRROR, ROOT, Bench, timed_cpu
from tests.stack.github import FakeGitHub

from lanmirror.ops.runrecord import envelope
from lanmirror.records import to_line

KEY = "bench-record-key-0123456789"
JOBS_PER_DAY, DAYS, JOBS_PER_RUN = 90, 7, 5

BASELINE = r'''
import re, sys, requests
api, repo, token = sys.argv[1:4]
s = requests.Session()
h = {"Authorization": f"token {token}"}
runs, url = [], f"{api}/repos/{repo}/actions/workflows/ci.yml/runs?per_page=100"
while url:
    r = s.get(url, headers=h); runs += r.json()["workflow_runs"]; url = r.links.get("next", {}).get("url")
found = 0
for run in runs:
    for job in s.get(run["jobs_url"] + "?per_page=100", headers=h).json()["jobs"]:
        text = s.get(f"{api}/repos/{repo}/actions/jobs/{job['id']}/logs", headers=h).text
        found += sum(1 for line in text.splitlines() if re.match(r"^\S+Z lanmirror-record/1 ", line))
print(found, "records")
'''


def fleet(now: dt.datetime, log_kb: int) -> tuple[dict[int, str], dict[int, list[tuple[int, str]]], list[str]]:
    """Runs (id → created day), their jobs (id, log) and the record lines, for 7 days of 90 jobs."""
    rnd = random.Random(7)
    noise = [f"test_{i:05d} PASSED [{i % 100:3d}%] " + "x" * 60 for i in range(log_kb * 1024 // 90 + 1)]
    created: dict[int, str] = {}
    jobs: dict[int, list[tuple[int, str]]] = {}
    lines: list[str] = []
    run_id = 10_000
    for day in range(DAYS):
        when = now - dt.timedelta(days=day)
        for _ in range(JOBS_PER_DAY // JOBS_PER_RUN):
            run_id += 1
            created[run_id] = f"{when:%Y-%m-%dT%H:%M:%SZ}"
            jobs[run_id] = []
            for j in range(JOBS_PER_RUN):
                source = rnd.choices(["local", "lan", "hub"], [3, 6, 1])[0]
                seconds = {"local": 0.8, "lan": rnd.gauss(95, 20), "hub": rnd.gauss(240, 40)}[source]
                pull = {"source": source, "registry": {"local": "docker", "lan": f"10.0.0.{5 + j % 2}:5000",
                                                       "hub": "docker.io"}[source],
                        "path": "cache" if source == "local" else "ranges", "seconds": round(max(seconds, 0.1), 3),
                        "bytes": 0 if source == "local" else 23 * 10**9, "mbps": None}
                env = {"GITHUB_ACTIONS": "true", "GITHUB_RUN_ID": str(run_id), "RUNNER_NAME": f"gpu-{j}"}
                body = {"repo": "rocm/sgl-dev", "pull": pull, "attempts": [], "handoffs": 0, "failures": 0,
                        "hub_pulls": int(source == "hub"), "ratelimit_remaining": 150}
                line = to_line(envelope("resolve", body, ok=True, exit_code=0, seconds=pull["seconds"], environ=env,
                                        now=when), KEY)
                lines.append(line)
                stamp = f"{when:%Y-%m-%dT%H:%M:%S}.1234567Z "
                half = len(noise) // 2
                text = "".join(stamp + n + "\n" for n in noise[:half]) + stamp + line + "\n" + "".join(
                    stamp + n + "\n" for n in noise[half:])
                jobs[run_id].append((run_id * 10 + j, text))
    return created, jobs, lines


def serve(gh: FakeGitHub, created: dict[int, str], jobs: dict[int, list[tuple[int, str]]], runs: list[int]) -> None:
    gh.workflow_runs["ci.yml"] = sorted(runs, reverse=True)
    for run_id in runs:
        gh.run_created[run_id] = created[run_id]
        gh.jobs[run_id] = [{"id": job_id, "runner_name": f"gpu-{job_id % 10}"} for job_id, _ in jobs[run_id]]
        gh.job_logs.update(dict(jobs[run_id]))


def run(b: Bench) -> None:
    now = dt.datetime.now(dt.timezone.utc)
    log_kb = b.args.report_log_kb
    b.say(f"report: building {JOBS_PER_DAY * DAYS} job logs of {log_kb} KB ...")
    created, jobs, lines = fleet(now, log_kb)
    runs = sorted(created)
    today = [r for r in runs if created[r][:10] == f"{now:%Y-%m-%d}"]
    gh = FakeGitHub(repository="acme/sglang").start()
    gh.rate_limit = 10**6
    try:
        with tempfile.TemporaryDirectory() as cache:
            env = {**b.env, "GITHUB_TOKEN": gh.token, "LANMIRROR_RECORD_KEY": KEY, "LANMIRROR_CACHE": cache}
            cmd = [LANMIRROR, "report", "--workflow", "ci.yml", "--repository", "acme/sglang", "--api-url", gh.api,
                   "--days", "7"]
            title = f"12a report: {len(lines)} job logs of {log_kb} KB, first"
            serve(gh, created, jobs, runs)
            measure(b, b.row(title, "lanmirror"), cmd, env, gh, len(lines))
            measure(b, b.row(title, "every log, no cache/pacing"),
                    [str(Path(LANMIRROR).with_name("python")), "-c", BASELINE, gh.api, "acme/sglang", gh.token],
                    env, gh, len(lines))
        with tempfile.TemporaryDirectory() as cache:
            env = {**b.env, "GITHUB_TOKEN": gh.token, "LANMIRROR_RECORD_KEY": KEY, "LANMIRROR_CACHE": cache}
            gh.workflow_runs.clear()
            serve(gh, created, jobs, [r for r in runs if r not in today])
            timed_cpu(cmd, env)  # the six days before, read on earlier days
            serve(gh, created, jobs, runs)
            measure(b, b.row(f"12b report: next day, {JOBS_PER_DAY} new jobs + {len(lines) - JOBS_PER_DAY} cached",
                             "lanmirror"), cmd, env, gh, len(lines))
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "records.jsonl"
            path.write_text("".join(line.split(" ", 1)[1] + "\n" for line in lines))
            env = {**b.env, "LANMIRROR_RECORD_KEY": KEY}
            for fmt in ("table", "markdown", "prometheus"):
                measure(b, b.row(f"12c report: {len(lines)} records from a file", f"lanmirror --format {fmt}"),
                        [LANMIRROR, "report", "--records", str(path), "--format", fmt], env, gh, len(lines))
    finally:
        gh.stop()
    (ROOT / "bench" / "results").mkdir(exist_ok=True)


def measure(b: Bench, row, cmd: list[str], env: dict[str, str], gh: FakeGitHub, expected: int) -> None:
    asked = len(gh.requests)
    result = timed_cpu(cmd, env)
    row.seconds.append(round(result.seconds, 3))
    row.requests = sum(1 for _, p, _ in gh.requests[asked:] if not p.startswith("/storage/"))
    row.rss_mb = round(result.rss_mb, 1)
    counted = f"{expected} resolve(s)" in result.out or f"{expected} records" in result.out or \
        "lanmirror_report_pulls{" in result.out or f"{expected} resolve" in result.out
    row.note = f"CPU {result.cpu:.2f} s; API requests {row.requests}" + ("" if counted else "; COUNT MISMATCH") + (
        f"; exit {result.rc}" if result.rc else "")
