"""Record lines from the job logs of a workflow's runs on GitHub, read through PyGithub.

The order of calls follows GitHub's documented API: the workflow's runs created in the window
(paginated), each run's jobs (paginated), then each completed job's log. GitHub answers a log
request with a 302 to short-lived storage; PyGithub hands back that address without following it,
and the log is fetched from there with no Authorization header at all (the token is for the API
host only). Only record lines are kept from a log, so memory stays small however long it is.

Finished jobs never change, so what was read from one is cached by job id (`lanmirror.cache`,
private to this user) and a second report only fetches new jobs. The cache holds the raw lines:
they are checked again (signature, run, nonce) on every report, so a planted cache file gains
nothing a key does not already refuse. A deleted or expired log is counted, not fatal. The API's
rate limit is read from every answer: below a reserve the report stops fetching and says how many
jobs it left and when the limit resets."""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from lanmirror.cache import read_json, write_json
from lanmirror.errors import BadInput, LanmirrorError
from lanmirror.records.line import MAX_LINE, PREFIX, Rejected
from lanmirror.records.scan import accept, record_lines
from lanmirror.retry import describe
from lanmirror.transport.session import NoNetrcSession

log = logging.getLogger("lanmirror.report.joblogs")
MAX_LOG_BYTES = 512 * 1024 * 1024  # a job log is read as a stream; past this it is cut off
PULL_REQUEST_EVENTS = ("pull_request", "pull_request_target")


@dataclass
class JobLines:
    run_id: int
    job_id: int
    runner: str
    lines: list[str]  # the lines that counted when the log was read (checked again on every report)
    rejected: dict[str, int] = field(default_factory=dict)  # the others, by reason


@dataclass
class RunsRead:
    jobs: list[JobLines] = field(default_factory=list)
    jobs_read: int = 0
    jobs_cached: int = 0
    logs_gone: int = 0
    jobs_left: int = 0  # not read: the rate-limit reserve or --max-jobs was reached
    rate_remaining: int | None = None
    rate_limit: int | None = None
    stopped: str = ""
    runs_skipped: int = 0  # runs of an event not read (--event; pull requests by default with a key)

    def summary(self) -> dict[str, Any]:
        return {"jobs_read": self.jobs_read, "jobs_cached": self.jobs_cached, "logs_gone": self.logs_gone,
                "jobs_left": self.jobs_left, "rate_remaining": self.rate_remaining, "rate_limit": self.rate_limit,
                "stopped": self.stopped, "runs_skipped": self.runs_skipped}


class RateLimited(Exception):
    pass


# GitHub's secondary rate limit allows 900 points a minute on the REST API (a GET is one point):
# 0.07 s between requests stays under it, where PyGithub's own default (0.25 s) would make a cold
# report over a week of a busy fleet take minutes.
MIN_INTERVAL = 0.07


def _github(token: str, api_url: str, per_page: int, interval: float) -> Any:
    from github import Auth, Github

    # retry=None: PyGithub would otherwise sleep through a rate limit on its own for up to an hour.
    # lazy: objects are not fetched before they are used (and one requester keeps the rate limit).
    return Github(auth=Auth.Token(token), base_url=api_url.rstrip("/"), retry=None, timeout=30, per_page=per_page,
                  lazy=True, seconds_between_requests=interval)


