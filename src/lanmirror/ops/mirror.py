"""The mirror-to-lan use case: copy tags from the source registry to a LAN registry.

Default engine `registry`: registry-to-registry, no daemon and no local disk. Per blob: HEAD on
the target (skip) → cross-repository mount → streamed GET piped into the upload, hashed on the
way. Manifests are copied byte for byte (so digests survive), children of an index first, and
the tag's manifest is PUT last, only after every blob has been verified present on the target.
A rerun after an interruption therefore skips what already arrived and can never expose a tag
whose blobs are missing.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from lanmirror.cache import read_json, write_json
from lanmirror.errors import BadInput, DigestMismatch, LanmirrorError, RegistryError
from lanmirror.name import DOCKER_HUB, normalize_registry, repository_on, validate_repository, validate_tag
from lanmirror.ops.clients import Clients
from lanmirror.remote.blobread import BlobReader, RangeSettings
from lanmirror.remote.blobtee import BlobTee
from lanmirror.remote.blobwrite import UPLOAD_CHUNK, BlobWriter
from lanmirror.remote.registry import Descriptor, Manifest, manifest_tree
from lanmirror.retry import RetryPolicy, describe, is_transient
from lanmirror.transport import Timeouts

log = logging.getLogger("lanmirror.ops.mirror")

ENGINES = ("registry", "docker")
LAN_MODES = ("auto", "push", "proxy")


@dataclass
class MirrorOptions:
    repo: str
    tags: list[str]
    lan_registry: str
    source_registry: str = DOCKER_HUB
    engine: str = "registry"
    dry_run: bool = False
    overwrite: bool = True
    parallel: int = 4
    mount_from: list[str] = field(default_factory=list)
    timeouts: Timeouts = field(default_factory=lambda: Timeouts(connect=5.0, read=60.0))
    ranges: RangeSettings = field(default_factory=RangeSettings)
    # Blobs larger than this go up as a chunked upload that resumes after a failed request
    # (0: always one streamed PUT, restarted on failure).
    upload_chunk: int = UPLOAD_CHUNK
    # push: a registry we write to; proxy: a pull-through cache (Distribution proxy mode, Harbor proxy
    # projects) that refuses pushes and is warmed by reading through it; auto: ask the target.
    lan_mode: str = "auto"

    def validate(self) -> None:
        validate_repository(self.repo)
        self.source_registry = normalize_registry(self.source_registry)
        if not self.lan_registry:
            raise BadInput("no LAN registry: give --lan-registry HOST[:PORT] or set LANMIRROR_LAN_REGISTRY")
        self.lan_registry = normalize_registry(self.lan_registry)
        if self.lan_registry == self.source_registry:
            raise BadInput(f"source and LAN registry are the same ({self.lan_registry})")
        if self.lan_mode not in LAN_MODES:
            raise BadInput(f"invalid lan-mode {self.lan_mode!r}: choose one of {', '.join(LAN_MODES)}")
        if self.engine not in ENGINES:
            raise BadInput(f"invalid engine {self.engine!r}: choose one of {', '.join(ENGINES)}")
        if not 1 <= self.parallel <= 64:
            raise BadInput(f"invalid parallelism {self.parallel!r}: choose 1 to 64")
        if not self.tags:
            raise BadInput("no tags to mirror: give --tag, --tag-file, --from-artifact or --backfill")
        for tag in self.tags:
            validate_tag(tag)
        for repo in self.mount_from:
            validate_repository(repo)
        if self.upload_chunk < 0:
            raise BadInput(f"invalid upload chunk size {self.upload_chunk!r}: give 0 (one PUT) or a size in bytes")


@dataclass
class TagResult:
    tag: str
    status: str  # copied | replaced | unchanged | warmed | dry-run | failed
    registry: str = ""  # the target it was mirrored to
    digest: str = ""
    previous_digest: str = ""
    blobs_copied: int = 0
    blobs_skipped: int = 0
    blobs_mounted: int = 0
    bytes: int = 0
    upload_resumes: int = 0
    upload_restarts: int = 0
    seconds: float = 0.0
    error: str = ""
    plan: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)  # non-distributable layers, not copied

    @property
    def ok(self) -> bool:
        return self.status != "failed"

    @property
    def mb_per_s(self) -> float:
        return self.bytes / 1e6 / self.seconds if self.seconds > 0 else 0.0


@dataclass
class MirrorReport:
    results: list[TagResult]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    @property
    def bytes(self) -> int:
        return sum(r.bytes for r in self.results)

    def mirrored(self) -> list[dict[str, str]]:
        return [{"tag": r.tag, "digest": r.digest} for r in self.results if r.status in ("copied", "replaced",
                                                                                           "unchanged", "warmed")]

    def skipped(self) -> list[str]:
        return [r.tag for r in self.results if r.status == "unchanged"]

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "mirrored": self.mirrored(), "bytes": self.bytes, "skipped": self.skipped(),
                "results": [{**asdict(r), "mb_per_s": round(r.mb_per_s, 1)} for r in self.results]}


BytesFn = Callable[[int], None]



MODES_NOTE = "lan-modes.json"
MODE_LIFETIME = 24 * 3600.0


def target_mode(registry: str, accepts_pushes: Callable[[], bool]) -> str:
    """push or proxy, asked once a day per registry (an upload session opened and cancelled): a
    no-op mirror stays at one HEAD per side. The note is runner-private (`lanmirror.cache`). A wrong
    one costs warmth, never integrity: warming a push registry fails loudly (its tag is missing),
    and pushing to a pull-through cache is refused by it; which digest a runner accepts is decided
    by resolve's check against the Hub, not here."""
    now = time.time()
    notes = read_json(MODES_NOTE)
    entry = notes.get(registry)
    if isinstance(entry, dict) and entry.get("mode") in ("push", "proxy") and float(entry.get("until", 0)) > now:
        return str(entry["mode"])
    mode = "push" if accepts_pushes() else "proxy"
    notes[registry] = {"mode": mode, "until": now + MODE_LIFETIME}
    write_json(MODES_NOTE, notes)
    return mode


