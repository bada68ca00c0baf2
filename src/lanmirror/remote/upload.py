"""The pieces of a blob upload on the wire: the open session, the byte count a registry
acknowledges, and a body requests sends with its length."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from lanmirror.remote.hashing import Chunk


@dataclass(frozen=True)
class UploadSession:
    """An open blob upload: where to send the next request, and the bytes the registry holds."""

    location: str
    offset: int


def range_end(header: str | None) -> int | None:
    """The byte count an upload `Range: 0-<last>` header acknowledges; None if absent or bad.
    "0-0" is read as 0 bytes: Distribution says it for an empty session (and for 1 byte; a
    registry really holding 1 byte then refuses the next PATCH with 416, which restarts)."""
    if not header:
        return None
    try:
        first, last = header.strip().removeprefix("bytes=").split("-", 1)
        first_i, last_i = int(first), int(last)
    except ValueError:
        return None
    if first_i != 0 or last_i < 0:
        return None
    return last_i + 1 if last_i else 0


class Sized:
    """A one-shot byte iterator with a known length, so requests sends Content-Length (the
    chunked-upload PATCH requires it) instead of chunked transfer encoding."""

    def __init__(self, chunks: Iterable[Chunk], length: int) -> None:
        self._chunks = chunks
        self._length = length

    def __len__(self) -> int:
        return self._length

    def __iter__(self) -> Iterator[Chunk]:
        return iter(self._chunks)
