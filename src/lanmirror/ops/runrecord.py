"""The run record of a resolve or mirror, from what it returned. Only numbers, names lanmirror
validated and short, clipped messages go in; every known secret value is cut out of the messages,
and the line format (`records.line`) escapes whatever is left."""

from __future__ import annotations

import datetime as dt
import os
import secrets
from collections.abc import Mapping
from typing import Any

from lanmirror import __version__
from lanmirror.authn.secretenv import secret_values
from lanmirror.ops.mirror import MirrorReport
from lanmirror.ops.resolve import Attempt, Resolution
from lanmirror.records.line import SCHEMA, safe_name

MAX_TEXT = 300
PULL_EVENTS = ("pull", "handoff", "pull-failed")
def clip(text: object, environ: Mapping[str, str] | None = None) -> str:
    """A message from outside, shortened, with every secret value lanmirror knows of cut out."""
    out = str(text)
    for value in secret_values(dict(environ if environ is not None else os.environ)):
        out = out.replace(value, "***")
    return out[:MAX_TEXT]


def github(environ: Mapping[str, str]) -> dict[str, Any] | None:
    """Where in GitHub Actions this ran: the report ties a record to the run whose log holds it."""
    if environ.get("GITHUB_ACTIONS") != "true":
        return None
    run_id = environ.get("GITHUB_RUN_ID", "")
    attempt = environ.get("GITHUB_RUN_ATTEMPT", "1")
    return {"repository": safe_name(environ.get("GITHUB_REPOSITORY", "")),
            "run_id": int(run_id) if run_id.isdigit() else None,
            "run_attempt": int(attempt) if attempt.isdigit() else None,
            "workflow": safe_name(environ.get("GITHUB_WORKFLOW", "")), "job": safe_name(environ.get("GITHUB_JOB", ""))}


def envelope(kind: str, body: dict[str, Any], *, ok: bool, exit_code: int, seconds: float,
             environ: Mapping[str, str] | None = None, now: dt.datetime | None = None) -> dict[str, Any]:
    env = os.environ if environ is None else environ
    when = (now or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc)
    runner = env.get("RUNNER_NAME") or os.uname().nodename
    return {"schema": SCHEMA, "kind": kind, "nonce": secrets.token_hex(16),
            "time": when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "seconds": round(seconds, 3), "ok": ok,
            "exit": exit_code, "runner": safe_name(runner), "version": __version__, "github": github(env), kind: body}


def attempt(a: Attempt) -> dict[str, Any]:
    return {"event": a.event, "source": a.source, "registry": a.registry, "seconds": a.seconds, "bytes": a.bytes,
            "path": a.path, "rate_mbps": a.rate_mbps, "result": clip(a.result)}


def resolve_body(repo: str, res: Resolution | None, attempts: list[Attempt], error: str = "",
                 gpu_arch: str = "", hub_pulls: int | None = None) -> dict[str, Any]:
    """What the fleet report needs from one resolve: the pull that made the image local, every pull
    that was handed off or failed on the way, and the Hub's quota as this run saw it."""
    tried = [attempt(a) for a in attempts if a.event in PULL_EVENTS]
    body: dict[str, Any] = {"repo": repo, "gpu_arch": gpu_arch, "attempts": tried,
                            "handoffs": sum(1 for a in attempts if a.event == "handoff"),
                            "failures": sum(1 for a in attempts if a.event == "pull-failed"),
                            # Measured: the manifest GETs sent to the Hub and the daemon's direct
                            # pulls from it (HEAD probes are free), each one counted pull.
                            "hub_pulls": hub_pulls}
    if res is None:
        return {**body, "error": clip(error), "pull": None, "ratelimit_remaining": None}
    pull = None
    if res.pull is not None:
        p = res.pull
        pull = {"source": p.source, "registry": p.registry, "path": p.path, "seconds": p.seconds, "bytes": p.bytes,
                "mbps": p.mbps}
    return {**body, "image": res.image, "tag": res.tag, "digest": res.digest, "source": res.source,
            "registry": res.registry, "verified": res.verified, "fallback": res.fallback, "degraded": res.degraded,
            "pull": pull, "ratelimit_remaining": res.ratelimit_remaining}


def mirror_body(repo: str, source: str, report: MirrorReport | None, error: str = "",
                source_pulls: int | None = None) -> dict[str, Any]:
    rows = [] if report is None else [
        {"tag": r.tag, "target": r.registry, "status": r.status, "digest": r.digest, "bytes_read": r.bytes_read,
         "bytes_written": r.bytes_written, "seconds": r.seconds, "blobs_copied": r.blobs_copied,
         "blobs_skipped": r.blobs_skipped, "blobs_mounted": r.blobs_mounted, "referrers_copied": r.referrers_copied,
         "error": clip(r.error)}
        for r in report.results]
    body: dict[str, Any] = {"repo": repo, "source_registry": source, "results": rows, "source_pulls": source_pulls,
                            "source_bytes_read": 0 if report is None else report.source_bytes_read}
    if error:
        body["error"] = clip(error)
    return body