class RunsReader:
    def __init__(self, repository: str, token: str, api_url: str, *, reserve: int = 50, max_jobs: int = 2000,
                 per_page: int = 100, interval: float | None = None, key: str = "",
                 events: list[str] | None = None) -> None:
        if not token:
            raise BadInput("reading workflow runs needs a token: set GITHUB_TOKEN (actions:read)")
        if "/" not in repository:
            raise BadInput("reading workflow runs needs --repository OWNER/REPO (default $GITHUB_REPOSITORY)")
        self.gh = _github(token, api_url, per_page, MIN_INTERVAL if interval is None else interval)
        self.api_url = api_url
        self.repository = repository
        self.reserve = reserve
        self.max_jobs = max_jobs
        self.storage = NoNetrcSession()  # no token, no ~/.netrc: the storage host gets nothing
        self.out = RunsRead()
        self.key = key  # lines are checked with it before they are cached
        # Which runs' logs are read, by the event that started them. By default, with a key, no
        # pull request's: any job of one may print lines, and signing keys are not theirs.
        self.events = events
        self.exclude = set() if events or not key else set(PULL_REQUEST_EVENTS)

    def _check_rate(self) -> None:
        remaining, limit = self.gh.rate_limiting
        if remaining >= 0:
            self.out.rate_remaining, self.out.rate_limit = remaining, limit
        if 0 <= remaining <= self.reserve:
            reset = dt.datetime.fromtimestamp(self.gh.rate_limiting_resettime, dt.timezone.utc)
            raise RateLimited(f"the GitHub API rate limit is down to {remaining} of {limit} (reserve {self.reserve}); "
                              f"it resets at {reset:%Y-%m-%d %H:%M} UTC; run the report again after that "
                              "(read jobs are cached)")

    def read(self, workflows: list[str], since: dt.date, until: dt.date | None = None) -> RunsRead:
        from github import GithubException, RateLimitExceededException

        try:
            repo = self.gh.get_repo(self.repository)
            for wf in workflows:
                created = f">={since.isoformat()}" if until is None else f"{since.isoformat()}..{until.isoformat()}"
                for run in repo.get_workflow(wf).get_runs(created=created):
                    event = str(run.event or "")
                    if (self.events and event not in self.events) or event in self.exclude:
                        self.out.runs_skipped += 1
                        continue
                    self._run(run)
        except RateLimited as exc:
            self.out.stopped = str(exc)
        except RateLimitExceededException as exc:
            self.out.stopped = f"the GitHub API refused with its rate limit (HTTP {exc.status}); read jobs are cached"
        except GithubException as exc:
            if exc.status in (401, 403):
                raise LanmirrorError(f"GitHub API ({self.api_url}): HTTP {exc.status} reading the runs of "
                                     f"{self.repository}: the token needs actions:read on it") from None
            if exc.status == 404:
                raise LanmirrorError(f"GitHub API ({self.api_url}): no workflow {', '.join(workflows)} in "
                                     f"{self.repository} (give the file name, e.g. ci.yml)") from None
            raise LanmirrorError(f"GitHub API ({self.api_url}): HTTP {exc.status} reading the runs of "
                                 f"{self.repository}") from None
        try:
            self._check_rate()  # the reading after the last answer
        except RateLimited:
            pass
        except Exception as exc:
            log.debug("could not read the rate limit: %s", describe(exc))
        return self.out

    def _run(self, run: Any) -> None:
        """A finished run's list of jobs never changes (a re-run is a new attempt): once all its
        jobs are read, the list is cached too, and the next report asks nothing about the run."""
        key = f"job-logs/run-{int(run.id)}-{int(run.run_attempt or 1)}.json"
        known = read_json(key).get("jobs")
        if isinstance(known, list):
            cached = [(int(j), str(r), read_json(f"job-logs/{int(j)}.json")) for j, r in known]
            if all(isinstance(c.get("lines"), list) for _, _, c in cached):
                for job_id, runner, c in cached:
                    self._take_cached(run.id, job_id, runner, c)
                return
        self._check_rate()
        done: list[tuple[int, str]] = []
        whole = True
        for job in run.jobs():
            if self._job(run.id, job):
                done.append((int(job.id), job.runner_name or "?"))
            else:
                whole = False
        if whole and run.status == "completed":
            write_json(key, {"jobs": done})

    def _cached(self, run_id: int, job_id: int, runner: str) -> bool:
        cached = read_json(f"job-logs/{job_id}.json")
        if not isinstance(cached.get("lines"), list):
            return False
        self._take_cached(run_id, job_id, runner, cached)
        return True

    def _take_cached(self, run_id: int, job_id: int, runner: str, cached: dict[str, Any]) -> None:
        self.out.jobs_cached += 1
        self.out.logs_gone += bool(cached.get("gone"))
        lines = [x for x in cached["lines"] if isinstance(x, str)]
        counts = cached.get("rejected")
        rejected = {str(k): int(v) for k, v in counts.items() if isinstance(v, int) and not isinstance(v, bool)
                    and 0 <= v < 1 << 31} if isinstance(counts, dict) else {}
        self.out.jobs.append(JobLines(run_id, job_id, runner, lines, rejected))  # lines checked again by the scan

    def _job(self, run_id: int, job: Any) -> bool:
        """Read one job's record lines (from the cache when it was read before); False when it
        could not be read yet (still running, or the rate limit or --max-jobs stopped the report)."""
        if job.status != "completed":
            return False  # its log is not final yet: the next report reads it
        runner = job.runner_name or "?"
        if self._cached(run_id, int(job.id), runner):
            return True
        if self.out.jobs_read >= self.max_jobs:
            self.out.jobs_left += 1
            if not self.out.stopped:
                self.out.stopped = f"--max-jobs {self.max_jobs} reached"
            return False
        if self.out.stopped:
            self.out.jobs_left += 1
            return False
        self._check_rate()
        fetched = self._fetch(job)
        self.out.jobs_read += 1
        if fetched is None:
            self.out.logs_gone += 1
            write_json(f"job-logs/{int(job.id)}.json", {"gone": True, "lines": []})
            return True
        kept, rejected = sift(fetched, self.key, run_id)
        write_json(f"job-logs/{int(job.id)}.json", {"lines": kept, "rejected": rejected})
        self.out.jobs.append(JobLines(run_id, int(job.id), runner, kept, rejected))
        return True

    def _fetch(self, job: Any) -> list[str] | None:
        """The record lines of one job's log; None when GitHub no longer has the log."""
        from github import GithubException

        try:
            where = job.logs_url()  # the API answers 302; PyGithub returns its Location
        except GithubException as exc:
            if exc.status in (404, 410):
                return None
            raise
        try:
            resp = self.storage.get(where, stream=True, timeout=(10, 120))
        except Exception as exc:
            log.warning("job %s: could not read its log from storage: %s", job.id, describe(exc))
            return None
        with resp:
            if resp.status_code in (403, 404, 410):  # an expired storage address or a deleted log
                return None
            if resp.status_code != 200:
                raise LanmirrorError(f"job {job.id}: the log's storage answered HTTP {resp.status_code}")
            return record_lines("\n".join(_bounded_lines(resp)))


