#!/usr/bin/env python3
"""Regenerate the docs' generated parts: docs/actions.md's input/output tables (from action.yml
and mirror/action.yml), docs/cli.md (every command's --help), and the fleet report over the real
records in docs/fleet-report-sample.jsonl (the README's table, docs/records.md's Markdown).
`./dev docs` runs it; tests/unit/test_docs.py fails when they are stale."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def table(rows: list[str], header: str) -> str:
    return "\n".join([header, "|" + "---|" * header.count(" | ") + "---|", *rows])


def render(text: str) -> str:
    """`text` (docs/actions.md) with its tables made from the current action.yml files."""
    for path, name in (("action.yml", "resolve-image"), ("mirror/action.yml", "mirror-to-lan")):
        spec = yaml.safe_load((ROOT / path).read_text())
        inputs = [f"| `{k}`{' (required)' if v.get('required') else ''} | "
                  f"{'`' + str(v['default']) + '`' if v.get('default') not in ('', None) else ''} | "
                  f"{' '.join(str(v['description']).split())} |" for k, v in spec["inputs"].items()]
        outputs = [f"| `{k}` | {' '.join(str(v['description']).split())} |" for k, v in spec["outputs"].items()]
        for kind, rows, header in (("inputs", inputs, "| input | default | description |"),
                                   ("outputs", outputs, "| output | description |")):
            text = re.sub(rf"(^## {re.escape(name)} {kind}\n\n)(.*?)(\n\n|\Z)",
                          lambda m, r=rows, h=header: m.group(1) + table(r, h) + m.group(3), text, count=1,
                          flags=re.S | re.M)
    return text


def render_cli(text: str) -> str:
    """`text` (docs/cli.md) with each command's block replaced by its --help today."""
    env = {**os.environ, "COLUMNS": "110"}
    for command in ("resolve", "mirror", "prune", "doctor", "report", "serve"):
        help_text = subprocess.run([sys.executable, "-m", "lanmirror", command, "--help"], env=env, check=True,
                                   capture_output=True, text=True).stdout
        text = re.sub(rf"```text\nusage: lanmirror {command} .*?```", lambda m, h=help_text: f"```text\n{h}```",
                      text, count=1, flags=re.S)
    return text


SAMPLE = ROOT / "docs" / "fleet-report-sample.jsonl"


def sample_report(fmt: str) -> str:
    """The report over the sample records, its window ending on the day of the last one (so the
    output does not change as days pass)."""
    import json

    last = max(json.loads(line)["time"][:10] for line in SAMPLE.read_text().splitlines() if line.strip())
    env = {k: v for k, v in os.environ.items() if k != "LANMIRROR_RECORD_KEY"}
    return subprocess.run([sys.executable, "-m", "lanmirror", "report", "--records", str(SAMPLE.relative_to(ROOT)),
                           "--until", last, "--format", fmt], env=env, check=True, capture_output=True, text=True,
                          cwd=ROOT).stdout


def render_report(text: str, marker: str, body: str) -> str:
    """Replace what stands between `<!-- report:MARKER -->` and `<!-- /report:MARKER -->`."""
    return re.sub(rf"(<!-- report:{marker} -->\n).*?(<!-- /report:{marker} -->)",
                  lambda m: m.group(1) + body + m.group(2), text, count=1, flags=re.S)


def excerpt(table: str) -> str:
    """The README's picture: the title, the table by source and registry, the Hub line and the
    verdicts (docs/records.md has the whole report)."""
    blocks = table.split("\n\n")
    facts = [line for line in table.splitlines() if line.startswith(("Hub quota:", "verdict:"))]
    return "\n\n".join(blocks[:2]) + "\n\n" + "\n".join(facts) + "\n"


def render_samples(readme: str, records: str) -> tuple[str, str]:
    if not SAMPLE.exists():
        return readme, records
    table = "```text\n" + excerpt(sample_report("table")) + "```\n"
    return render_report(readme, "table", table), render_report(records, "markdown", sample_report("markdown"))


def main() -> int:
    readme, cli, records = ROOT / "README.md", ROOT / "docs" / "cli.md", ROOT / "docs" / "records.md"
    actions = ROOT / "docs" / "actions.md"
    actions.write_text(render(actions.read_text()))
    new_readme, new_records = render_samples(readme.read_text(), records.read_text())
    readme.write_text(new_readme)
    records.write_text(new_records)
    cli.write_text(render_cli(cli.read_text()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
