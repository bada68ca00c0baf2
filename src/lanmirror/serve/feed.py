"""Where the endpoint reads a blob from: the sources that hold the chosen digest, in order (the
chosen LAN replica, the other replicas that hold it, the Hub last), through `remote`'s one blob
reader (`BlobReader`: adaptive parallel ranges, resumable).

Every blob the daemon asks for at once shares one budget of ranges in flight, so the memory bound
of a pull is the same as a mirror's. A source that fails is left for the next one, from the byte
reached.

Blame goes only where it is proven. Bytes assembled from several sources hash right or wrong as a
whole, which says nothing about any one of them: a hostile LAN that sends wrong bytes and then
breaks the connection must not get the honest Hub, which finished the blob, marked bad. So each
source run of a verified whole-blob read is accounted for apart (`Provenance`): a source that takes
over at byte N first reads bytes 0..N-1 itself into a hash of its own (cheap for the small N of a
break early in a blob; always after an unexplained mismatch), so at the end its whole blob is known
right or wrong. A source is marked bad only when the wrong bytes are its alone; when that cannot be
told (replicas shared the ranges of one run), nobody is blamed and the blob's next read goes one
source at a time, which tells."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from functools import partial

import requests

from lanmirror.errors import LanmirrorError
from lanmirror.remote.blobread import BlobReader
from lanmirror.remote.hashing import Chunk
from lanmirror.remote.manifest import Manifest
from lanmirror.remote.ranges import RangeSettings
from lanmirror.remote.registry import Registry
from lanmirror.retry import RetryPolicy, describe, run_bounded

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


# A source taking over a verified read at byte N re-reads 0..N-1 for its own hash when N is at most
# this (about 1 s at 25 MB/s per flow), and always in a read that follows an unexplained mismatch.
SIDE_HASH_MAX = 32 << 20


@dataclass
class SourceRun:
    """The bytes one stretch of a read came from: `names` delivered them (the source, plus the
    replicas that shared its ranges); `whole` says whether the source's own whole blob (its
    re-read prefix, then its part) hashed right (True), wrong (False) or was not checked (None)."""

    names: set[str]
    whole: bool | None = None


@dataclass
class Provenance:
    """Who delivered which part of one whole-blob read, to decide who is to blame for a mismatch."""

    runs: list[SourceRun] = field(default_factory=list)

    def contributors(self) -> set[str]:
        return {name for run in self.runs for name in run.names}

    def guilty(self) -> set[str]:
        """The sources proven to have served wrong bytes, given that the whole did not hash right:
        one whose own whole blob hashed wrong; else, when every other part is proven right and
        one source alone served the rest, that source. Empty when it cannot be told."""
        wrong = {name for run in self.runs if run.whole is False for name in run.names}
        if wrong:
            return wrong
        unproven = {name for run in self.runs if run.whole is not True for name in run.names}
        return unproven if len(unproven) == 1 else set()


class BlobSources:
    """Blob bytes from the first source that can give them (none: the endpoint serves only its
    probe image, which is all a reachability check needs)."""

    def __init__(self, sources: list[Source], policy: RetryPolicy, settings: RangeSettings | None = None) -> None:
        self.sources = sources
        self.policy = policy
        self.settings = settings or RangeSettings()
        # One budget of ranges held (in flight or waiting their turn) for the whole pull: the daemon
        # fetches up to three layers at once, and they share it.
        self.budget = threading.Semaphore(self.settings.window)
        self._lock = threading.Lock()
        # Blobs whose last read mismatched with the blame undecided: read one source at a time.
        self.solo: set[str] = set()
        # The source being read now, its reader, and the sources left after it (for a watchdog).
        self.current: tuple[Source, BlobReader, list[Source]] | None = None

    def leave_current(self) -> Source | None:
        """Abandon the source being read (too slow) when another is left: the read goes on from the
        byte reached with the next one. The source left, or None when there is no other."""
        current = self.current
        if current is None or not current[2]:
            return None
        current[1].abort()
        return current[0]

    def usable(self) -> list[Source]:
        return [s for s in self.sources if not s.bad]

    def mark_bad(self, source: Source, why: str) -> None:
        with self._lock:
            source.bad = True
        log.warning("%s %s served a blob that does not match its digest (%s); not asked again this run",
                    source.kind, source.name, why)

    def read(self, digest: str, size: int, start: int = 0,
             provenance: Provenance | None = None) -> Generator[Chunk, None, None]:
        """The bytes of `digest` from `start`. The first usable source reads it with the other LAN
        replicas sharing its parallel ranges; if that fails, the next source goes on from the byte
        reached, alone. With `provenance` (a whole-blob read the caller hashes), each source run is
        recorded there, and a source taking over re-reads the prefix for a hash of its own (see
        SIDE_HASH_MAX); after an undecided mismatch every run is alone. When none is left, the read
        fails."""
        offset = start
        last: BaseException | None = None
        usable = self.usable()
        solo = provenance is not None and digest in self.solo
        for n, source in enumerate(usable):
            if offset >= size:
                return
            alone = solo or (provenance is not None and n > 0)
            spread = [] if alone else [s for s in usable[n + 1:] if s.kind == "lan" and source.kind == "lan"]
            side = self._side_hash(source, digest, offset, solo) if provenance is not None and offset else None
            run = SourceRun(set())
            if provenance is not None:
                provenance.runs.append(run)
            reader = BlobReader(source.registry, source.repo, digest, size, self.policy, self.settings,
                                self.budget, start=offset, replicas=[(s.registry, s.repo) for s in spread])
            self.current = (source, reader, usable[n + 1:])
            began = time.monotonic()
            got = 0
            try:
                for chunk in reader:
                    got += len(chunk)
                    offset += len(chunk)
                    if side is not None:
                        side.update(chunk)
                        if offset >= size:  # known before the last chunk leaves: a caller stops there
                            run.whole = f"sha256:{side.hexdigest()}" == digest
                    yield chunk
                return
            except (LanmirrorError, requests.RequestException, OSError) as exc:
                last = exc
                with self._lock:
                    source.failures += 1
                log.warning("%s %s failed at byte %d of %s (%s); next source", source.kind, source.name, offset,
                            digest[:19], describe(exc))
            finally:
                run.names |= self._account(source, spread, reader.replicas.names(), got, time.monotonic() - began)
        if offset < size:
            why = f" (last: {describe(last)})" if last is not None else ""
            raise LanmirrorError(f"no source left for {digest[:19]}… at byte {offset} of {size}{why}")

    def _side_hash(self, source: Source, digest: str, offset: int, solo: bool) -> hashlib._Hash | None:
        """A hash of `source`'s own bytes 0..offset-1, to which the bytes it goes on with are added:
        then its whole blob is known right or wrong. None (unchecked) when the prefix is too long
        to re-read here, or the re-read fails."""
        if offset > SIDE_HASH_MAX and not solo:
            return None
        hasher = hashlib.sha256()
        try:
            resp = source.registry.open_blob(source.repo, digest, start=0, end=offset - 1)
            with resp:
                left = offset
                for chunk in resp.iter_content(1 << 20):
                    chunk = chunk[:left]
                    hasher.update(chunk)
                    left -= len(chunk)
                    if not left:
                        break
        except (LanmirrorError, requests.RequestException, OSError) as exc:
            log.info("%s %s: could not re-read the first %d bytes of %s for its own hash (%s)", source.kind,
                     source.name, offset, digest[:19], describe(exc))
            return None
        return hasher if not left else None

    def _account(self, primary: Source, spread: list[Source], delivered: dict[str, int], got: int,
                 seconds: float) -> set[str]:
        """Bytes per source: what each replica's ranges delivered, the rest (the first stream and
        range) to the primary. Returns the names that delivered any."""
        others = {s.name: s for s in spread}
        names: set[str] = set()
        with self._lock:
            for name, nbytes in delivered.items():
                if name in others:
                    others[name].bytes += nbytes
                    others[name].seconds += seconds
                    if nbytes:
                        names.add(name)
            mine = max(0, got - sum(n for name, n in delivered.items() if name in others))
            primary.bytes += mine
            primary.seconds += seconds
            if mine:
                names.add(primary.name)
        return names

    def blame(self, digest: str, provenance: Provenance, why: str) -> set[str]:
        """After a whole read of `digest` hashed wrong: mark bad the sources proven guilty, or, when
        that cannot be told, read that blob one source at a time from now on. Returns the guilty."""
        guilty = provenance.guilty()
        for source in self.sources:
            if source.name in guilty and not source.bad:
                self.mark_bad(source, why)
        if not guilty:
            with self._lock:
                self.solo.add(digest)
            log.warning("blob %s (%s) came from %s together; which one served wrong bytes is not known yet, so "
                        "its next read takes one source at a time", digest[:19], why,
                        ", ".join(sorted(provenance.contributors())) or "no source")
        return guilty


def load_manifest(sources: list[Source], digest: str, deadline: float) -> Manifest:
    """A manifest by digest from the first source that gives it within `deadline` seconds each
    (get_manifest checks the digest): a source that drips a manifest costs that bound, not the
    read timeout, and the next one is asked."""
    last: BaseException | None = None
    for source in sources:
        if source.bad:
            continue
        [(done, value)] = run_bounded([partial(source.registry.get_manifest, source.repo, digest)], deadline)
        if done and isinstance(value, Manifest):
            return value
        last = value if done else TimeoutError(f"no manifest within {deadline:g}s")
        log.info("%s %s: manifest %s failed (%s)", source.kind, source.name, digest[:19], describe(last))
    raise LanmirrorError(f"no source gave the manifest {digest[:19]}…"
                         + (f" (last: {describe(last)})" if last is not None else ""))
