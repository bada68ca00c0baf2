#!/usr/bin/env python3
"""Regenerate the README's generated parts: the action input/output tables (from action.yml and
mirror/action.yml) and the CLI reference (from --help). `./dev docs` runs it; tests/unit/test_docs.py
fails when they are stale."""

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
    """`text` (the README) with its generated parts made from the current sources."""
    for path, name in (("action.yml", "resolve-image"), ("mirror/action.yml", "mirror-to-lan")):
        spec = yaml.safe_load((ROOT / path).read_text())
        inputs = [f"| `{k}`{' (required)' if v.get('required') else ''} | "
                  f"{'`' + str(v['default']) + '`' if v.get('default') not in ('', None) else ''} | "
                  f"{' '.join(str(v['description']).split())} |" for k, v in spec["inputs"].items()]
        outputs = [f"| `{k}` | {' '.join(str(v['description']).split())} |" for k, v in spec["outputs"].items()]
        for kind, rows, header in (("inputs", inputs, "| input | default | description |"),
                                   ("outputs", outputs, "| output | description |")):
            text = re.sub(rf"(^#### {re.escape(name)} {kind}\n\n)(.*?)(\n\n|\Z)",
                          lambda m, r=rows, h=header: m.group(1) + table(r, h) + m.group(3), text, count=1,
                          flags=re.S | re.M)
    start, end = text.index("## CLI reference\n"), text.index("## Setting up the LAN side")
    section = text[start:end]
    env = {**os.environ, "COLUMNS": "110"}
    for command in ("resolve", "mirror", "prune", "doctor"):
        help_text = subprocess.run([sys.executable, "-m", "lanmirror", command, "--help"], env=env, check=True,
                                   capture_output=True, text=True).stdout
        section = re.sub(rf"```text\nusage: lanmirror {command} .*?```", lambda m, h=help_text: f"```text\n{h}```",
                         section, count=1, flags=re.S)
    return text[:start] + section + text[end:]


def main() -> int:
    readme = ROOT / "README.md"
    readme.write_text(render(readme.read_text()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
