"""`lanmirror report --workflow`: PyGithub against a local server that answers with GitHub's
documented shapes (pagination, the 302 to log storage, 410 for an expired log, the rate limit),
and the rules for which record lines in a job log count."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from lanmirror.cmd.cli import main
from lanmirror.ops.runrecord import envelope
from lanmirror.records import to_line
from lanmirror.records.scan import scan
from lanmirror.sources import runs
from tests.stack.github import FakeGitHub

KEY = "the-fleet-record-key-0123456789"
NOW = dt.datetime.now(dt.timezone.utc)
STAMP = NOW.strftime("%Y-%m-%dT%H:%M:%SZ")


def record(run_id: int, *, source: str = "lan", seconds: float = 10.0, nbytes: int = 1000,
           key: str = KEY) -> str:
    """A record line as a run would print it (the real builder and signer)."""
    env = {"GITHUB_ACTIONS": "true", "GITHUB_RUN_ID": str(run_id), "GITHUB_RUN_ATTEMPT": "1",
           "GITHUB_REPOSITORY": "acme/sglang", "RUNNER_NAME": "from-the-env"}
    pull = {"source": source, "registry": "10.0.0.5:5000" if source == "lan" else "docker.io", "path": "ranges",
            "seconds": seconds, "bytes": nbytes, "mbps": None}
    body = {"repo": "rocm/sgl-dev", "pull": pull, "attempts": [], "handoffs": 0, "failures": 0,
            "hub_pulls": 1 if source == "hub" else 0, "ratelimit_remaining": 90}
    return to_line(envelope("resolve", body, ok=True, exit_code=0, seconds=seconds, environ=env, now=NOW), key)


def job_log(*lines: str) -> str:
    """A job log as GitHub serves it: every line prefixed with the runner's timestamp."""
    body = ["##[group]Run ./resolve-image", "with:", "  repo: rocm/sgl-dev", "##[endgroup]", *lines, "done"]
    return "\ufeff" + "\n".join(f"{NOW:%Y-%m-%dT%H:%M:%S}.1234567Z {line}" for line in body) + "\n"


