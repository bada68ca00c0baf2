"""GitHub Actions entry point: `python -m lanmirror.cmd.action resolve|mirror`.

The action is the CLI: its inputs (INPUT_<NAME> variables, set through `env:` by the composite
actions, never interpolated into shell code) are mapped onto the CLI's own flags by the table
below, parsed by the same parser and run by the same command function. What is left here is
GitHub's side: masking secrets first, then outputs, annotations and the job summary.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import sys
import traceback
from dataclasses import dataclass

import requests
from actions_toolkit import core

from lanmirror.cmd.argtypes import UsageError
from lanmirror.cmd.cli import setup_logging
from lanmirror.cmd.commands import COMMANDS, EXIT_BAD_INPUT, EXIT_FAILED, Outcome
from lanmirror.cmd.escape import WorkflowSafeFormatter, annotation_safe, workflow_safe
from lanmirror.cmd.flags import build_parser
from lanmirror.cmd.heap import bound_heap
from lanmirror.cmd.recording import run_recorded
from lanmirror.cmd.settings import split_list
from lanmirror.cmd.summary import failure_summary, mirror_summary, resolve_summary, write
from lanmirror.errors import BadInput, LanmirrorError
from lanmirror.ops.mirror import MirrorReport
from lanmirror.ops.resolve import Resolution
from lanmirror.retry import describe


@dataclass(frozen=True)
class Flag:
    """An input that becomes `--flag VALUE` (once per list item when `many`)."""

    flag: str
    many: bool = False


@dataclass(frozen=True)
class Switch:
    """A true/false input that becomes `flag` when it has the value `when`."""

    flag: str
    when: bool


@dataclass(frozen=True)
class Env:
    """A secret: handed over in the environment, never on a command line that `ps` shows."""

    name: str


Mapping = Flag | Switch | Env

_SHARED: dict[str, Mapping] = {
    "repo": Flag("--repo"), "base-tag": Flag("--base-tag", many=True),
    "lan-registry": Flag("--lan-registry", many=True),
    "insecure-registries": Flag("--insecure-registry", many=True),
    "dockerhub-username": Flag("--hub-username"), "dockerhub-token": Env("DOCKERHUB_TOKEN"),
    "verbose": Switch("--verbose", when=True), "certs-dir": Flag("--certs-dir"),
    "lan-username": Flag("--lan-username"), "lan-password": Env("LANMIRROR_LAN_PASSWORD"),
    "record-file": Flag("--record-file"), "record-key": Env("LANMIRROR_RECORD_KEY"),
}

INPUTS: dict[str, dict[str, Mapping]] = {
    "resolve": {
        **_SHARED, "days": Flag("--days"), "hub-registry": Flag("--hub-registry"), "policy": Flag("--policy"),
        "pull": Switch("--no-pull", when=False), "verify": Switch("--no-verify", when=False),
        "image": Flag("--image"), "probe-timeout": Flag("--probe-timeout"), "hub-timeout": Flag("--hub-timeout"),
        "stall-timeout": Flag("--stall-timeout"), "pull-timeout": Flag("--pull-timeout"),
        "budget": Flag("--budget"), "daemon-probe": Switch("--no-daemon-probe", when=False),
        "allow-degraded": Switch("--allow-degraded", when=True),
        "allow-unverified": Switch("--allow-unverified", when=True),
        "pull-via": Flag("--pull-via"), "helper-image": Flag("--helper-image"),
        "min-pull-rate": Flag("--min-pull-rate"), "pull-rate-window": Flag("--pull-rate-window"),
        "lan-select": Flag("--lan-select"), "runner-id": Flag("--runner-id"),
        "gpu-arch": Flag("--gpu-arch"), "arch-pattern": Flag("--arch-pattern"), "arch-map": Flag("--arch-map"),
        "base-tag-for": Flag("--base-tag-for", many=True), "image-env": Flag("--image-env"),
        "fallback": Flag("--fallback", many=True), "require-referrer": Flag("--require-referrer", many=True),
    },
    "mirror": {
        **_SHARED, "tags": Flag("--tag", many=True), "tag-file": Flag("--tag-file"),
        "from-artifact": Flag("--from-artifact"), "run-id": Flag("--run-id"), "workflow": Flag("--workflow"),
        "any-branch": Switch("--any-branch", when=True), "lan-mode": Flag("--lan-mode"),
        "backfill-days": Flag("--backfill"), "source-registry": Flag("--source-registry"),
        "engine": Flag("--engine"), "parallel": Flag("--parallel"),
        "range-threshold-mb": Flag("--range-threshold-mb"), "range-chunk-mb": Flag("--range-chunk-mb"),
        "range-below-mbps": Flag("--range-below-mbps"), "ranges": Flag("--ranges"),
        "upload-chunk-mb": Flag("--upload-chunk-mb"), "mount-from": Flag("--mount-from", many=True),
        "dry-run": Switch("--dry-run", when=True), "overwrite": Switch("--no-overwrite", when=False),
        "referrers": Flag("--referrers"), "artifact-type": Flag("--artifact-type", many=True),
        "github-token": Env("GITHUB_TOKEN"),
    },
}
TITLES = {"resolve": "resolve-image", "mirror": "mirror-to-lan"}


def read_input(name: str) -> str:
    return str(core.get_input(name.replace("-", "_"))).strip()


def to_bool(name: str, value: str) -> bool:
    if value.lower() in ("true", "yes", "1"):
        return True
    if value.lower() in ("false", "no", "0"):
        return False
    raise BadInput(f"input {name}: expected true or false, got {value!r}")


def to_argv(command: str, inputs: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """The CLI argv and the environment that the given inputs stand for. An empty input is not
    given: the CLI's default (or its environment variable) applies, as on the command line."""
    argv, env = [command], {}
    for name, mapping in INPUTS[command].items():
        value = inputs.get(name, "")
        if not value:
            continue
        if isinstance(mapping, Env):
            env[mapping.name] = value
        elif isinstance(mapping, Switch):
            if to_bool(name, value) == mapping.when:
                argv.append(mapping.flag)
        elif mapping.many:
            for item in split_list(value):
                argv += [mapping.flag, item]
        else:
            argv += [mapping.flag, value]
    return argv, env


