"""The release workflow's notes come from CHANGELOG.md; a missing section stops the release."""

import subprocess
import sys

from tests.consumer import ROOT

SCRIPT = str(ROOT / "scripts" / "changelog_section.py")
CHANGELOG = """# Changelog

## Unreleased (1.3.0)

### Added
- next

## 1.2.0 (2026-11-01)

- this one

## v1.1.0

- older
"""


def run(version, tmp_path):
    path = tmp_path / "CHANGELOG.md"
    path.write_text(CHANGELOG)
    return subprocess.run([sys.executable, SCRIPT, version, str(path)], capture_output=True, text=True)


def test_a_versions_section_up_to_the_next_heading(tmp_path):
    assert run("1.2.0", tmp_path).stdout == "- this one\n"
    assert run("v1.1.0", tmp_path).stdout == "- older\n"
    assert run("1.3.0", tmp_path).stdout == "### Added\n- next\n"


def test_no_section_fails_naming_what_is_there(tmp_path):
    proc = run("9.9.9", tmp_path)
    assert proc.returncode == 1 and "Unreleased (1.3.0), 1.2.0 (2026-11-01), v1.1.0" in proc.stderr


def test_the_real_changelog_has_a_section_for_the_next_release():
    proc = subprocess.run([sys.executable, SCRIPT, "1.0.0", str(ROOT / "CHANGELOG.md")], capture_output=True, text=True)
    assert proc.returncode == 0 and "lanmirror resolve" in proc.stdout


def test_the_docs_the_changelog_and_the_release_workflow_agree_on_the_major_tag():
    """README and CHANGELOG tell users to write @vN; the first release must create that vN, and the
    release workflow is what moves it (the CHANGELOG says no tag is moved by hand)."""
    import re

    readme = (ROOT / "README.md").read_text()
    changelog = (ROOT / "CHANGELOG.md").read_text()
    release = (ROOT / ".github" / "workflows" / "release.yml").read_text()
    majors = set(re.findall(r"OWNER/lanmirror(?:/mirror)?@(v\d+)\b", readme + changelog))
    first = re.search(r"^## Unreleased \((\d+)\.\d+\.\d+\)", changelog, re.M)
    assert first and majors == {f"v{first.group(1)}"}, (majors, first)
    assert 'major=${TAG%%.*}' in release and "by hand" in changelog
    vendored = re.findall(r"^REF=(v\d+)\.\d+\.\d+", readme, re.M)
    assert vendored and set(vendored) == majors
