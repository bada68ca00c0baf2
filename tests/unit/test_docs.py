"""The README and docs/ are the interface users read: every input, output and flag documented where
the docs say, the generated parts current, every relative link resolving inside the repository."""

import re

import pytest
import yaml

from tests.consumer import ROOT


def actions_table(title: str) -> set[str]:
    text = (ROOT / "docs" / "actions.md").read_text()
    m = re.search(rf"^## {re.escape(title)}\n\n(.*?)(?:\n\n|\Z)", text, re.S | re.M)
    assert m, f"docs/actions.md has no table '## {title}'"
    rows = [line for line in m.group(1).splitlines() if line.startswith("| `")]
    return {re.match(r"\| `([^`]+)`", row).group(1) for row in rows}


@pytest.mark.parametrize(("path", "name"), [("action.yml", "resolve-image"), ("mirror/action.yml", "mirror-to-lan")])
def test_action_tables_match_action_yml(path, name):
    spec = yaml.safe_load((ROOT / path).read_text())
    assert actions_table(f"{name} inputs") == set(spec["inputs"])
    assert actions_table(f"{name} outputs") == set(spec["outputs"])


def test_readme_names_the_two_commands_and_ci_runs_one():
    text = (ROOT / "README.md").read_text()
    assert "./dev demo" in text and "./dev test" in text
    assert "./dev test" in (ROOT / ".ci" / "run").read_text()


@pytest.mark.parametrize("command", ["resolve", "mirror", "prune", "doctor", "report", "serve"])
def test_cli_reference_has_every_flag_of_every_command(command):
    """docs/cli.md is the --help output of every command; every flag must be in it."""
    from lanmirror.cmd.flags import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    text = (ROOT / "docs" / "cli.md").read_text()
    assert f"usage: lanmirror {command} " in text
    flags = [o for a in sub._actions for o in a.option_strings if o.startswith("--")]
    missing = [f for f in flags if f not in text]
    assert not missing, f"docs/cli.md lacks {missing} of `lanmirror {command}`"


def cli_options() -> set[str]:
    from lanmirror.cmd.flags import build_parser

    parser = build_parser()
    subs = next(a for a in parser._actions if a.dest == "command").choices
    return {o for sub in subs.values() for a in sub._actions for o in a.option_strings}


def test_migration_table_maps_every_old_knob_to_a_real_flag():
    rows = [line.split("|")[1:4] for line in (ROOT / "docs" / "migration.md").read_text().splitlines()
            if line.startswith("| `")]
    old = " ".join(r[0] for r in rows)
    for knob in ("--mi30x-base-tag", "--mi35x-base-tag", "--custom-image", "--rocm-version", "LOCAL_DOCKER_REGISTRY",
                 "DOCKERHUB_AMD_USERNAME", "DOCKERHUB_AMD_TOKEN"):
        assert f"`{knob}" in old, f"docs/migration.md does not map {knob}"
    named = {f for r in rows for f in re.findall(r"`(--[a-z-]+)", r[1])}
    unknown = named - cli_options()
    assert named and not unknown, f"docs/migration.md names flags lanmirror lacks: {unknown}"


def test_architecture_diagram_shows_every_package():
    text = (ROOT / "docs" / "architecture.md").read_text()
    src = ROOT / "src" / "lanmirror"
    packages = [p.name for p in src.iterdir() if (p / "__init__.py").exists()] + ["cache", "name", "retry", "errors"]
    missing = [p for p in packages if not re.search(rf"\b{p}\b", text.split("## The two flows")[0])]
    assert not missing, f"docs/architecture.md's diagram lacks {missing}"


def test_readme_links_every_doc_and_stays_short():
    text = (ROOT / "README.md").read_text()
    for doc in sorted((ROOT / "docs").glob("*.md")):
        assert f"](docs/{doc.name})" in text, f"README does not link docs/{doc.name}"
    assert "pipx install lanmirror" in text
    assert len(text.splitlines()) <= 350, "the README is the quick path: details belong in docs/"


def test_generated_parts_of_the_readme_are_current():
    """docs/actions.md's tables and docs/cli.md (every command, doctor included) are what
    `./dev docs` makes from action.yml, mirror/action.yml and --help today."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("update_readme", ROOT / "scripts" / "update_readme.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    actions = (ROOT / "docs" / "actions.md").read_text()
    assert module.render(actions) == actions, "docs/actions.md is stale: run ./dev docs"
    text = (ROOT / "README.md").read_text()
    cli = (ROOT / "docs" / "cli.md").read_text()
    assert module.render_cli(cli) == cli, "docs/cli.md is stale: run ./dev docs"
    records = (ROOT / "docs" / "records.md").read_text()
    assert module.render_samples(text, records) == (text, records), "the sample report is stale: run ./dev docs"


def test_every_relative_link_resolves_and_none_leaves_the_repository():
    import re

    docs = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").glob("*.md"))]
    broken = []
    for doc in docs:
        for target in re.findall(r"\]\(([^)\s]+)\)", doc.read_text()):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            path = (doc.parent / target.split("#")[0]).resolve()
            if not path.exists() or ROOT.resolve() not in path.parents:
                broken.append(f"{doc.name}: {target}")
    assert not broken, broken
