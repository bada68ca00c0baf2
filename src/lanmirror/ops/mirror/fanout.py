"""Every tag to several targets, each source blob read once for all the targets that lack it (a
bounded tee, `remote.blobtee`). A target that fails or falls behind is dropped for that blob and
retried alone; the others go on. One result per tag and target."""

from __future__ import annotations

import concurrent.futures as cf
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import replace

from lanmirror.errors import LanmirrorError
from lanmirror.ops.clients import Clients
from lanmirror.ops.mirror.blobs import both, copy_blob, largest_first, retry_copy, source_reader
from lanmirror.ops.mirror.context import BytesFn, ProgressFn, Target
from lanmirror.ops.mirror.manifests import publish
from lanmirror.ops.mirror.options import MirrorOptions
from lanmirror.ops.mirror.outcome import MirrorReport, TagResult
from lanmirror.ops.mirror.pipeline import settle, with_referrers
from lanmirror.ops.mirror.plan import Plan
from lanmirror.remote.blobtee import BlobTee
from lanmirror.remote.blobwrite import BlobWriter
from lanmirror.remote.hashing import Chunk
from lanmirror.remote.manifest import Descriptor, Manifest
from lanmirror.retry import describe

log = logging.getLogger("lanmirror.ops.mirror")


def mirror_to_all(opts: MirrorOptions, targets: list[str], clients: Clients, *,
                  on_bytes: Callable[[str, str, int, int], None] | None = None, stall: float = 10.0) -> MirrorReport:
    def progress(target: str) -> ProgressFn | None:
        if on_bytes is None:
            return None
        return lambda tag, done, total: on_bytes(target, tag, done, total)

    each = []
    shared: dict[str, Manifest] = {}
    for name in targets:
        one = replace(opts, lan_registry=name)
        one.validate()
        target = Target(one, clients, progress(name))
        target.manifest_cache = shared
        each.append(target)
    results: list[TagResult] = []
    source_read = 0
    for tag in dict.fromkeys(opts.tags):
        fan = FanOut(each, tag, stall)
        rows = fan.run()
        for target, row in zip(each, rows, strict=True):
            with_referrers(target, row)
        results += rows
        source_read += fan.source_read
    return MirrorReport(results, source_read=source_read)


class FanOut:
    """One tag to several targets."""

    def __init__(self, targets: list[Target], tag: str, stall: float) -> None:
        self.targets = targets
        self.tag = tag
        self.stall = stall
        self.rows = {id(t): TagResult(tag, "failed", registry=t.name) for t in targets}
        self.failed: set[int] = set()
        self.lock = threading.Lock()
        self.counters: dict[int, BytesFn] = {}
        self.source_read = 0  # bytes read from the source for this tag, a shared read counted once

    def run(self) -> list[TagResult]:
        started = time.monotonic()
        plans: list[tuple[Target, Plan]] = []
        for t in self.targets:
            try:
                todo = settle(t, self.tag, self.rows[id(t)])
            except Exception as exc:
                self.fail(t, exc)
                continue
            if todo is not None:
                plans.append((t, todo))
        if plans:
            ordered = largest_first(plans[0][1].blobs)  # one source: the same blobs
            total = sum(d.size for d in ordered)
            with cf.ThreadPoolExecutor(max_workers=plans[0][0].opts.parallel, thread_name_prefix="fanout") as pool:
                list(pool.map(lambda d: self.blob(d, plans, total), ordered))
            for t, todo in plans:
                if id(t) not in self.failed:
                    try:
                        publish(t, self.tag, todo, self.rows[id(t)])
                    except Exception as exc:
                        self.fail(t, exc)
        rows = [self.rows[id(t)] for t in self.targets]
        for row in rows:
            row.seconds = round(time.monotonic() - started, 3)
        return rows

    def fail(self, t: Target, exc: BaseException) -> None:
        with self.lock:
            self.failed.add(id(t))
            row = self.rows[id(t)]
            row.status, row.error = "failed", str(exc) if isinstance(exc, LanmirrorError) else describe(exc)
        log.error("%s → %s: %s", self.tag, t.name, row.error)

    def counter(self, t: Target, total: int) -> BytesFn:
        with self.lock:
            if id(t) not in self.counters:
                self.counters[id(t)] = both(t.byte_counter(self.tag, total), t.tally(self.rows[id(t)], "bytes_written"))
            return self.counters[id(t)]

    def reads_for(self, targets: list[Target]) -> BytesFn:
        """Counts a source read once for the run and once in the row of each target it serves."""
        adders = [t.tally(self.rows[id(t)], "bytes_read") for t in targets]

        def add(n: int) -> None:
            with self.lock:
                self.source_read += n
            for one in adders:
                one(n)

        return add

    def blob(self, d: Descriptor, plans: list[tuple[Target, Plan]], total: int) -> None:
        need: list[Target] = []
        for t, _ in plans:
            if id(t) in self.failed:
                continue
            row = self.rows[id(t)]
            try:
                if t.dst.head_blob(t.dst_repo, d.digest) is not None:
                    with self.lock:
                        row.blobs_skipped += 1
                elif any(o != t.dst_repo and t.dst.mount_blob(t.dst_repo, d.digest, o) for o in t.opts.mount_from):
                    with self.lock:
                        row.blobs_mounted += 1
                else:
                    need.append(t)
            except Exception as exc:
                self.fail(t, exc)
        if len(need) == 1:
            self.copy_alone(need[0], d, self.counter(need[0], total))
        elif need:
            self.copy_together(need, d, total)

    def copy_alone(self, t: Target, d: Descriptor, count: BytesFn) -> None:
        try:
            _, writer = copy_blob(t, d, count, self.reads_for([t]))
        except Exception as exc:
            self.fail(t, exc)
            return
        self.copied(t, d, writer)

    def copied(self, t: Target, d: Descriptor, writer: BlobWriter | None) -> None:
        with self.lock:
            row = self.rows[id(t)]
            row.blobs_copied += 1
            row.bytes += d.size
            if writer is not None:
                row.upload_resumes += writer.resumes
                row.upload_restarts += writer.restarts

    def copy_together(self, need: list[Target], d: Descriptor, total: int) -> None:
        tee = BlobTee(source_reader(need[0], d, read=self.reads_for(need)), len(need), stall=self.stall)
        pump = threading.Thread(target=tee.pump, name=f"tee {d.digest[:19]}", daemon=True)
        pump.start()

        def one(i: int, t: Target) -> None:
            shared = [True]

            def source(offset: int) -> Iterable[Chunk]:
                if shared[0] and offset == 0:
                    shared[0] = False
                    return tee.reader(i)
                # Dropped from the shared read, or resuming an upload: this target reads alone.
                return source_reader(t, d, offset, self.reads_for([t]))

            writer = BlobWriter(t.dst, t.dst_repo, d.digest, d.size, source, t.policy,
                                chunk_size=t.opts.upload_chunk, on_bytes=self.counter(t, total))
            try:
                t.policy.call(writer.run, f"copy blob {d.digest[:19]} to {t.name}", retry_if=retry_copy)
            except Exception as exc:
                self.fail(t, exc)
                return
            self.copied(t, d, writer)

        threads = [threading.Thread(target=one, args=(i, t), name=f"fanout {t.name}", daemon=True)
                   for i, t in enumerate(need)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        pump.join()
