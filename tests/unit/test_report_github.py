"""`lanmirror report --workflow`: PyGithub against a local server that answers with GitHub's
documented shapes (pagination, the 302 to log storage, 410 for an expired log, the rate limit),
and the rules for which record lines in a job log count."""

from __future__ import annotations

import datetime as dt
import json
import secrets

import pytest

from lanmirror.cmd.cli import main
from lanmirror.ops.runrecord import envelope
from lanmirror.records import to_line
from lanmirror.records.scan import scan
from lanmirror.report import joblogs
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
    monkeypatch.setattr(joblogs, "MIN_INTERVAL", 0.0)  # lanmirror's own pacing, not PyGithub's code
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
    read = joblogs.RunsReader("acme/sglang", gh.token, gh.api, per_page=10, interval=0).read(
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


def crafted_lines(run_id: int) -> dict[str, str]:
    """One line each of what the report once crashed on, each a record line at the start of a line:
    anyone's job can print them. With a key, every one is rejected; without, some parse as records."""
    good = json.loads(record(run_id, key="")[len("lanmirror-record/1 "):])

    def line(**change: object) -> str:
        return "lanmirror-record/1 " + json.dumps({**good, "nonce": secrets.token_hex(16), **change},
                                                  ensure_ascii=False)

    return {
        "non-ASCII mac": line(mac="hmac-sha256:\u00e9\u00e9"),
        "deep nesting": "lanmirror-record/1 " + "[" * 30_000 + "]" * 30_000,
        "impossible date": line(time="2026-02-31T00:00:00Z"),
        "1e999": "lanmirror-record/1 " + json.dumps(good).replace('"seconds": 10.0', '"seconds": 1e999', 1),
        "non-object github": line(github=["run_id", run_id]),
        "huge count": line(resolve={**good["resolve"], "hub_pulls": 10 ** 400}),
    }


@pytest.mark.parametrize("with_key", [True, False])
def test_crafted_lines_in_a_job_log_are_rejected_with_a_reason_never_a_crash(gh, capsys, monkeypatch, with_key):
    if not with_key:
        monkeypatch.delenv("LANMIRROR_RECORD_KEY")
    crafted = crafted_lines(7)
    add_runs(gh, {7: [(70, job_log(record(7, seconds=5.0, key=KEY if with_key else ""), *crafted.values()))]})
    # Without a key, a strange signature or a count too big to be true is no reason to refuse a record.
    counted = 1 if with_key else 3
    for _ in range(2):  # the second report reads the job from the cache
        code, data = report(gh, capsys)
        assert code == 0, data
        assert data["resolves"] == counted and data["sources"][0]["max"] == (5.0 if with_key else 10.0)
        assert sum(data["records"]["rejected"].values()) == len(crafted) + 1 - counted, data["records"]
    import os
    from pathlib import Path

    cached = json.loads((Path(os.environ["LANMIRROR_CACHE"]) / "job-logs" / "70.json").read_text())
    assert len(cached["lines"]) == counted and sum(cached["rejected"].values()) == len(crafted) + 1 - counted


def test_crafted_lines_in_a_record_file_are_rejected_never_a_crash(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("LANMIRROR_RECORD_KEY", raising=False)
    crafted = crafted_lines(7)
    path = tmp_path / "records.jsonl"
    lines = [record(7, seconds=5.0, key=""), *crafted.values(), "lanmirror-record/1 {" + "x" * (1 << 20) + "}"]
    path.write_text("\n".join(line.removeprefix("lanmirror-record/1 ") for line in lines) + "\n")
    code = main(["report", "--records", str(path), "--format", "json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["resolves"] == 3  # unsigned: the odd signature and the huge count still parse
    assert sum(data["records"]["rejected"].values()) == len(crafted) - 2 + 1, data["records"]  # and the long one
    for fmt in ("table", "markdown", "prometheus"):
        assert main(["report", "--records", str(path), "--format", fmt]) == 0
        capsys.readouterr()


def test_a_cached_line_is_checked_again_on_read(gh, capsys):
    add_runs(gh, {7: [(70, job_log(record(7, seconds=5.0)))]})
    assert report(gh, capsys)[1]["resolves"] == 1
    import os
    from pathlib import Path

    cache = Path(os.environ["LANMIRROR_CACHE"]) / "job-logs" / "70.json"
    planted = json.loads(cache.read_text())
    planted["lines"] += [record(7, seconds=999.0, key="not-the-key"), *crafted_lines(7).values()]
    cache.write_text(json.dumps(planted))
    code, data = report(gh, capsys)
    assert code == 0 and data["resolves"] == 1 and data["sources"][0]["max"] == 5.0
    assert data["records"]["rejected"].get("forged", 0) >= 1
    assert sum(data["records"]["rejected"].values()) == 1 + len(crafted_lines(7))


def test_pull_request_runs_are_left_out_by_default_with_a_key_and_event_picks(gh, capsys, monkeypatch):
    add_runs(gh, {1: [(11, job_log(record(1)))], 2: [(21, job_log(record(2)))], 3: [(31, job_log(record(3)))]})
    gh.run_origin[2] = ("feature", "pull_request", "someone/fork")
    gh.run_origin[3] = ("main", "push", "acme/sglang")
    code, data = report(gh, capsys)
    assert code == 0 and data["resolves"] == 2 and data["github"]["runs_skipped"] == 1
    code, data = report(gh, capsys, "--event", "push")
    assert code == 0 and data["resolves"] == 1 and data["github"]["runs_skipped"] == 2
    monkeypatch.delenv("LANMIRROR_RECORD_KEY")  # unsigned: every event is read, as before
    code, data = report(gh, capsys)
    assert code == 0 and data["resolves"] == 3 and data["github"]["runs_skipped"] == 0


def test_one_long_line_is_cut_in_linear_time_and_the_byte_cap_holds_inside_it():
    class Body:
        def __init__(self, data: bytes) -> None:
            self.data = data
            self.read = 0

        def iter_content(self, chunk_size: int):
            for i in range(0, len(self.data), chunk_size):
                self.read += chunk_size
                yield self.data[i:i + chunk_size]

    from lanmirror.records.line import MAX_LINE

    long_record = b"lanmirror-record/1 {" + b"x" * (8 << 20) + b"}"
    body = Body(b"a\n" + long_record + b"\nlanmirror-record/1 {}\nend")
    out = list(joblogs._bounded_lines(body))
    assert [len(x) for x in out] == [MAX_LINE + 64, len("lanmirror-record/1 {}")]  # the head only, then the next
    capped = Body(b"x" * (8 << 20))
    assert list(joblogs._bounded_lines(capped, limit=1 << 20)) == []
    assert capped.read <= (1 << 20) + (1 << 16)  # stopped inside the one line, at the cap
