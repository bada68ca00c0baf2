"""The action installs exactly requirements.lock, by hash: the lock must pin every dependency of
pyproject.toml, with hashes, and nothing the project no longer asks for at the top level.
Regenerate with: pip-compile --generate-hashes --strip-extras --no-emit-index-url
--no-emit-find-links --output-file requirements.lock pyproject.toml"""

import re

import tomllib

from tests.consumer import ROOT


def name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def pins(path: str) -> dict[str, str]:
    text = (ROOT / path).read_text()
    return {m.group(1).lower(): m.group(2) for m in re.finditer(r"^([A-Za-z0-9_.-]+)==(\S+) \\$", text, re.M)}


def test_lock_pins_exactly_the_declared_dependencies_with_hashes():
    declared = {name(r) for r in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]}
    text = (ROOT / "requirements.lock").read_text()
    locked = pins("requirements.lock")
    assert declared <= set(locked), f"not in requirements.lock: {declared - set(locked)}; regenerate it"
    top = {name(m) for m in re.findall(r"^([A-Za-z0-9_.-]+)==.*?\n(?:    --hash.*\n)+    # via lanmirror",
                                       text, re.M)}
    top |= {name(m.group(1)) for m in re.finditer(r"^([A-Za-z0-9_.-]+)==[^\n]*\n(?:    --hash[^\n]*\n)+"
                                                  r"    # via\n(?:    #   [^\n]*\n)*?    #   lanmirror", text, re.M)}
    assert top == declared, f"stale lock: top-level {sorted(top)} vs pyproject {sorted(declared)}"
    blocks = re.split(r"\n(?=[A-Za-z0-9_.-]+==)", text)
    assert all("--hash=sha256:" in b for b in blocks if "==" in b.split("\n", 1)[0])


def test_build_lock_pins_what_the_build_needs_with_hashes():
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"]
    assert {name(r) for r in requires} <= set(pins("requirements-build.lock"))
    assert "--hash=sha256:" in (ROOT / "requirements-build.lock").read_text()


def test_serve_lock_is_the_lock_plus_the_serve_extra_at_the_same_versions():
    """The project's image installs `lanmirror[serve]` from requirements-serve.lock (the release's
    image job downloads exactly it): every pin of requirements.lock at the same version, plus the
    node mirror's server. Regenerate with the command at the top of requirements-serve.lock."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    serve = {name(r) for r in project["optional-dependencies"]["serve"]}
    base, full = pins("requirements.lock"), pins("requirements-serve.lock")
    assert serve <= set(full), f"not in requirements-serve.lock: {serve - set(full)}"
    assert {k: full.get(k) for k in base} == base, "requirements-serve.lock pins another version than requirements.lock"
    text = (ROOT / "requirements-serve.lock").read_text()
    blocks = re.split(r"\n(?=[A-Za-z0-9_.-]+==)", text)
    assert all("--hash=sha256:" in b for b in blocks if "==" in b.split("\n", 1)[0])