def blobs_to_copy(tag: str, manifests: list[Manifest], result: TagResult) -> dict[str, Descriptor]:
    """The blobs the image manifests name, once each. Non-distributable layers (with `urls`) are
    left out with a warning: their manifest is copied as it is, and a pull fetches them from the
    URLs, as it would from the Hub."""
    blobs: dict[str, Descriptor] = {}
    for m in manifests:
        if m.is_index:
            continue
        for d in m.blobs():
            if d.distributable:
                blobs.setdefault(d.digest, d)
            elif d.digest not in result.foreign:
                result.foreign.append(d.digest)
                log.warning("%s: layer %s is non-distributable (its manifest lists URLs): the manifest is "
                            "copied, the layer is not", tag, d.digest[:19])
    return blobs


@dataclass
class _Plan:
    """What one target still needs for a tag: the blobs, then the manifests (the tagged one last)."""

    digest: str
    manifests: list[Manifest]
    blobs: dict[str, Descriptor]
    replacing: bool


class _Copier:
    """Copies one repository's tags between two registries."""

    def __init__(self, opts: MirrorOptions, clients: Clients,
                 on_bytes: Callable[[str, int, int], None] | None) -> None:
        self.opts = opts
        self.clients = clients
        self.policy: RetryPolicy = clients.policy
        self.on_bytes = on_bytes
        src, dst = opts.source_registry, opts.lan_registry
        # Every blob worker and every range in flight needs its own keep-alive connection; a pool
        # smaller than that discards and reopens connections on every range.
        pool = opts.parallel * 2 + opts.ranges.window + 4
        self.src = clients.registry(src, timeouts=opts.timeouts, pool_size=pool)
        self.dst = clients.registry(dst, timeouts=opts.timeouts, pool_size=pool)
        # One budget of in-flight ranges for all blobs copied at once: memory stays at
        # ranges x chunk however many large blobs run in parallel.
        self.range_budget = threading.Semaphore(opts.ranges.window)
        self.src_repo = self._repo(src)
        self.dst_repo = self._repo(dst)
        self._pull_through: bool | None = None
        # Source manifests by digest; mirror_to_all shares one between its targets, so that the
        # source is asked for each once (on Docker Hub a manifest GET counts as a pull).
        self.manifest_cache: dict[str, Manifest] = {}

    def _repo(self, registry: str) -> str:
        return repository_on(registry, self.opts.repo)

    # -- one tag ----------------------------------------------------------------------------

    def copy_tag(self, tag: str) -> TagResult:
        started = time.monotonic()
        result = TagResult(tag, "failed", registry=self.opts.lan_registry)
        try:
            self._copy_tag(tag, result)
        except LanmirrorError as exc:
            result.status, result.error = "failed", str(exc)
            log.error("%s: %s", tag, exc)
        except Exception as exc:  # a network library error we did not classify: report, go on
            result.status, result.error = "failed", describe(exc)
            log.error("%s: %s", tag, describe(exc))
        result.seconds = round(time.monotonic() - started, 3)
        if result.status in ("copied", "replaced"):
            log.info("%s: %s %s (%d blobs copied, %d mounted, %d already there; %.1f MB in %.1fs, %.0f MB/s)",
                     tag, result.status, result.digest[:19], result.blobs_copied, result.blobs_mounted,
                     result.blobs_skipped, result.bytes / 1e6, result.seconds, result.mb_per_s)
        return result

    def _copy_tag(self, tag: str, result: TagResult) -> None:
        plan = self.prepare(tag, result)
        if plan is not None:
            self._copy_blobs(tag, plan.blobs, result)
            self.finish(tag, plan, result)

    def prepare(self, tag: str, result: TagResult) -> _Plan | None:
        """Everything before the blobs: the source's digest, whether the target already has it (or
        is a pull-through cache to warm, or gets the docker engine), and the manifests to copy.
        None when the tag is already settled for this target."""
        head = self.src.head_manifest(self.src_repo, tag)
        if head is None:
            raise RegistryError(f"{self.opts.source_registry}/{self.src_repo}:{tag} does not exist on the source")
        result.digest = head.digest
        if self.pull_through():
            # Its manifest HEAD answers from upstream while it holds no blob: "unchanged" would be a
            # false claim. Reading through it is what fills it.
            self._warm(tag, head.digest, result)
            return None
        existing = self.dst.head_manifest(self.dst_repo, tag)
        if existing is not None and existing.digest == head.digest:
            result.status = "unchanged"
            log.info("%s: already on %s with digest %s", tag, self.opts.lan_registry, head.digest[:19])
            return None
        if existing is not None:
            result.previous_digest = existing.digest
            if not self.opts.overwrite:
                raise RegistryError(f"{self.opts.lan_registry}/{self.dst_repo}:{tag} exists with another digest "
                                    f"({existing.digest[:19]}… vs {head.digest[:19]}…) and overwriting is off")
        if self.opts.engine == "docker":
            self._copy_with_docker(tag, result)
            return None
        manifests = manifest_tree(self.source_manifest(head.digest), self.source_manifest)
        blobs = blobs_to_copy(tag, manifests, result)
        if self.opts.dry_run:
            self._plan(tag, result, blobs)
            result.status = "dry-run"
            return None
        return _Plan(head.digest, manifests, blobs, existing is not None)

    def source_manifest(self, digest: str) -> Manifest:
        cached = self.manifest_cache.get(digest)
        if cached is None:
            cached = self.manifest_cache[digest] = self.src.get_manifest(self.src_repo, digest)
        return cached

    def finish(self, tag: str, plan: _Plan, result: TagResult) -> None:
        """Manifests last, after every blob is verified present; then read the tag back."""
        self._verify_present(plan.blobs)
        for m in plan.manifests[:-1]:
            self.dst.put_manifest(self.dst_repo, m.digest, m)
        stored = self.dst.put_manifest(self.dst_repo, tag, plan.manifests[-1])
        check = self.dst.head_manifest(self.dst_repo, tag)
        if check is None or check.digest != plan.digest or stored != plan.digest:
            raise DigestMismatch(f"{self.opts.lan_registry}: {tag} reads back as "
                                 f"{check.digest if check else 'missing'}, expected {plan.digest}")
        result.status = "replaced" if plan.replacing else "copied"

    def pull_through(self) -> bool:
        if self._pull_through is None:
            mode = self.opts.lan_mode
            if mode == "auto":
                mode = target_mode(self.opts.lan_registry, lambda: self.dst.accepts_pushes(self.dst_repo))
            self._pull_through = mode == "proxy"
            if self._pull_through:
                log.info("%s is a pull-through cache: warming it by reading through it", self.opts.lan_registry)
        return self._pull_through

    def _warm(self, tag: str, digest: str, result: TagResult) -> None:
        top = self.dst.get_manifest(self.dst_repo, tag)
        if top.digest != digest:
            raise DigestMismatch(f"{self.opts.lan_registry}: the pull-through cache serves {tag} as "
                                 f"{top.digest[:19]}…, the source has {digest[:19]}… (a stale cache)")
        manifests = manifest_tree(top, lambda digest: self.dst.get_manifest(self.dst_repo, digest))
        blobs = blobs_to_copy(tag, manifests, result)
        if self.opts.dry_run:
            result.plan += [f"warm  {d.digest[:19]} ({d.size} bytes)" for d in blobs.values()]
            result.status = "dry-run"
            return
        count = self.byte_counter(tag, sum(d.size for d in blobs.values()))

        def one(d: Descriptor) -> int:
            return int(self.policy.call(lambda: self.dst.read_blob(self.dst_repo, d.digest, count),
                                        f"warm blob {d.digest[:19]}",
                                        retry_if=lambda exc: is_transient(exc) or isinstance(exc, DigestMismatch)))

        with cf.ThreadPoolExecutor(max_workers=self.opts.parallel, thread_name_prefix="warm") as pool:
            result.bytes = sum(pool.map(one, sorted(blobs.values(), key=lambda d: -d.size)))
        result.blobs_copied = len(blobs)
        result.status = "warmed"

    def _plan(self, tag: str, result: TagResult, blobs: dict[str, Descriptor]) -> None:
        for d in blobs.values():
            if self.dst.head_blob(self.dst_repo, d.digest) is not None:
                result.blobs_skipped += 1
                result.plan.append(f"skip  {d.digest[:19]} ({d.size} bytes, already there)")
            else:
                result.blobs_copied += 1
                result.bytes += d.size
                result.plan.append(f"copy  {d.digest[:19]} ({d.size} bytes)")
        result.plan.append(f"then PUT manifest {tag}")

    def byte_counter(self, tag: str, total: int) -> BytesFn:
        """Progress of one tag to this target: bytes moved so far, reported to on_bytes (thread-safe)."""
        lock = threading.Lock()
        moved = [0]

        def count(n: int) -> None:
            with lock:
                moved[0] += n
                if self.on_bytes:
                    self.on_bytes(tag, moved[0], total)

        return count

    def _copy_blobs(self, tag: str, blobs: dict[str, Descriptor], result: TagResult) -> None:
        lock = threading.Lock()
        count = self.byte_counter(tag, sum(d.size for d in blobs.values()))

        def one(d: Descriptor) -> str:
            outcome, writer = self.copy_blob(d, count)
            if writer is not None:
                with lock:
                    result.upload_resumes += writer.resumes
                    result.upload_restarts += writer.restarts
            return outcome

        with cf.ThreadPoolExecutor(max_workers=self.opts.parallel, thread_name_prefix="blob") as pool:
            # Largest first: the long poles start early, small blobs fill the gaps.
            ordered = sorted(blobs.values(), key=lambda d: -d.size)
            for d, outcome in zip(ordered, pool.map(one, ordered), strict=True):
                if outcome == "skipped":
                    result.blobs_skipped += 1
                elif outcome == "mounted":
                    result.blobs_mounted += 1
                else:
                    result.blobs_copied += 1
                    result.bytes += d.size

    def copy_blob(self, d: Descriptor, count: BytesFn) -> tuple[str, BlobWriter | None]:
        if self.dst.head_blob(self.dst_repo, d.digest) is not None:
            return "skipped", None
        opened = None  # a refused mount opens an upload session: the upload goes into it
        for other in self.opts.mount_from:
            if other != self.dst_repo:
                if opened is not None:
                    self.dst.cancel_upload(self.dst_repo, opened)
                mounted, opened = self.dst.mount_or_open(self.dst_repo, d.digest, other)
                if mounted:
                    return "mounted", None

        def source(offset: int) -> BlobReader:
            return BlobReader(self.src, self.src_repo, d.digest, d.size, self.policy, self.opts.ranges,
                              self.range_budget, start=offset)

        writer = BlobWriter(self.dst, self.dst_repo, d.digest, d.size, source, self.policy,
                            chunk_size=self.opts.upload_chunk, on_bytes=count, session=opened)
        # The writer resumes a failed upload itself; what reaches this policy is a corrupt read (a
        # flaky hop: fetch again, never store bad bytes) or a source whose own resumes ran out.
        self.policy.call(writer.run, f"copy blob {d.digest[:19]}",
                         retry_if=lambda exc: is_transient(exc) or isinstance(exc, DigestMismatch))
        return "copied", writer

    def _verify_present(self, blobs: dict[str, Descriptor]) -> None:
        """Every blob must be on the target before any manifest referencing it goes up."""
        with cf.ThreadPoolExecutor(max_workers=self.opts.parallel) as pool:
            sizes = dict(zip(blobs, pool.map(lambda dg: self.dst.head_blob(self.dst_repo, dg), blobs), strict=True))
        missing = [dg for dg, size in sizes.items() if size is None]
        if missing:
            raise RegistryError(f"{self.opts.lan_registry}: {len(missing)} blob(s) missing after the copy "
                                f"(first {missing[0][:19]}); the manifest was not pushed")

    def _copy_with_docker(self, tag: str, result: TagResult) -> None:
        engine = self.clients.engine()
        if engine is None:
            raise LanmirrorError("engine 'docker' needs the Docker daemon")
        src_ref = f"{self.src.transport.registry}/{self.src_repo}:{tag}" if self.opts.source_registry != DOCKER_HUB \
            else f"{self.src_repo}:{tag}"
        if self.opts.dry_run:
            result.status = "dry-run"
            result.plan.append(f"docker pull {src_ref}; docker tag; docker push {self.opts.lan_registry}/"
                               f"{self.dst_repo}:{tag}")
            return
        source_creds = self.clients.credentials(self.opts.source_registry)
        self.policy.call(lambda: engine.pull(src_ref, source=self.opts.source_registry, creds=source_creds),
                         f"docker pull {src_ref}")
        target_repo = f"{self.opts.lan_registry}/{self.dst_repo}"
        engine.tag(src_ref, target_repo, tag)
        pushed = engine.push(target_repo, tag, source=self.opts.lan_registry,
                             creds=self.clients.credentials(self.opts.lan_registry))
        if pushed and pushed != result.digest:
            log.warning("%s: the daemon pushed %s, the source has %s (docker may re-encode manifests)", tag,
                        pushed[:19], result.digest[:19])
            result.digest = pushed
        result.status = "replaced" if result.previous_digest else "copied"


