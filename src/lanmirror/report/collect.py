"""Records from where they are kept (record files, a workflow's job logs) into one report: each
line checked by the record rules (`records.scan`), then aggregated and judged."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from lanmirror.errors import BadInput
from lanmirror.records import safe_name
from lanmirror.records.scan import Scan, scan
from lanmirror.records.store import lines
from lanmirror.report.aggregate import FleetReport, aggregate
from lanmirror.report.joblogs import RunsRead
from lanmirror.report.verdict import verdicts


def from_files(paths: Iterable[str], key: str, found: Scan) -> None:
    for path in paths:
        try:
            scan(lines(path), key, into=found)
        except OSError as exc:
            raise BadInput(f"--records {path}: {exc.strerror or exc}") from None


def from_runs(read: RunsRead, key: str, found: Scan) -> None:
    """A job log's records must come from that job's run; the runner is GitHub's word for where the
    job ran, not the record's."""
    for job in read.jobs:
        first = len(found.records)
        found.rejected.update(job.rejected)
        scan(job.lines, key, job.run_id, found)
        for record in found.records[first:]:
            record["runner"] = safe_name(job.runner)


def report(found: Scan, days: int, until: dt.date, read: RunsRead | None = None) -> FleetReport:
    rep = aggregate(found.records, days, today=until)
    rep.rejected = {**dict(found.rejected), **rep.rejected}  # the scan's reasons, and records aggregate refused
    rep.unsigned = found.unsigned
    rep.github = read.summary() if read is not None else {}
    rep.verdicts = verdicts(rep)
    return rep
