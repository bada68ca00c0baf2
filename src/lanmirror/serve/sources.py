"""Where the endpoint reads a blob from: the sources that hold the chosen digest, in order (the
chosen LAN replica, the other replicas that hold it, the Hub last), through `remote`'s one blob
reader (`BlobReader`: adaptive parallel ranges, resumable).

Every blob the daemon asks for at once shares one budget of ranges in flight, so the memory bound
of a pull is the same as a mirror's. A source that fails is left for the next one, from the byte
reached; a source whose bytes do not hash to the digest is marked bad for the rest of the run."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import requests

from lanmirror.errors import LanmirrorError
from lanmirror.remote.blobread import BlobReader, RangeSettings
from lanmirror.remote.registry import Chunk, Registry
from lanmirror.retry import RetryPolicy, describe

log = logging.getLogger("lanmirror.serve")


@dataclass
class Source:
    """One registry that holds the image, and what it delivered during this pull."""

    kind: str  # lan | hub
    registry: Registry
    repo: str
    bytes: int = 0
    seconds: float = 0.0
    failures: int = 0
    bad: bool = False  # served bytes that did not match the digest: not asked again this run

    @property
    def name(self) -> str:
        return self.registry.name

    def rate(self) -> float:
        return self.bytes / self.seconds if self.seconds > 0 else 0.0


class BlobSources:
    """Blob bytes from the first source that can give them."""

    def __init__(self, sources: list[Source], policy: RetryPolicy, settings: RangeSettings | None = None) -> None:
        if not sources:
            raise ValueError("no source to serve from")
        self.sources = sources
        self.policy = policy
        self.settings = settings or RangeSettings()
        # One budget of ranges held (in flight or waiting their turn) for the whole pull: the daemon
        # fetches up to three layers at once, and they share it.
        self.budget = threading.Semaphore(self.settings.window)
        self._lock = threading.Lock()

    def usable(self) -> list[Source]:
        return [s for s in self.sources if not s.bad]

    def mark_bad(self, source: Source, why: str) -> None:
        with self._lock:
            source.bad = True
        log.warning("%s %s served a blob that does not match its digest (%s); not asked again this run",
                    source.kind, source.name, why)

    def read(self, digest: str, size: int, start: int = 0,
             contributors: set[str] | None = None) -> Iterator[Chunk]:
        """The bytes of `digest` from `start`. The first usable source reads it with the other LAN
        replicas sharing its parallel ranges; if that fails, the next source goes on from the byte
        reached, alone. Every source that delivered bytes is added to `contributors` (the endpoint
        marks them bad if the whole does not hash right). When none is left, the read fails."""
        offset = start
        last: BaseException | None = None
        usable = self.usable()
        for n, source in enumerate(usable):
            if offset >= size:
                return
            spread = [s for s in usable[n + 1:] if s.kind == "lan" and source.kind == "lan"]
            reader = BlobReader(source.registry, source.repo, digest, size, self.policy, self.settings,
                                self.budget, start=offset, replicas=[(s.registry, s.repo) for s in spread])
            began = time.monotonic()
            got = 0
            try:
                for chunk in reader:
                    got += len(chunk)
                    offset += len(chunk)
                    yield chunk
                return
            except (LanmirrorError, requests.RequestException, OSError) as exc:
                last = exc
                with self._lock:
                    source.failures += 1
                log.warning("%s %s failed at byte %d of %s (%s); next source", source.kind, source.name, offset,
                            digest[:19], describe(exc))
            finally:
                self._account(source, spread, reader.replicas.names(), got, time.monotonic() - began, contributors)
        if offset < size:
            why = f" (last: {describe(last)})" if last is not None else ""
            raise LanmirrorError(f"no source left for {digest[:19]}… at byte {offset} of {size}{why}")

    def _account(self, primary: Source, spread: list[Source], delivered: dict[str, int], got: int, seconds: float,
                 contributors: set[str] | None) -> None:
        """Bytes per source: what each replica's ranges delivered, the rest (the first stream and
        range) to the primary."""
        others = {s.name: s for s in spread}
        with self._lock:
            for name, nbytes in delivered.items():
                if name in others:
                    others[name].bytes += nbytes
                    others[name].seconds += seconds
            mine = max(0, got - sum(n for name, n in delivered.items() if name in others))
            primary.bytes += mine
            primary.seconds += seconds
            if contributors is not None:
                contributors.update(name for name, n in delivered.items() if n)
                if mine:
                    contributors.add(primary.name)

    def mark_bad_names(self, names: set[str], why: str) -> None:
        for source in self.sources:
            if source.name in names and not source.bad:
                self.mark_bad(source, why)