def input_for(command: str, message: str) -> str:
    """Name the input, not the flag, in a usage error (the user wrote inputs)."""
    for name, mapping in INPUTS[command].items():
        if not isinstance(mapping, Env) and mapping.flag in message:
            return f"input {name}: {message}"
    return message


def _error(message: str, title: str = "") -> None:
    core.error(annotation_safe(message), title=title)


def _warning(message: str, title: str = "") -> None:
    core.warning(annotation_safe(message), title=title)


def _notice(message: str, title: str = "") -> None:
    core.notice(annotation_safe(message), title=title)


def report_resolve(outcome: Outcome) -> None:
    title = TITLES["resolve"]
    res = outcome.result
    if not isinstance(res, Resolution):
        write(failure_summary("resolve-image: no image", outcome.error, outcome.attempts))
        _error(outcome.error, title=title)
        return
    for warning in res.warnings:
        _warning(warning, title=title)
    if res.source == "hub" and outcome.registries:
        _notice(f"{res.image} came from {res.registry}, not the LAN: mirror it to save Hub pulls",
                    title="resolve-image fell back to the Hub")
    for key, value in res.outputs().items():
        core.set_output(key, value)
    write(resolve_summary(res))
    core.info(f"image={res.image}")


def report_mirror(outcome: Outcome) -> None:
    title = TITLES["mirror"]
    report = outcome.result if isinstance(outcome.result, MirrorReport) else MirrorReport([])
    if not report.results:
        _notice("nothing to mirror: no tag given and none found in the window", title=title)
    for r in report.results:
        if not r.ok:
            _error(f"{r.tag} → {r.registry}: {r.error}", title=title)
        elif r.status == "replaced":
            _warning(f"{r.tag} → {r.registry}: replaced {r.previous_digest} with {r.digest}", title=title)
    if report.results:
        write(mirror_summary(report, outcome.source, outcome.registries))
    core.set_output("mirrored", json.dumps(report.mirrored()))
    core.set_output("bytes", str(report.bytes))
    core.set_output("skipped", json.dumps(report.skipped()))
    core.set_output("source-bytes-read", str(report.source_bytes_read))
    core.set_output("referrers", str(report.referrers))


REPORTERS = {"resolve": report_resolve, "mirror": report_mirror}


def run(command: str) -> int:
    inputs = {name: read_input(name) for name in INPUTS[command]}
    for name, mapping in INPUTS[command].items():
        if isinstance(mapping, Env) and inputs[name]:
            core.set_secret(inputs[name])  # masked before anything else runs
    if command == "mirror" and not any(inputs[n] for n in ("tags", "tag-file", "from-artifact", "backfill-days")):
        report_mirror(Outcome(0, {}))  # says "nothing to mirror"
        return 0
    argv, env = to_argv(command, inputs)
    try:
        args = build_parser().parse_args(argv)
    except UsageError as exc:
        raise BadInput(input_for(command, str(exc))) from None
    os.environ.update(env)
    setup_logging(args.verbose, sys.stdout, WorkflowSafeFormatter)
    bound_heap()
    # Belt and braces: while the command runs, the runner executes no workflow command at all,
    # whatever reaches the log; our own annotations follow once it is done.
    resume = secrets.token_hex(16)
    print(f"::stop-commands::{resume}", flush=True)
    try:
        outcome = run_recorded(command, args, sys.stdout, COMMANDS[command])
    except LanmirrorError:
        raise
    except Exception as exc:
        # A bug: its traceback is logged here, inside stop-commands and one escaped line per record,
        # whatever text from outside it quotes.
        logging.getLogger("lanmirror").error("unexpected error (please report it with this log)", exc_info=True)
        raise LanmirrorError(f"unexpected {describe(exc)}; the traceback is in the log above") from None
    finally:
        print(f"::{resume}::", flush=True)
    REPORTERS[command](outcome)
    return outcome.code


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    if len(args) != 1 or args[0] not in INPUTS:
        _error(f"usage: python -m lanmirror.cmd.action {'|'.join(INPUTS)}")
        return EXIT_BAD_INPUT
    try:
        return run(args[0])
    except BadInput as exc:
        _error(f"bad input: {exc}", title=f"lanmirror {args[0]}")
        return EXIT_BAD_INPUT
    except LanmirrorError as exc:
        _error(str(exc), title=f"lanmirror {args[0]}")
        return EXIT_FAILED
    except (requests.RequestException, OSError) as exc:
        _error(f"{describe(exc)} (check that the registry address is right and reachable from the runner)",
               title=f"lanmirror {args[0]}")
        return EXIT_FAILED
    except Exception as exc:  # every path out goes through the same escaping, a bug's included
        print(workflow_safe(traceback.format_exc()), flush=True)
        _error(f"unexpected {describe(exc)} (please report it with this log)", title=f"lanmirror {args[0]}")
        return EXIT_FAILED


if __name__ == "__main__":
    raise SystemExit(main())
