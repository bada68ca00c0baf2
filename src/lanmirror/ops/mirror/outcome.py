"""What a mirror run did, per tag and target: the rows the CLI prints, the action's outputs and the
job summary are all read from these."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


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
    # What actually moved, measured on the wire side of the copy (resumes and re-reads included):
    # bytes read from the source for this target (in a fan-out, a blob read once for several
    # targets counts in each of their rows; the report's `source_bytes_read` counts it once), and
    # bytes written to the target. A warmed pull-through cache is read through, never written.
    bytes_read: int = 0
    bytes_written: int = 0
    referrers_copied: int = 0  # signatures, attestations, SBOMs written to the target for this tag
    upload_resumes: int = 0
    upload_restarts: int = 0
    seconds: float = 0.0
    error: str = ""
    plan: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)  # non-distributable layers, not copied

    @property
    def ok(self) -> bool:
        return self.status != "failed" and not self.error

    @property
    def mb_per_s(self) -> float:
        return self.bytes / 1e6 / self.seconds if self.seconds > 0 else 0.0


@dataclass
class MirrorReport:
    results: list[TagResult]
    # Bytes read from the source for the whole run, each read counted once (None: the rows' sum).
    source_read: int | None = None

    @property
    def source_bytes_read(self) -> int:
        return self.source_read if self.source_read is not None else sum(r.bytes_read for r in self.results)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    @property
    def bytes(self) -> int:
        return sum(r.bytes for r in self.results)

    @property
    def referrers(self) -> int:
        return sum(r.referrers_copied for r in self.results)

    def mirrored(self) -> list[dict[str, str]]:
        return [{"tag": r.tag, "digest": r.digest} for r in self.results if r.status in ("copied", "replaced",
                                                                                           "unchanged", "warmed")]

    def skipped(self) -> list[str]:
        return [r.tag for r in self.results if r.status == "unchanged"]

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "mirrored": self.mirrored(), "bytes": self.bytes, "skipped": self.skipped(),
                "source_bytes_read": self.source_bytes_read, "referrers": self.referrers,
                "results": [{**asdict(r), "mb_per_s": round(r.mb_per_s, 1)} for r in self.results]}
