"""The node mirror's records: one per pull served (its tag checked) and one per blob read from
upstream, appended to the record file that `lanmirror report` reads (docs/records.md). Signed with
$LANMIRROR_RECORD_KEY when it is set, like every other record."""

from __future__ import annotations

import os
from typing import Any

from lanmirror.ops.runrecord import envelope
from lanmirror.records import to_line
from lanmirror.records.store import append


class Recorder:
    def __init__(self, path: str | None) -> None:
        self.path = path

    def __call__(self, body: dict[str, Any], seconds: float = 0.0) -> None:
        if not self.path:
            return
        record = envelope("serve", body, ok=True, exit_code=0, seconds=seconds)
        append(self.path, to_line(record, os.environ.get("LANMIRROR_RECORD_KEY", "")))
