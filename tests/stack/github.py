"""A local stand-in for the GitHub REST API: just the documented shapes lanmirror reads through
PyGithub (workflow runs, their artifacts, the 302 to the artifact zip). PyGithub itself is not
patched; it talks HTTP to this server."""

from __future__ import annotations

import json
import re
import threading
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
        return {"id": run_id, "node_id": f"R{run_id}", "name": "Release", "status": "completed",
                "head_branch": branch, "event": event,
                "head_repository": {"id": 7, "full_name": head_repo, "name": head_repo.split("/")[1]},
                "conclusion": "success", "url": f"{base}/actions/runs/{run_id}",
                "artifacts_url": f"{base}/actions/runs/{run_id}/artifacts", "created_at": STAMP, "updated_at": STAMP,
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
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)

    def _route(self, h: BaseHTTPRequestHandler) -> None:
        path = h.path.split("?", 1)[0]
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
            query = dict(p.split("=", 1) for p in h.path.partition("?")[2].split("&") if "=" in p)
            runs = [self._run(r) for r in self.workflow_runs.get(m.group(1), [])]
            runs = [r for r in runs if all(r[k] == query[k] for k in ("head_branch", "event") if k in query)]
            if "branch" in query:  # GitHub's filter is on the head branch
                runs = [r for r in runs if r["head_branch"] == query["branch"]]
            return self._send(h, 200, {"total_count": len(runs), "workflow_runs": runs})
        return self._send(h, 404, {"message": "Not Found"})
