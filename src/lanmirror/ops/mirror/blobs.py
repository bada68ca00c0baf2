"""Moving blobs to one target: skip what is there, mount what another repository holds, else
stream it from the source (parallel ranges where that is faster) into a resumable upload, hashed
on the way. A pull-through target is warmed by reading through it instead."""

from __future__ import annotations

import concurrent.futures as cf
import threading
from collections.abc import Iterable, Iterator

from lanmirror.errors import DigestMismatch
from lanmirror.ops.mirror.context import BytesFn, Target
from lanmirror.ops.mirror.outcome import TagResult
from lanmirror.ops.mirror.plan import blobs_to_copy
from lanmirror.remote.blobread import BlobReader
from lanmirror.remote.blobwrite import BlobWriter
from lanmirror.remote.hashing import Chunk
from lanmirror.remote.manifest import Descriptor, manifest_tree
from lanmirror.retry import is_transient


def retry_copy(exc: BaseException) -> bool:
    """The writer resumes a failed upload itself; what reaches the policy is a corrupt read (a flaky
    hop: fetch again, never store bad bytes) or a source whose own resumes ran out."""
    return is_transient(exc) or isinstance(exc, DigestMismatch)


def largest_first(blobs: dict[str, Descriptor]) -> list[Descriptor]:
    """The long poles start early, small blobs fill the gaps."""
    return sorted(blobs.values(), key=lambda d: -d.size)


def copy_blobs(t: Target, tag: str, blobs: dict[str, Descriptor], result: TagResult) -> None:
    lock = threading.Lock()
    count = both(t.byte_counter(tag, sum(d.size for d in blobs.values())), t.tally(result, "bytes_written"))
    read = t.tally(result, "bytes_read")

    def one(d: Descriptor) -> str:
        outcome, writer = copy_blob(t, d, count, read)
        if writer is not None:
            with lock:
                result.upload_resumes += writer.resumes
                result.upload_restarts += writer.restarts
        return outcome

    with cf.ThreadPoolExecutor(max_workers=t.opts.parallel, thread_name_prefix="blob") as pool:
        ordered = largest_first(blobs)
        for d, outcome in zip(ordered, pool.map(one, ordered), strict=True):
            if outcome == "skipped":
                result.blobs_skipped += 1
            elif outcome == "mounted":
                result.blobs_mounted += 1
            else:
                result.blobs_copied += 1
                result.bytes += d.size


def both(first: BytesFn, second: BytesFn) -> BytesFn:
    def add(n: int) -> None:
        first(n)
        second(n)

    return add


def copy_blob(t: Target, d: Descriptor, count: BytesFn, read: BytesFn) -> tuple[str, BlobWriter | None]:
    if t.dst.head_blob(t.dst_repo, d.digest) is not None:
        return "skipped", None
    opened = None  # a refused mount opens an upload session: the upload goes into it
    for other in t.opts.mount_from:
        if other != t.dst_repo:
            if opened is not None:
                t.dst.cancel_upload(t.dst_repo, opened)
            mounted, opened = t.dst.mount_or_open(t.dst_repo, d.digest, other)
            if mounted:
                return "mounted", None
    writer = BlobWriter(t.dst, t.dst_repo, d.digest, d.size, lambda offset: source_reader(t, d, offset, read), t.policy,
                        chunk_size=t.opts.upload_chunk, on_bytes=count, session=opened)
    t.policy.call(writer.run, f"copy blob {d.digest[:19]}", retry_if=retry_copy)
    return "copied", writer


def source_reader(t: Target, d: Descriptor, offset: int = 0, read: BytesFn | None = None) -> Iterable[Chunk]:
    """The source's bytes of `d` from `offset` (an upload resuming after a break), each chunk
    counted by `read` as it arrives."""
    reader = BlobReader(t.src, t.src_repo, d.digest, d.size, t.policy, t.opts.ranges, t.range_budget, start=offset)
    return reader if read is None else counted(reader, read)


def counted(chunks: Iterable[Chunk], read: BytesFn) -> Iterator[Chunk]:
    for chunk in chunks:
        read(len(chunk))
        yield chunk


def warm(t: Target, tag: str, digest: str, result: TagResult) -> None:
    """Fill a pull-through cache by reading every blob through it, hashed (nothing is kept here)."""
    top = t.dst.get_manifest(t.dst_repo, tag)
    if top.digest != digest:
        raise DigestMismatch(f"{t.name}: the pull-through cache serves {tag} as {top.digest[:19]}…, the source has "
                    f"{digest[:19]}… (a stale cache)")
    manifests = manifest_tree(top, lambda digest: t.dst.get_manifest(t.dst_repo, digest))
    blobs = blobs_to_copy(tag, manifests, result)
    if t.opts.dry_run:
        result.plan += [f"warm  {d.digest[:19]} ({d.size} bytes)" for d in blobs.values()]
        result.status = "dry-run"
        return
    count = both(t.byte_counter(tag, sum(d.size for d in blobs.values())), t.tally(result, "bytes_read"))

    def one(d: Descriptor) -> int:
        return int(t.policy.call(lambda: t.dst.read_blob(t.dst_repo, d.digest, count),
                                 f"warm blob {d.digest[:19]}", retry_if=retry_copy))

    with cf.ThreadPoolExecutor(max_workers=t.opts.parallel, thread_name_prefix="warm") as pool:
        result.bytes = sum(pool.map(one, largest_first(blobs)))
    result.blobs_copied = len(blobs)
    result.status = "warmed"