def mirror(opts: MirrorOptions, clients: Clients, *,
           on_bytes: Callable[[str, int, int], None] | None = None) -> MirrorReport:
    """Mirror every tag in `opts.tags` to `opts.lan_registry`; a failing tag does not stop the others."""
    opts.validate()
    copier = _Copier(opts, clients, on_bytes)
    seen: set[str] = set()
    results = []
    for tag in opts.tags:
        if tag in seen:
            continue
        seen.add(tag)
        results.append(copier.copy_tag(tag))
    return MirrorReport(results)


def mirror_to_all(opts: MirrorOptions, targets: list[str], clients: Clients, *,
                  on_bytes: Callable[[str, str, int, int], None] | None = None, stall: float = 10.0) -> MirrorReport:
    """Every tag to every target, each source blob read once for all the targets that lack it (a
    bounded tee, `remote.blobtee`). A target that fails or falls behind is dropped for that blob
    and retried alone; the others go on. One result per tag and target."""
    def progress(target: str) -> Callable[[str, int, int], None] | None:
        if on_bytes is None:
            return None
        return lambda tag, done, total: on_bytes(target, tag, done, total)

    copiers = []
    shared: dict[str, Manifest] = {}
    for target in targets:
        one = replace(opts, lan_registry=target)
        one.validate()
        copier = _Copier(one, clients, progress(target))
        copier.manifest_cache = shared
        copiers.append(copier)
    results: list[TagResult] = []
    for tag in dict.fromkeys(opts.tags):
        results += _FanOut(copiers, tag, stall).run()
    return MirrorReport(results)


