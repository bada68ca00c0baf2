"""`lanmirror` command line: parse flags, run one command, print its outcome. No logic here.

Exit codes (a contract that scripts rely on): 0 success, 1 nothing found / something failed,
2 bad input.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import TextIO

import requests

from lanmirror.cmd.argtypes import UsageError
from lanmirror.cmd.commands import COMMANDS, EXIT_BAD_INPUT, EXIT_FAILED, Outcome
from lanmirror.cmd.escape import WorkflowSafeFormatter
from lanmirror.cmd.flags import build_parser
from lanmirror.cmd.heap import bound_heap
from lanmirror.cmd.recording import run_recorded
from lanmirror.errors import BadInput, LanmirrorError
from lanmirror.retry import describe

log = logging.getLogger("lanmirror")


def setup_logging(verbose: bool, stream: TextIO = sys.stderr,
                  formatter: type[logging.Formatter] = logging.Formatter) -> None:
    """Log lines go to stderr on the command line (stdout carries the answer), to stdout in Actions."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter("%(message)s" if not verbose else "%(asctime)s %(name)s %(message)s"))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler])
    for noisy in ("urllib3", "docker"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _print(outcome: Outcome, as_json: bool) -> None:
    if as_json:
        print(json.dumps(outcome.json, indent=None if outcome.error else 2))
    elif outcome.text:
        print(outcome.text)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        # The error first, on one line, and where to read more: a usage block of 20 lines put the
        # one line that matters at the bottom.
        prog = exc.parser.prog
        sys.stderr.write(f"{prog}: error: {exc}\n(see `{prog} --help`)\n")
        return EXIT_BAD_INPUT
    if not getattr(args, "command", None):
        parser.print_help(sys.stderr)
        return EXIT_BAD_INPUT
    actions = os.environ.get("GITHUB_ACTIONS") == "true"
    # In a workflow's `run:` step stderr is the job log too: every line stays inert there.
    setup_logging(args.verbose, sys.stderr, WorkflowSafeFormatter if actions else logging.Formatter)
    bound_heap()
    try:
        outcome = run_recorded(args.command, args, sys.stderr, COMMANDS[args.command])
    except BadInput as exc:
        log.error("error: %s", exc)
        return EXIT_BAD_INPUT
    except LanmirrorError as exc:
        log.error("error: %s", exc)
        return EXIT_FAILED
    except (requests.RequestException, OSError) as exc:  # a network error nothing below classified
        log.error("error: %s (check that the registry address is right and reachable from here)", describe(exc))
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130
    if outcome.error:  # last, below the record line: the first thing a reader of the log sees
        log.error("error: %s", outcome.error)
    _print(outcome, args.json)
    return outcome.code


if __name__ == "__main__":
    raise SystemExit(main())