def _bounded_lines(resp: Any, limit: int = MAX_LOG_BYTES) -> Iterator[str]:
    """The lines of a streamed log that may hold a record, in linear time whatever their length:
    bytes are counted as they arrive (the cap holds inside one long line too), and a line that
    grows past a record's length is cut there (its head is kept, to be rejected as too long)
    instead of being joined up whole."""
    seen = 0
    part = bytearray()
    cut = False  # the current line was too long: its head is out, the rest is dropped
    for chunk in resp.iter_content(chunk_size=1 << 16):
        seen += len(chunk)
        if seen > limit:
            log.warning("a job log is longer than %d MB: the rest is not read", limit >> 20)
            return
        pieces = chunk.split(b"\n")
        for i, piece in enumerate(pieces):
            if not cut:
                part += piece
                if len(part) > MAX_LINE + 64:  # room for the runner's timestamp before the record
                    yield from _candidate(part[:MAX_LINE + 64])
                    cut, part = True, bytearray()
            if i == len(pieces) - 1:
                break  # the line goes on in the next chunk
            yield from _candidate(part)
            cut, part = False, bytearray()
    yield from _candidate(part)


def _candidate(raw: bytes | bytearray) -> Iterator[str]:
    text = raw.decode("utf-8", "replace").rstrip("\r")
    if PREFIX in text:
        yield text


def sift(lines: list[str], key: str, run_id: int) -> tuple[list[str], dict[str, int]]:
    """The lines that count on their own, and how many were rejected for which reason. Only the
    first are cached: a crafted line must not live on in the cache."""
    kept: list[str] = []
    rejected: Counter[str] = Counter()
    for line in lines:
        try:
            accept(line, key, run_id)
        except Rejected as exc:
            rejected[exc.reason] += 1
            continue
        kept.append(line)
    return kept, dict(rejected)
