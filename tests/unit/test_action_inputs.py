"""The action is the CLI: every input of both action.yml files reaches a CLI flag (or, for a
secret, the environment variable the CLI reads), and every CLI option has an input."""

import argparse

import pytest
import yaml

from lanmirror.cmd.action import INPUTS, Env, Flag, Switch, input_for, to_argv
from lanmirror.cmd.flags import build_parser
from lanmirror.errors import BadInput
from tests.consumer import ROOT

ACTIONS = {"resolve": ROOT / "action.yml", "mirror": ROOT / "mirror" / "action.yml"}
# --json: the action writes outputs instead; --no-record-line: in Actions the record always goes to the log
CLI_ONLY = {"--help", "--json", "--no-record-line"}


def subparser(command: str) -> argparse.ArgumentParser:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[command]


def options(command: str) -> set[str]:
    return {o for a in subparser(command)._actions for o in a.option_strings if o.startswith("--")}


@pytest.mark.parametrize("command", sorted(ACTIONS))
def test_every_action_input_reaches_a_cli_flag(command):
    declared = set(yaml.safe_load(ACTIONS[command].read_text())["inputs"])
    assert declared == set(INPUTS[command]), declared ^ set(INPUTS[command])
    flags = options(command)
    for name, mapping in INPUTS[command].items():
        if isinstance(mapping, Env):
            secrets = {"DOCKERHUB_TOKEN", "GITHUB_TOKEN", "LANMIRROR_LAN_PASSWORD", "LANMIRROR_RECORD_KEY"}
            assert mapping.name in secrets, name
        else:
            assert mapping.flag in flags, f"input {name} maps to {mapping.flag}, which `lanmirror {command}` lacks"


@pytest.mark.parametrize("command", sorted(ACTIONS))
def test_every_cli_flag_has_an_action_input(command):
    reached = {m.flag for m in INPUTS[command].values() if not isinstance(m, Env)}
    missing = options(command) - reached - CLI_ONLY
    assert not missing, f"`lanmirror {command}` flags with no action input: {sorted(missing)}"


def test_inputs_become_the_same_argv_a_user_would_type():
    argv, env = to_argv("mirror", {
        "repo": "rocm/sgl-dev", "tags": "a-1\nb-2", "lan-registry": "10.0.0.5:5000, 10.0.1.5:5000",
        "overwrite": "false", "dry-run": "true", "upload-chunk-mb": "0", "dockerhub-token": "s3cret",
        "ranges": "",
    })
    assert argv == ["mirror", "--repo", "rocm/sgl-dev", "--lan-registry", "10.0.0.5:5000", "--lan-registry",
                    "10.0.1.5:5000", "--tag", "a-1", "--tag", "b-2", "--upload-chunk-mb", "0", "--dry-run",
                    "--no-overwrite"]
    assert env == {"DOCKERHUB_TOKEN": "s3cret"} and "s3cret" not in argv
    args = build_parser().parse_args(argv)
    assert args.lan_registry == ["10.0.0.5:5000", "10.0.1.5:5000"] and not args.overwrite and args.upload_chunk_mb == 0


def test_switches_follow_their_value_and_refuse_anything_else():
    assert to_argv("resolve", {"pull": "false", "verify": "true"})[0] == ["resolve", "--no-pull"]
    assert to_argv("resolve", {"pull": "true", "daemon-probe": "no"})[0] == ["resolve", "--no-daemon-probe"]
    with pytest.raises(BadInput, match="input pull: expected true or false"):
        to_argv("resolve", {"pull": "maybe"})


def test_a_refused_flag_is_reported_by_its_input_name():
    argv, _ = to_argv("resolve", {"repo": "r/x", "days": "forty"})
    with pytest.raises(BadInput) as err:
        build_parser().parse_args(argv)
    assert input_for("resolve", str(err.value)).startswith("input days: ")


def test_mapping_kinds_are_the_three_known_ones():
    assert all(isinstance(m, (Flag, Switch, Env)) for table in INPUTS.values() for m in table.values())
