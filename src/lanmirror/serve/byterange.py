"""The one `Range: bytes=a-b` a daemon sends for a blob, read the same way by both servers (the
job's endpoint and the node mirror)."""

from __future__ import annotations

import re

_RANGE = re.compile(r"bytes=(\d+)-(\d*)")


class RangeNotSatisfiable(Exception):
    """The range starts past the body's end: the answer is 416."""


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive (start, end) asked for in a body of `size` bytes, the end clipped to the body;
    None when there is no range of this form (the whole body is sent)."""
    match = _RANGE.fullmatch((header or "").strip())
    if match is None:
        return None
    start = int(match.group(1))
    end = min(int(match.group(2)), size - 1) if match.group(2) else size - 1
    if start >= size or start > end:
        raise RangeNotSatisfiable(f"bytes {start}- of {size}")
    return start, end
