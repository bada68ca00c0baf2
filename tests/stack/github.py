"""A local stand-in for the GitHub REST API: just the documented shapes lanmirror reads through
PyGithub (workflow runs, their artifacts, the 302 to the artifact zip; a run's jobs, the 302 to a
job's log, 410 for an expired one; pagination by Link header; the X-RateLimit-* headers on every
answer and the 403 of an exhausted primary rate limit). PyGithub itself is not patched; it talks
HTTP to this server."""

from __future__ import annotations

import json
import re
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STAMP = "2026-11-28T10:00:00Z"


@dataclass
class FakeGitHub:
    repository: str = "acme/sglang"
    token: str = "ghs_test_token_never_printed"
    artifacts: dict[int, dict[str, bytes]] = field(default_factory=dict)  # run id → {name: zip bytes}
    workflow_runs: dict[str, list[int]] = field(default_factory=dict)  # workflow file → successful run ids
    # run id → (head branch, event, head repository); default: main, schedule, this repository
    run_origin: dict[int, tuple[str, str, str]] = field(default_factory=dict)
    default_branch: str = "main"
    requests: list[tuple[str, str, str]] = field(default_factory=list)  # (method, path, authorization)
    # Jobs and their logs: run id → job objects ({id, name, runner_name, status}); job id → log text,
    # None for a log GitHub no longer has (expired or deleted: 410 Gone).
    jobs: dict[int, list[dict]] = field(default_factory=dict)
    job_logs: dict[int, str | None] = field(default_factory=dict)
    run_created: dict[int, str] = field(default_factory=dict)  # run id → created_at (default STAMP)
    rate_limit: int = 5000
    rate_used: int = 0
    rate_reset: int = 1_900_000_000

    def start(self) -> FakeGitHub:
        gh = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                gh.requests.append(("GET", self.path, self.headers.get("Authorization", "")))
                gh._route(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.api = f"http://127.0.0.1:{self.port}"
        # Storage is "another host" (localhost vs 127.0.0.1), like GitHub's blob storage.
        self.storage = f"http://localhost:{self.port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _run(self, run_id: int) -> dict:
        base = f"{self.api}/repos/{self.repository}"
        branch, event, head_repo = self.run_origin.get(run_id, (self.default_branch, "schedule", self.repository))
        created = self.run_created.get(run_id, STAMP)
        return {"id": run_id, "node_id": f"R{run_id}", "name": "Release", "status": "completed",
                "head_branch": branch, "event": event, "run_attempt": 1,
                "jobs_url": f"{base}/actions/runs/{run_id}/jobs", "logs_url": f"{base}/actions/runs/{run_id}/logs",
                "head_repository": {"id": 7, "full_name": head_repo, "name": head_repo.split("/")[1]},
                "conclusion": "success", "url": f"{base}/actions/runs/{run_id}",
                "artifacts_url": f"{base}/actions/runs/{run_id}/artifacts", "created_at": created,
                "updated_at": created,
                "html_url": f"https://github.example/{self.repository}/actions/runs/{run_id}"}

    def _artifact(self, run_id: int, index: int, name: str, data: bytes) -> dict:
        art_id = run_id * 100 + index
        base = f"{self.api}/repos/{self.repository}"
        return {"id": art_id, "node_id": f"A{art_id}", "name": name, "size_in_bytes": len(data),
                "url": f"{base}/actions/artifacts/{art_id}",
                "archive_download_url": f"{base}/actions/artifacts/{art_id}/zip", "expired": False,
                "created_at": STAMP, "updated_at": STAMP, "expires_at": "2026-12-28T10:00:00Z",
                "workflow_run": {"id": run_id}}

    def _send(self, h: BaseHTTPRequestHandler, status: int, body: bytes | dict, ctype: str = "application/json",
              headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(data)))
        for k, v in {**(self._rate_headers() if not h.path.startswith("/storage/") else {}), **(headers or {})}.items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)

    def _job(self, run_id: int, job: dict) -> dict:
        base = f"{self.api}/repos/{self.repository}"
        return {"run_id": run_id, "status": "completed", "conclusion": "success", "name": "test",
                "runner_name": "runner-1", "started_at": STAMP, "completed_at": STAMP, "head_sha": "0" * 40,
                "url": f"{base}/actions/jobs/{job['id']}", "html_url": f"https://github.example/job/{job['id']}",
                "run_url": f"{base}/actions/runs/{run_id}", "node_id": f"J{job['id']}", "steps": [], **job}

    def _rate_headers(self) -> dict[str, str]:
        return {"X-RateLimit-Limit": str(self.rate_limit),
                "X-RateLimit-Remaining": str(max(0, self.rate_limit - self.rate_used)),
                "X-RateLimit-Reset": str(self.rate_reset), "X-RateLimit-Used": str(self.rate_used),
                "X-RateLimit-Resource": "core"}

    def _page(self, h: BaseHTTPRequestHandler, key: str, items: list[dict]) -> None:
        """One page of a list, with GitHub's Link header to the next one."""
        query = urllib.parse.parse_qs(h.path.partition("?")[2])
        per_page = int(query.get("per_page", ["30"])[0])
        page = int(query.get("page", ["1"])[0])
        chunk = items[(page - 1) * per_page: page * per_page]
        headers = {}
        if page * per_page < len(items):
            parts = urllib.parse.urlsplit(h.path)
            nxt = {k: v[0] for k, v in query.items()}
            nxt["page"] = str(page + 1)
            url = f"{self.api}{parts.path}?{urllib.parse.urlencode(nxt)}"
            headers["Link"] = f'<{url}>; rel="next"'
        self._send(h, 200, {"total_count": len(items), key: chunk}, headers=headers)

    def _route(self, h: BaseHTTPRequestHandler) -> None:
        path = h.path.split("?", 1)[0]
        if m := re.match(r"^/storage/logs/(\d+)\.txt$", path):
            text = self.job_logs.get(int(m.group(1)))
            if text is None:
                return self._send(h, 404, b"<Error><Code>BlobNotFound</Code></Error>", "application/xml")
            return self._send(h, 200, text.encode(), "text/plain")
        if not path.startswith("/storage/"):
            self.rate_used += 1
            if self.rate_used > self.rate_limit:
                return self._send(h, 403, {"message": "API rate limit exceeded for installation ID 1.",
                                           "documentation_url": "https://docs.github.com/rest/overview/"
                                                                "rate-limits-for-the-rest-api"})
        if path.startswith("/storage/"):
            m = re.match(r"^/storage/(\d+)\.zip$", path)
            for run_id, arts in self.artifacts.items():
                for i, (_name, data) in enumerate(arts.items()):
                    if m and int(m.group(1)) == run_id * 100 + i:
                        return self._send(h, 200, data, "application/zip")
            return self._send(h, 404, {"message": "Not Found"})
        if h.headers.get("Authorization") != f"token {self.token}" and \
                h.headers.get("Authorization") != f"Bearer {self.token}":
            return self._send(h, 401, {"message": "Bad credentials",
                                       "documentation_url": "https://docs.github.com/rest"})
        prefix = f"/repos/{self.repository}/actions"
        if m := re.match(rf"^{prefix}/runs/(\d+)$", path):
            run_id = int(m.group(1))
            if run_id not in self.artifacts:
                return self._send(h, 404, {"message": "Not Found"})
            return self._send(h, 200, self._run(run_id))
        if m := re.match(rf"^{prefix}/runs/(\d+)/artifacts$", path):
            run_id = int(m.group(1))
            arts = [self._artifact(run_id, i, n, d) for i, (n, d) in enumerate(self.artifacts.get(run_id, {}).items())]
            return self._send(h, 200, {"total_count": len(arts), "artifacts": arts})
        if m := re.match(rf"^{prefix}/artifacts/(\d+)/zip$", path):
            return self._send(h, 302, b"", headers={"Location": f"{self.storage}/storage/{m.group(1)}.zip"})
        if m := re.match(rf"^{prefix}/workflows/([^/]+)$", path):
            wf = m.group(1)
            if wf not in self.workflow_runs:
                return self._send(h, 404, {"message": "Not Found"})
            return self._send(h, 200, {"id": 555, "node_id": "W555", "name": wf, "path": f".github/workflows/{wf}",
                                       "state": "active", "url": f"{self.api}{prefix}/workflows/{wf}",
                                       "created_at": STAMP, "updated_at": STAMP})
        if path == f"/repos/{self.repository}":
            return self._send(h, 200, {"id": 7, "name": self.repository.split("/")[1], "full_name": self.repository,
                                       "default_branch": self.default_branch,
                                       "url": f"{self.api}/repos/{self.repository}"})
        if m := re.match(rf"^{prefix}/workflows/([^/]+)/runs$", path):
            query = {k: v[0] for k, v in urllib.parse.parse_qs(h.path.partition("?")[2]).items()}
            runs = [self._run(r) for r in self.workflow_runs.get(m.group(1), [])]
            runs = [r for r in runs if all(r[k] == query[k] for k in ("head_branch", "event") if k in query)]
            if "branch" in query:  # GitHub's filter is on the head branch
                runs = [r for r in runs if r["head_branch"] == query["branch"]]
            created = query.get("created", "")
            if created.startswith(">="):
                runs = [r for r in runs if r["created_at"][:10] >= created[2:]]
            elif ".." in created:  # GitHub's date range: both ends included
                first, last = created.split("..")
                runs = [r for r in runs if first <= r["created_at"][:10] <= last]
            return self._page(h, "workflow_runs", runs)
        if m := re.match(rf"^{prefix}/runs/(\d+)/jobs$", path):
            run_id = int(m.group(1))
            return self._page(h, "jobs", [self._job(run_id, j) for j in self.jobs.get(run_id, [])])
        if m := re.match(rf"^{prefix}/jobs/(\d+)/logs$", path):
            job_id = int(m.group(1))
            if job_id not in self.job_logs:
                return self._send(h, 404, {"message": "Not Found"})
            if self.job_logs[job_id] is None:
                return self._send(h, 410, {"message": "Gone", "documentation_url": "https://docs.github.com/rest"})
            return self._send(h, 302, b"", headers={"Location": f"{self.storage}/storage/logs/{job_id}.txt?sig=x"})
        if path == "/rate_limit":
            core = {"limit": self.rate_limit, "remaining": max(0, self.rate_limit - self.rate_used),
                    "reset": self.rate_reset, "used": self.rate_used}
            return self._send(h, 200, {"resources": {"core": core}, "rate": core})
        return self._send(h, 404, {"message": "Not Found"})