@pytest.fixture
def gh(tmp_path, monkeypatch):
    fake = FakeGitHub(repository="acme/sglang").start()
    monkeypatch.setenv("GITHUB_TOKEN", fake.token)
    monkeypatch.setenv("LANMIRROR_RECORD_KEY", KEY)
    monkeypatch.setenv("LANMIRROR_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(runs, "MIN_INTERVAL", 0.0)  # lanmirror's own pacing, not PyGithub's code
    yield fake
    fake.stop()


def add_runs(fake: FakeGitHub, runs: dict[int, list[tuple[int, str | None]]], workflow: str = "ci.yml") -> None:
    """runs: run id → [(job id, log text or None for an expired log)]."""
    fake.workflow_runs.setdefault(workflow, []).extend(runs)
    for run_id, jobs in runs.items():
        fake.run_created[run_id] = STAMP
        fake.jobs[run_id] = [{"id": job_id, "runner_name": f"gpu-{job_id % 3}"} for job_id, _ in jobs]
        fake.job_logs.update(dict(jobs))


def report(fake: FakeGitHub, capsys, *extra: str) -> tuple[int, dict]:
    code = main(["report", "--workflow", "ci.yml", "--repository", "acme/sglang", "--api-url", fake.api,
                 "--format", "json", *extra])
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else {}


def storage_requests(fake: FakeGitHub) -> list[tuple[str, str, str]]:
    return [r for r in fake.requests if r[1].startswith("/storage/")]


def test_runs_and_jobs_across_pages_logs_from_storage_without_the_token(gh):
    # 25 runs of one job and one run of 25 jobs, 10 to a page: both lists span three pages.
    runs_ = {1000 + i: [(50_000 + i, job_log(record(1000 + i, seconds=float(i + 1))))] for i in range(25)}
    runs_[2000] = [(60_000 + j, job_log(record(2000, source="hub", seconds=100.0 + j))) for j in range(25)]
    add_runs(gh, runs_)
    read = runs.RunsReader("acme/sglang", gh.token, gh.api, per_page=10, interval=0).read(
        ["ci.yml"], NOW.date() - dt.timedelta(days=6))
    assert (read.jobs_read, read.logs_gone, read.stopped) == (50, 0, "")
    found = scan([line for job in read.jobs for line in job.lines], KEY)
    # The 25 jobs of run 2000 printed a record each: one run id, distinct nonces, all counted.
    assert len(found.records) == 50 and not found.rejected
    assert {j.runner for j in read.jobs} == {"gpu-0", "gpu-1", "gpu-2"}  # GitHub's word, not the record's
    # Storage (another host) got no token; the API got it on every request.
    assert storage_requests(gh) and all(auth == "" for _, _, auth in storage_requests(gh))
    api = [r for r in gh.requests if not r[1].startswith("/storage/")]
    assert all(auth.endswith(gh.token) for _, _, auth in api)
    third = [p for _, p, _ in api if "page=3" in p]
    assert any("/runs?" in p for p in third) and any("/jobs?" in p for p in third)


def test_the_report_over_job_logs(gh, capsys):
    add_runs(gh, {i: [(i * 10, job_log(record(i, seconds=float(i), source="lan" if i % 4 else "hub")))]
                  for i in range(1, 21)})
    code, data = report(gh, capsys)
    assert code == 0 and data["resolves"] == 20
    rows = {r["source"]: r for r in data["sources"]}
    lan = [float(i) for i in range(1, 21) if i % 4]
    assert rows["lan"]["pulls"] == 15 and rows["lan"]["p50"] == sorted(lan)[7] and rows["lan"]["max"] == 19.0
    assert rows["hub"]["pulls"] == 5 and data["hub"]["counted_pulls"] == 5
    assert {r["runner"] for r in data["runners"]} == {"gpu-0", "gpu-1", "gpu-2"}


def test_a_second_report_fetches_only_new_jobs(gh, capsys):
    add_runs(gh, {1: [(11, job_log(record(1)))], 2: [(21, job_log(record(2)))]})
    assert report(gh, capsys)[1]["github"]["jobs_read"] == 2
    before, asked = len(storage_requests(gh)), len(gh.requests)
    add_runs(gh, {3: [(31, job_log(record(3)))]})
    code, data = report(gh, capsys)
    assert code == 0 and data["github"]["jobs_read"] == 1 and data["github"]["jobs_cached"] == 2
    assert len(storage_requests(gh)) == before + 1
    # Finished runs read before are not asked about again: the runs list, the new run's jobs, its log.
    assert [p.split("?")[0].rsplit("/", 2)[-2:] for _, p, _ in gh.requests[asked:] if "/storage/" not in p] == [
        ["ci.yml", "runs"], ["3", "jobs"], ["31", "logs"]]
    assert data["resolves"] == 3


def test_an_expired_log_is_counted_not_fatal(gh, capsys):
    add_runs(gh, {1: [(11, job_log(record(1))), (12, None)]})
    code, data = report(gh, capsys)
    assert code == 0 and data["github"]["logs_gone"] == 1 and data["resolves"] == 1


def test_the_rate_limit_reserve_stops_fetching_and_says_so(gh, capsys):
    add_runs(gh, {i: [(i * 10, job_log(record(i)))] for i in range(1, 31)})
    gh.rate_limit = 40  # the listing takes 1 request, each run 2 (its jobs list and the log's 302)
    code, data = report(gh, capsys, "--rate-reserve", "10")
    assert code == 0
    gh_part = data["github"]
    assert "rate limit" in gh_part["stopped"] and "resets at" in gh_part["stopped"]
    assert 0 < gh_part["jobs_read"] < 30 and gh_part["rate_remaining"] <= 10
    assert data["resolves"] == gh_part["jobs_read"]
    assert gh.rate_used <= gh.rate_limit  # it never ran into the 403


def test_a_rate_limit_refusal_is_reported_not_fatal(gh, capsys):
    add_runs(gh, {i: [(i * 10, job_log(record(i)))] for i in range(1, 11)})
    gh.rate_limit = 9
    code, data = report(gh, capsys, "--rate-reserve", "0")
    assert code == 0 and "rate limit" in data["github"]["stopped"]
    assert data["resolves"] == data["github"]["jobs_read"] < 10


def test_forged_copied_and_foreign_record_lines_are_not_counted(gh, capsys):
    genuine = record(7, seconds=5.0)
    forged = record(7, seconds=999.0, key="a-key-the-forger-guessed")
    unsigned = record(7, seconds=999.0, key="")
    foreign = record(8, seconds=999.0)  # genuine, but printed by a run other than the one whose log holds it
    log = job_log(genuine, "some test output", genuine, forged, unsigned, foreign,
                  f"  {record(7, seconds=999.0)}",  # indented inside other output: not at the line start
                  f"echo {record(7, seconds=999.0)}")
    add_runs(gh, {7: [(70, log)]})
    code, data = report(gh, capsys)
    assert code == 0 and data["resolves"] == 1
    assert data["sources"][0]["max"] == 5.0
    assert data["records"]["rejected"] == {"duplicate": 1, "forged": 1, "unsigned": 1, "foreign": 1}


def test_without_a_key_records_count_and_the_report_says_they_are_unsigned(gh, capsys, monkeypatch):
    monkeypatch.delenv("LANMIRROR_RECORD_KEY")
    add_runs(gh, {7: [(70, job_log(record(7, key=""), record(7, key="")))]})
    code, data = report(gh, capsys)
    assert code == 0 and data["resolves"] == 2 and data["records"]["unsigned"] == 2
    assert any("not signed" in v for v in data["verdicts"])


def test_a_token_github_refuses_is_a_clear_failure(gh, capsys, monkeypatch, caplog):
    add_runs(gh, {1: [(11, job_log(record(1)))]})
    monkeypatch.setenv("GITHUB_TOKEN", "wrong")
    code, _ = report(gh, capsys)
    assert code == 1
    assert "HTTP 401" in caplog.text and "actions:read" in caplog.text
