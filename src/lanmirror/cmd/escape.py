"""Text from outside (registry error messages, tag lists, tag files, artifacts) must never become a
workflow command in the Actions log, nor markup in the job summary.

The runner reads a line as a command when it starts, after leading spaces, with `::` (and older
runners act on `##[` anywhere in it). So in the action every log record becomes exactly one line:
line breaks are escaped the way GitHub's toolkit escapes command data (`%25`, `%0D`, `%0A`), and a
line that would still start a command is quoted."""

from __future__ import annotations

import html
import logging


def workflow_safe(text: str) -> str:
    """One log line that the runner cannot take for a command."""
    line = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A").replace("##[", "##%5B")
    return f"> {line}" if line.lstrip().startswith("::") else line


def annotation_safe(text: str) -> str:
    """Text for an annotation's message: the toolkit escapes line breaks itself; this also defuses
    the legacy `##[` command prefix, which some runners honour anywhere in a line."""
    return text.replace("##[", "##%5B")


def markdown_cell(value: object) -> str:
    """A Markdown table cell that shows the text as text: no HTML, no column break, no line break."""
    text = html.escape(str(value), quote=False).replace("|", "\\|")
    return text.replace("\r", " ").replace("\n", " ")


class WorkflowSafeFormatter(logging.Formatter):
    """The action's log format: every record, whatever it quotes, is one inert line."""

    def format(self, record: logging.LogRecord) -> str:
        return workflow_safe(super().format(record))