class _FanOut:
    """One tag to several targets."""

    def __init__(self, copiers: list[_Copier], tag: str, stall: float) -> None:
        self.copiers = copiers
        self.tag = tag
        self.stall = stall
        self.rows = {id(c): TagResult(tag, "failed", registry=c.opts.lan_registry) for c in copiers}
        self.failed: set[int] = set()
        self.lock = threading.Lock()
        self.counters: dict[int, BytesFn] = {}

    def run(self) -> list[TagResult]:
        started = time.monotonic()
        plans: list[tuple[_Copier, _Plan]] = []
        for c in self.copiers:
            try:
                plan = c.prepare(self.tag, self.rows[id(c)])
            except Exception as exc:
                self.fail(c, exc)
                continue
            if plan is not None:
                plans.append((c, plan))
        if plans:
            blobs = sorted(plans[0][1].blobs.values(), key=lambda d: -d.size)  # one source: the same blobs
            total = sum(d.size for d in blobs)
            with cf.ThreadPoolExecutor(max_workers=plans[0][0].opts.parallel, thread_name_prefix="fanout") as pool:
                list(pool.map(lambda d: self.blob(d, plans, total), blobs))
            for c, plan in plans:
                if id(c) not in self.failed:
                    try:
                        c.finish(self.tag, plan, self.rows[id(c)])
                    except Exception as exc:
                        self.fail(c, exc)
        rows = [self.rows[id(c)] for c in self.copiers]
        for row in rows:
            row.seconds = round(time.monotonic() - started, 3)
        return rows

    def fail(self, c: _Copier, exc: BaseException) -> None:
        with self.lock:
            self.failed.add(id(c))
            row = self.rows[id(c)]
            row.status, row.error = "failed", str(exc) if isinstance(exc, LanmirrorError) else describe(exc)
        log.error("%s → %s: %s", self.tag, c.opts.lan_registry, row.error)

    def counter(self, c: _Copier, total: int) -> BytesFn:
        with self.lock:
            if id(c) not in self.counters:
                self.counters[id(c)] = c.byte_counter(self.tag, total)
            return self.counters[id(c)]

    def blob(self, d: Descriptor, plans: list[tuple[_Copier, _Plan]], total: int) -> None:
        need: list[_Copier] = []
        for c, _ in plans:
            if id(c) in self.failed:
                continue
            row = self.rows[id(c)]
            try:
                if c.dst.head_blob(c.dst_repo, d.digest) is not None:
                    with self.lock:
                        row.blobs_skipped += 1
                elif any(o != c.dst_repo and c.dst.mount_blob(c.dst_repo, d.digest, o) for o in c.opts.mount_from):
                    with self.lock:
                        row.blobs_mounted += 1
                else:
                    need.append(c)
            except Exception as exc:
                self.fail(c, exc)
        if len(need) == 1:
            self.copy_alone(need[0], d, self.counter(need[0], total))
        elif need:
            self.copy_together(need, d, total)

    def copy_alone(self, c: _Copier, d: Descriptor, count: BytesFn) -> None:
        try:
            _, writer = c.copy_blob(d, count)
        except Exception as exc:
            self.fail(c, exc)
            return
        self.copied(c, d, writer)

    def copied(self, c: _Copier, d: Descriptor, writer: BlobWriter | None) -> None:
        with self.lock:
            row = self.rows[id(c)]
            row.blobs_copied += 1
            row.bytes += d.size
            if writer is not None:
                row.upload_resumes += writer.resumes
                row.upload_restarts += writer.restarts

    def copy_together(self, need: list[_Copier], d: Descriptor, total: int) -> None:
        lead = need[0]
        tee = BlobTee(BlobReader(lead.src, lead.src_repo, d.digest, d.size, lead.policy, lead.opts.ranges,
                                 lead.range_budget), len(need), stall=self.stall)
        pump = threading.Thread(target=tee.pump, name=f"tee {d.digest[:19]}", daemon=True)
        pump.start()

        def one(i: int, c: _Copier) -> None:
            shared = [True]

            def source(offset: int) -> Iterable[bytes]:
                if shared[0] and offset == 0:
                    shared[0] = False
                    return tee.reader(i)
                # Dropped from the shared read, or resuming an upload: this target reads alone.
                return BlobReader(c.src, c.src_repo, d.digest, d.size, c.policy, c.opts.ranges, c.range_budget,
                                  start=offset)

            writer = BlobWriter(c.dst, c.dst_repo, d.digest, d.size, source, c.policy,
                                chunk_size=c.opts.upload_chunk, on_bytes=self.counter(c, total))
            try:
                c.policy.call(writer.run, f"copy blob {d.digest[:19]} to {c.opts.lan_registry}",
                              retry_if=lambda exc: is_transient(exc) or isinstance(exc, DigestMismatch))
            except Exception as exc:
                self.fail(c, exc)
                return
            self.copied(c, d, writer)

        threads = [threading.Thread(target=one, args=(i, c), name=f"fanout {c.opts.lan_registry}", daemon=True)
                   for i, c in enumerate(need)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        pump.join()
