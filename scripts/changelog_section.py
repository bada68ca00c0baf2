#!/usr/bin/env python3
"""Print the CHANGELOG.md section of one version, for the GitHub release's notes.

    python3 scripts/changelog_section.py 1.2.3 [CHANGELOG.md]

The section is the one headed `## 1.2.3`, `## v1.2.3` or `## Unreleased (1.2.3)`, up to the next
`## ` heading. Exit 1, naming the headings it found, when there is none: a release without notes is
a mistake to catch before the tag goes public."""

from __future__ import annotations

import re
import sys
from pathlib import Path


def section(text: str, version: str) -> str | None:
    version = version.removeprefix("v")
    head = re.compile(rf"^## (?:v?{re.escape(version)}|Unreleased \(v?{re.escape(version)}\))(?:\s.*)?$", re.M)
    match = head.search(text)
    if match is None:
        return None
    rest = text[match.end():]
    end = re.search(r"^## ", rest, re.M)
    return rest[:end.start() if end else len(rest)].strip() + "\n"


def main(argv: list[str]) -> int:
    if not 1 <= len(argv) <= 2:
        print(__doc__, file=sys.stderr)
        return 2
    text = Path(argv[1] if len(argv) > 1 else "CHANGELOG.md").read_text(encoding="utf-8")
    notes = section(text, argv[0])
    if notes is None:
        found = ", ".join(re.findall(r"^## (.*)$", text, re.M)) or "none"
        print(f"CHANGELOG has no section for {argv[0]} (sections: {found})", file=sys.stderr)
        return 1
    sys.stdout.write(notes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
