"""What a mirror run is asked to do, checked before anything is read or written."""

from __future__ import annotations

from dataclasses import dataclass, field

from lanmirror.errors import BadInput
from lanmirror.name import DOCKER_HUB, normalize_registry, validate_repository, validate_tag
from lanmirror.remote.blobwrite import UPLOAD_CHUNK
from lanmirror.remote.ranges import RangeSettings
from lanmirror.transport import Timeouts

ENGINES = ("registry", "docker")
LAN_MODES = ("auto", "push", "proxy")
REFERRERS = ("all", "none")


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
    # all: what refers to each mirrored digest (cosign tags, OCI referrers) goes with it; none: the
    # image alone. `artifact_types`, when given, keeps only referrers of those types.
    referrers: str = "all"
    artifact_types: list[str] = field(default_factory=list)

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
        if self.referrers not in REFERRERS:
            raise BadInput(f"invalid referrers {self.referrers!r}: choose all or none")
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
