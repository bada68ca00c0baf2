"""The README is the interface users read: its action tables must match the action.yml files."""

import re

import pytest
import yaml

from tests.consumer import ROOT


def readme_table(title: str) -> set[str]:
    text = (ROOT / "README.md").read_text()
    m = re.search(rf"^#### {re.escape(title)}\n\n(.*?)(?:\n\n|\Z)", text, re.S | re.M)
    assert m, f"README has no table '#### {title}'"
    rows = [line for line in m.group(1).splitlines() if line.startswith("| `")]
    return {re.match(r"\| `([^`]+)`", row).group(1) for row in rows}


@pytest.mark.parametrize(("path", "name"), [("action.yml", "resolve-image"), ("mirror/action.yml", "mirror-to-lan")])
def test_readme_tables_match_action_yml(path, name):
    spec = yaml.safe_load((ROOT / path).read_text())
    assert readme_table(f"{name} inputs") == set(spec["inputs"])
    assert readme_table(f"{name} outputs") == set(spec["outputs"])


def test_readme_names_the_two_commands_and_ci_runs_one():
    text = (ROOT / "README.md").read_text()
    assert "./dev demo" in text and "./dev test" in text
    assert "./dev test" in (ROOT / ".ci" / "run").read_text()


@pytest.mark.parametrize("command", ["resolve", "mirror", "prune", "doctor"])
def test_readme_cli_reference_is_current(command):
    """The README's CLI reference is the --help output; every flag must be in it."""
    from lanmirror.cmd.flags import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    text = (ROOT / "README.md").read_text()
    flags = [o for a in sub._actions for o in a.option_strings if o.startswith("--")]
    missing = [f for f in flags if f not in text]
    assert not missing, f"README lacks {missing} of `lanmirror {command}`"
