"""The one record line each resolve and mirror writes, whatever way the run ends: built here from
the command's outcome (or its error), printed to the log stream, appended to --record-file."""

from __future__ import annotations

import argparse
import logging
import os
import time
from collections.abc import Callable
from typing import Any, TextIO

from lanmirror.cmd.commands import EXIT_BAD_INPUT, EXIT_FAILED, Outcome
from lanmirror.errors import BadInput, LanmirrorError
from lanmirror.ops.mirror import MirrorReport
from lanmirror.ops.resolve import Resolution
from lanmirror.ops.runrecord import envelope, mirror_body, resolve_body
from lanmirror.records import to_line
from lanmirror.records.store import append
from lanmirror.retry import describe

RECORDED = ("resolve", "mirror")
log = logging.getLogger("lanmirror")


def build(command: str, args: argparse.Namespace, outcome: Outcome | None, error: str, code: int,
          seconds: float) -> dict[str, Any]:
    repo = getattr(args, "repo", None) or ""
    if command == "resolve":
        res = outcome.result if outcome is not None and isinstance(outcome.result, Resolution) else None
        attempts = res.attempts if res is not None else (outcome.attempts if outcome is not None else [])
        arch = str((outcome.json if outcome is not None else {}).get("gpu_arch", ""))
        body = resolve_body(repo, res, attempts, error or (outcome.error if outcome else ""), arch,
                            outcome.hub_pulls if outcome is not None else None)
    else:
        report = outcome.result if outcome is not None and isinstance(outcome.result, MirrorReport) else None
        body = mirror_body(repo, outcome.source if outcome is not None else "", report, error,
                           outcome.hub_pulls if outcome is not None else None)
    return envelope(command, body, ok=code == 0, exit_code=code, seconds=seconds)


def emit(record: dict[str, Any], stream: TextIO, record_file: str | None, to_log: bool = True) -> None:
    line = to_line(record, os.environ.get("LANMIRROR_RECORD_KEY", ""))
    if to_log or os.environ.get("GITHUB_ACTIONS") == "true":
        stream.write(line + "\n")  # at the start of its own line: that is where the report looks
        stream.flush()
    if record_file:
        append(record_file, line)


def run_recorded(command: str, args: argparse.Namespace, stream: TextIO,
                 run: Callable[[argparse.Namespace], Outcome]) -> Outcome:
    """Run the command; write its record however it ends (the exception, if any, goes on up)."""
    if command not in RECORDED:
        return run(args)
    started = time.monotonic()
    outcome: Outcome | None = None
    error, code = "", EXIT_FAILED
    try:
        outcome = run(args)
        code = outcome.code
        return outcome
    except BadInput as exc:
        error, code = str(exc), EXIT_BAD_INPUT
        raise
    except LanmirrorError as exc:
        error = str(exc)
        raise
    except BaseException as exc:
        error = describe(exc)
        raise
    finally:
        try:
            record = build(command, args, outcome, error, code, time.monotonic() - started)
            emit(record, stream, getattr(args, "record_file", None) or os.environ.get("LANMIRROR_RECORD_FILE"),
                 to_log=not getattr(args, "no_record_line", False))
        except Exception as exc:  # the record is for the fleet report: it never fails the job
            log.warning("could not write the run record: %s", describe(exc))
