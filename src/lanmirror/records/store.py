"""Records in a local JSON Lines file (`--record-file`): one record per line, appended by many jobs
at once on one runner.

The append is one write(2) of the whole line to a file opened with O_APPEND, under an exclusive
flock: O_APPEND puts every write at the end, and the lock keeps a write the kernel splits (a full
disk, a signal) from interleaving with another job's. A record that cannot be written is a warning,
never a failed job."""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from lanmirror.records.line import MAX_LINE, PREFIX

log = logging.getLogger("lanmirror.records")


def append(path: str | Path, line: str) -> bool:
    """Append one record line (as `line.to_line` made it, prefix included) to `path`."""
    data = (line.removeprefix(PREFIX) + "\n").encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        log.warning("could not open the record file %s: %s", path, exc.strerror or exc)
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        return True
    except OSError as exc:
        log.warning("could not append to the record file %s: %s", path, exc.strerror or exc)
        return False
    finally:
        os.close(fd)  # closing releases the lock


def lines(path: str | Path) -> Iterator[str]:
    """Each line of a JSON Lines file as a record line (prefix added back), for `line.from_line`."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        while raw := fh.readline(MAX_LINE + 1):  # a longer line is cut (and rejected as too long)
            if not raw.endswith("\n") and len(raw) > MAX_LINE:
                while (rest := fh.readline(MAX_LINE + 1)) and not rest.endswith("\n"):
                    pass  # the rest of the overlong line, never held whole
            text = raw.rstrip("\n")
            if text.strip():
                yield PREFIX + text
