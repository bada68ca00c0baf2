"""Markdown tables for the Actions job summary (GITHUB_STEP_SUMMARY): what a person reads first
when a nightly job looks slow or wrong."""

from __future__ import annotations

import os

from lanmirror.cmd.escape import code, markdown_cell
from lanmirror.ops.mirror import MirrorReport
from lanmirror.ops.resolve import Attempt, Resolution


def _cell(value: object) -> str:
    return markdown_cell(value)


def _table(header: list[str], rows: list[list[object]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(out) + "\n"


def attempts_table(attempts: list[Attempt]) -> str:
    return _table(["source", "registry", "result", "seconds"],
                  [[a.source, a.registry, a.result, f"{a.seconds:.2f}"] for a in attempts])


def resolve_summary(res: Resolution) -> str:
    verified = {True: "yes", False: "**no**", None: "n/a"}[res.verified]
    head = (f"### resolve-image: `{res.image}`\n\n"
            f"source **{res.source}** ({res.registry}), tag `{res.tag}`, {res.age_days} day(s) old, "
            f"digest `{res.digest}`, verified against the Hub: {verified}, "
            f"Hub ratelimit-remaining: {res.ratelimit_remaining if res.ratelimit_remaining is not None else 'n/a'}"
            + (", **degraded** (a newer candidate could not be probed)" if res.degraded else "") + "\n\n")
    warnings = "".join(f"> ⚠️ {markdown_cell(w)}\n" for w in res.warnings)
    return head + pull_line(res) + attempts_table(res.attempts) + ("\n" + warnings if warnings else "")


def pull_line(res: Resolution) -> str:
    p = res.pull
    if p is None:
        return ""
    if p.path == "cache":
        return f"**pull**: none, the image was in this runner's cache (accepted in {p.seconds:.1f} s)\n\n"
    rate = f", {p.mbps:.0f} MB/s" if p.mbps else ""
    how = {"ranges": "through lanmirror's parallel reader", "daemon": "by the daemon directly",
           "endpoint-on-host": "through lanmirror's parallel reader in a helper on the daemon's host"
           }.get(p.path, p.path)
    return (f"**pull**: {p.bytes / 1e6:.1f} MB in {p.seconds:.1f} s{rate} from {markdown_cell(p.source)} "
            f"{markdown_cell(p.registry)}, {how}\n\n")


def failure_summary(title: str, message: str, attempts: list[Attempt]) -> str:
    return f"### {title}\n\n{markdown_cell(message)}\n\n" + (attempts_table(attempts) if attempts else "")


def mirror_summary(report: MirrorReport, source: str, targets: list[str]) -> str:
    """One row per tag and target."""
    rows: list[list[object]] = [[r.tag, r.status, code(r.digest[:19]) if r.digest else "", r.blobs_copied,
                                 r.blobs_skipped, r.blobs_mounted, f"{r.bytes_read / 1e6:.1f} MB",
                                 f"{r.bytes_written / 1e6:.1f} MB", r.referrers_copied, f"{r.seconds:.1f}",
                                 f"{r.mb_per_s:.0f}", r.error, r.registry] for r in report.results]
    shared = (f"\nRead from the source in all: {report.source_bytes_read / 1e6:.1f} MB (a blob read once for several "
              "targets counts once)\n" if len(targets) > 1 else "")
    return (f"### mirror-to-lan: {source} → {', '.join(targets)}\n\n"
            + _table(["tag", "status", "digest", "copied", "skipped", "mounted", "read", "written", "referrers",
                      "seconds", "MB/s", "error", "target"], rows) + shared)


def write(markdown: str) -> None:
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(markdown + "\n")
