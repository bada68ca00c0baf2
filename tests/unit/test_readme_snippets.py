"""The README's workflow snippets pass the linters the project's own workflows pass (actionlint,
zizmor): a new user copies them as they are. Each snippet is a job, or the body of one; it is put
into the smallest workflow around it and linted from the README's text itself."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.consumer import ROOT

BIN = Path(sys.executable).parent
HEAD = "name: snippet\non: { workflow_dispatch: {} }\npermissions: {}\njobs:\n"
# What snippet 2's `needs: publish` refers to: a publishing job with a `tag` output.
PUBLISH = ("  publish:\n    runs-on: self-hosted\n    outputs: { tag: \"${{ steps.tag.outputs.tag }}\" }\n"
           "    steps:\n      - id: tag\n"
           "        run: echo \"tag=v0.5.5-rocm700-mi30x-20261128\" >> \"$GITHUB_OUTPUT\"\n")


def snippets() -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", (ROOT / "README.md").read_text(), re.S)


def as_workflow(snippet: str) -> str:
    indent = len(snippet) - len(snippet.lstrip(" "))
    if indent == 2:  # one or more whole jobs
        return HEAD + (PUBLISH if "needs: publish" in snippet else "") + snippet
    assert indent == 4, f"a README snippet is a job or a job's body:\n{snippet}"
    return HEAD + "  job:\n    runs-on: self-hosted\n" + snippet


def test_every_workflow_snippet_of_the_readme_passes_actionlint_and_zizmor(tmp_path):
    found = snippets()
    assert len(found) >= 2
    files = []
    for n, snippet in enumerate(found):
        path = tmp_path / ".github" / "workflows" / f"readme-{n}.yml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(as_workflow(snippet))
        files.append(str(path))
    lint = subprocess.run([str(BIN / "actionlint"), *files], capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    audit = subprocess.run([str(BIN / "zizmor"), "--offline", "--quiet", *files], capture_output=True, text=True)
    assert audit.returncode == 0, audit.stdout + audit.stderr


def test_the_snippets_pin_checkout_and_keep_its_token_out_of_the_workspace():
    for snippet in snippets():
        for line in re.findall(r"uses: actions/checkout@\S+", snippet):
            assert re.fullmatch(r"uses: actions/checkout@[0-9a-f]{40}", line), line
        if "actions/checkout@" in snippet:
            assert "persist-credentials: false" in snippet
