"""Run records: the one machine-readable line each resolve and mirror writes to its log (and, on
request, to a JSON Lines file), and the rules for reading them back from logs and files that
anything else may also have written to."""

from lanmirror.records.line import PREFIX, SCHEMA, Rejected, from_line, safe_name, to_line

__all__ = ["PREFIX", "SCHEMA", "Rejected", "from_line", "safe_name", "to_line"]
