"""Text from outside (registry error messages, tag lists, tag files, artifacts) must never become a
workflow command in the Actions log, nor markup in the job summary.

The runner reads a line as a command when it starts, after leading spaces, with `::` (and older
runners act on `##[` anywhere in it). So in the action every log record becomes exactly one line:
line breaks are escaped the way GitHub's toolkit escapes command data (`%25`, `%0D`, `%0A`), and a
line that would still start a command is quoted."""

from __future__ import annotations

import html
import logging
import re

from lanmirror.records.line import PREFIX


def workflow_safe(text: str) -> str:
    """One log line that the runner cannot take for a command, nor the fleet report for a record
    (lanmirror writes its record itself, never through a log message)."""
    line = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A").replace("##[", "##%5B")
    return f"> {line}" if line.lstrip().startswith(("::", PREFIX.strip())) else line


def annotation_safe(text: str) -> str:
    """Text for an annotation's message: the toolkit escapes line breaks itself; this also defuses
    the legacy `##[` command prefix, which some runners honour anywhere in a line."""
    return text.replace("##[", "##%5B")


class Markup(str):
    """Markdown that this program wrote itself (a code span around a validated digest): the one
    kind of text `markdown_cell` passes through as it is."""


def code(text: str) -> Markup:
    """`text` as a code span; a backtick in it could end the span, so it is dropped."""
    return Markup(f"`{text.replace('`', '')}`")


# The characters that open or close inline Markdown (links, images, emphasis, code, strikethrough,
# tables, escapes) and the ones GitHub's autolinker starts from (`://`, `www.`, `@`).
_ACTIVE = set("\\`*_[]()!|~@")
_AUTOLINK = (("://", ":\\/\\/"), ("www.", "www\\."), ("WWW.", "WWW\\."))


def markdown_cell(value: object) -> str:
    """Text from outside shown as text in the job summary: no HTML, no link, image, emphasis or code
    span, no autolinked URL or address, no column break, no line break. Markdown's active characters
    are backslash-escaped (CommonMark allows it for any ASCII punctuation), `<`, `>` and `&` become
    entities, and `://`, `www.` and `@` are split by an escape so GitHub's autolinker finds nothing."""
    if isinstance(value, Markup):
        return str(value)
    out = []
    for ch in str(value).replace("\r", " ").replace("\n", " "):
        if ch in "&<>":
            out.append(html.escape(ch))
        elif ch in _ACTIVE:
            out.append("\\" + ch)
        else:
            out.append(ch)
    text = "".join(out)
    for plain, escaped in _AUTOLINK:
        text = text.replace(plain, escaped)
    # A dot before a letter is where a bare domain starts ("0.AC", "evil.example"): an escaped dot
    # renders the same and splits the text, so no autolinker that links bare domains finds one.
    return re.sub(r"(?<!\\)\.(?=[A-Za-z])", r"\\.", text)


class WorkflowSafeFormatter(logging.Formatter):
    """The action's log format: every record, whatever it quotes, is one inert line."""

    def format(self, record: logging.LogRecord) -> str:
        return workflow_safe(super().format(record))
