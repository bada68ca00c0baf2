"""The prune use case: delete LAN nightlies older than the window, by digest, and nothing else.

Only tags of the form `<base-tag>-<YYYYMMDD>` are ever considered. Deleting by digest removes
every tag that points at that manifest, so a digest still referenced by a kept tag (a nightly
that did not change from one day to the next) is left alone.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import datetime as dt
import logging
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from lanmirror.errors import BadInput, NotFound
from lanmirror.name import nightly_date, utc_today, validate_repository, validate_tag
from lanmirror.remote.manifest import INDEX_TYPES
from lanmirror.remote.referrers import COSIGN, cosign_tag, list_referrers
from lanmirror.remote.registry import Registry

log = logging.getLogger("lanmirror.ops.prune")

_ANY_NIGHTLY = re.compile(r"^(?P<base>.+)-(?P<date>\d{8})$")


@dataclass
class PruneReport:
    deleted: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    shared: list[str] = field(default_factory=list)  # old, but its digest is still used by a kept tag
    ignored: list[str] = field(default_factory=list)  # not a nightly tag
    referrers_deleted: int = 0  # signatures, attestations, SBOMs of the deleted images (and the fallback indexes)
    dry_run: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _date_of(tag: str, base_tags: list[str]) -> dt.date | None:
    if base_tags:
        for base in base_tags:
            day = nightly_date(tag, base)
            if day:
                return day
        return None
    m = _ANY_NIGHTLY.match(tag)
    return nightly_date(tag, m.group("base")) if m else None


def prune(registry: Registry, repo: str, keep_days: int, *, base_tags: list[str] | None = None,
          dry_run: bool = False, today: dt.date | None = None) -> PruneReport:
    validate_repository(repo)
    if not isinstance(keep_days, int) or keep_days < 1:
        raise BadInput(f"invalid --keep-days {keep_days!r}: keep at least 1 day")
    bases = [validate_tag(b) for b in (base_tags or [])]
    cutoff = (today or utc_today()) - dt.timedelta(days=keep_days - 1)
    report = PruneReport(dry_run=dry_run)
    old: list[str] = []
    for tag in sorted(registry.list_tags(repo)):
        day = _date_of(tag, bases)
        if day is None:
            report.ignored.append(tag)
        elif day < cutoff:
            old.append(tag)
        else:
            report.kept.append(tag)
    if not old:
        return report
    everything = old + report.kept + report.ignored
    with cf.ThreadPoolExecutor(max_workers=8) as pool:
        heads = dict(zip(everything, pool.map(lambda t: registry.head_manifest(repo, t), everything), strict=True))
    protected = {h.digest for t, h in heads.items() if h is not None and t not in old}
    doomed: dict[str, list[str]] = {}
    for tag in old:
        head = heads[tag]
        if head is None:
            continue
        if head.digest in protected:
            report.shared.append(tag)
        else:
            doomed.setdefault(head.digest, []).append(tag)
    for digest, tags in doomed.items():
        report.referrers_deleted += delete_referrers(registry, repo, digest, dry_run)
        if not dry_run:
            registry.delete_manifest(repo, digest)
        report.deleted += tags
        log.info("%s %s (%s)", "would delete" if dry_run else "deleted", ", ".join(tags), digest[:19])
    return report


def delete_referrers(registry: Registry, repo: str, digest: str, dry_run: bool) -> int:
    """What refers to a deleted image, or to one of its platforms' manifests, goes with it: its
    cosign tags, its OCI referrers and the fallback tag listing them. A kept image's stay: they
    name another subject. Returns how many manifests were (or would be) deleted."""
    subjects = [digest]
    head = registry.head_manifest(repo, digest)
    if head is not None and head.media_type in INDEX_TYPES:
        subjects += [c.digest for c in registry.get_manifest(repo, digest).children()]
    doomed: list[str] = []
    for subject in subjects:
        for kind in COSIGN:
            found = registry.head_manifest(repo, cosign_tag(subject, kind))
            if found is not None:
                doomed.append(found.digest)
        listed = list_referrers(registry, repo, subject)
        doomed += [r.digest for r in listed.items]
        if not listed.api and listed.index is not None:
            doomed.append(listed.index.digest)
    for gone in dict.fromkeys(doomed):
        if not dry_run:
            with contextlib.suppress(NotFound):  # listed, but gone already (another prune, a stale entry)
                registry.delete_manifest(repo, gone)
    if doomed:
        log.info("%s %d signature(s)/referrer(s) of %s", "would delete" if dry_run else "deleted", len(doomed),
                 digest[:19])
    return len(dict.fromkeys(doomed))
