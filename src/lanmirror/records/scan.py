"""Which record lines count, from a job's log or a record file.

A line counts when it parses, when its signature verifies (with a key), when it was written in the
run whose log holds it (job logs), and the first time its nonce is seen. Everything else is
counted by reason, so a report says how much it left out and why."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from lanmirror.records.line import PREFIX, Rejected, from_line

# GitHub prefixes every line of a job's log with the time the runner received it.
_STAMP = re.compile(r"^\ufeff?\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z ")


@dataclass
class Scan:
    records: list[dict[str, Any]] = field(default_factory=list)
    rejected: Counter[str] = field(default_factory=Counter)
    unsigned: int = 0  # counted, but nothing vouches for them (no key was given)
    seen: set[str] = field(default_factory=set)

    def take(self, line: str, key: str, run_id: int | None = None) -> None:
        try:
            record = accept(line, key, run_id)
            if record["nonce"] in self.seen:
                raise Rejected("duplicate", "this nonce was counted already")
        except Rejected as exc:
            self.rejected[exc.reason] += 1
            return
        self.seen.add(record["nonce"])
        if not key:
            self.unsigned += 1
        self.records.append(record)


def accept(line: object, key: str, run_id: int | None = None) -> dict[str, Any]:
    """The record on `line` if it counts on its own (shape, signature with a key, written in run
    `run_id` when given); raises Rejected with the reason, for whatever the line holds."""
    if not isinstance(line, str):
        raise Rejected("malformed", "not text")
    try:
        record = from_line(line, key)
    except Rejected:
        raise
    except Exception as exc:  # a reader's bug must not let one crafted line stop the whole report
        raise Rejected("malformed", f"unreadable ({type(exc).__name__})") from None
    if run_id is not None and (record.get("github") or {}).get("run_id") != run_id:
        raise Rejected("foreign", "written in another run")
    return record


def record_lines(log_text: str) -> list[str]:
    """The lines of a job log that claim to be records: the runner's timestamp stripped, the prefix
    at the very start of what the step printed (lanmirror writes it there; a quoted or indented
    copy inside other output is not a record)."""
    out = []
    for raw in log_text.splitlines():
        text = _STAMP.sub("", raw, count=1)
        if text.startswith(PREFIX):
            out.append(text)
    return out


def scan(lines: Iterable[str], key: str, run_id: int | None = None, into: Scan | None = None) -> Scan:
    found = into if into is not None else Scan()
    for line in lines:
        found.take(line, key, run_id)
    return found
