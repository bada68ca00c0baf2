"""What a new user reads first: `--help` that is grouped, names its placeholders one way, says
where the Hub token comes from, and ends with examples that run."""

import argparse
import re
import shlex

import pytest

COMMANDS = ("resolve", "mirror", "prune", "doctor", "report", "serve")
# One word per kind of value: a flag's placeholder is one of these (or a documented shape).
PLACEHOLDERS = {"REPO", "TAG", "DAYS", "HOST[:PORT]", "ID", "USER", "DIR", "PATH", "SECONDS", "MB/S", "MB", "N",
                "REF", "ARCH", "REGEX", "GPU=ARCH,...", "ARCH=TAG", "PREFIX", "TYPE", "FILE", "NAME-OR-GLOB", "GB",
                "EVENT", "OWNER/REPO", "URL", "YYYY-MM-DD", "tags,local", "HOST:PORT", "SIZE"}


def help_of(command: str, monkeypatch: pytest.MonkeyPatch, columns: int = 80) -> str:
    from lanmirror.cmd.flags import build_parser

    monkeypatch.setenv("COLUMNS", str(columns))
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[command].format_help()


def parser_of(command: str) -> argparse.ArgumentParser:
    from lanmirror.cmd.flags import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[command]


@pytest.mark.parametrize("command, groups", [
    ("resolve", ["search", "sources", "pull", "trust", "output"]),
    ("mirror", ["tags", "registries", "copy", "signatures", "output"]),
])
def test_resolve_and_mirror_help_is_grouped_with_examples_last(command, groups, monkeypatch):
    text = help_of(command, monkeypatch)
    starts = [text.index(f"\n{g}:\n") for g in groups]
    assert starts == sorted(starts), "the groups appear in the order a reader needs them"
    examples = text.index("\nexamples:\n")
    assert examples > starts[-1]
    # Each example is a command line that parses (the placeholders of a token are only `...`).
    body = text[examples:].split("\n", 2)[2]
    commands = [c for c in re.sub(r"\\\n\s*", "", body).splitlines() if c.strip() and not c.strip().startswith("#")]
    assert len(commands) >= 2
    for line in commands:
        argv = [w for w in shlex.split(line) if "=" not in w or w.startswith("--")]
        assert argv[0] == "lanmirror" and argv[1] == command
        parser_of(command).parse_args(argv[2:])


@pytest.mark.parametrize("command", COMMANDS)
def test_every_flag_has_help_and_a_placeholder_of_the_one_vocabulary(command):
    for action in parser_of(command)._actions:
        if not action.option_strings or action.dest == "help":
            continue
        assert action.help, f"{command} {action.option_strings[0]} has no help text"
        if action.nargs == 0:
            continue
        if action.choices:
            continue
        shown = action.metavar or action.dest.upper()  # what argparse prints
        assert shown in PLACEHOLDERS, (command, action.option_strings[0], shown)


@pytest.mark.parametrize("command", ["resolve", "mirror", "doctor"])
def test_help_says_where_the_hub_token_comes_from(command, monkeypatch):
    assert "$DOCKERHUB_TOKEN" in help_of(command, monkeypatch)


@pytest.mark.parametrize("columns", [60, 80, 110])
def test_a_long_default_is_never_broken_inside_a_word(columns, monkeypatch):
    from lanmirror.sources.arch import DEFAULT_MAP

    default = ",".join(f"{k}={v}" for k, v in DEFAULT_MAP.items())
    assert default in help_of("resolve", monkeypatch, columns)
