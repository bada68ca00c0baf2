"""Bytes checked on the way: a blob stream hashed as it passes, so corrupt data never lands."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from typing import Any

from lanmirror.errors import DigestMismatch

CHUNK = 1 << 20
# A piece of a blob as the readers hand it on: ranges and stream reads land in pooled bytearrays
# (`remote.buffers`), handed on as they are or as a memoryview of the part that was filled.
Chunk = bytes | bytearray | memoryview


class HashingReader:
    """Wraps a byte iterator, hashing on the way; raises DigestMismatch at the end if the bytes
    are not what `digest` promised. Used on every streamed blob so corruption never lands."""

    def __init__(self, chunks: Iterable[Chunk], digest: str, on_bytes: Any = None) -> None:
        self._chunks = chunks
        self.digest = digest
        self.size = 0
        self._hash = hashlib.sha256()
        self._on_bytes = on_bytes

    def __iter__(self) -> Iterator[Chunk]:
        for chunk in self._chunks:
            if not chunk:
                continue
            self._hash.update(chunk)
            self.size += len(chunk)
            if self._on_bytes:
                self._on_bytes(len(chunk))
            yield chunk
        actual = "sha256:" + self._hash.hexdigest()
        if actual != self.digest:
            raise DigestMismatch(f"blob bytes hash to {actual}, expected {self.digest}: corrupt data refused")
