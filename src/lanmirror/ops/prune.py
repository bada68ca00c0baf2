"""The prune use case: delete LAN nightlies older than the window, by digest, and nothing else.

Only tags of the form `<base-tag>-<YYYYMMDD>` are ever considered. Deleting by digest removes
every tag that points at that manifest, so a digest still referenced by a kept tag (a nightly
that did not change from one day to the next) is left alone.
"""

from __future__ import annotations

import concurrent.futures as cf
import datetime as dt
import logging
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from lanmirror.errors import BadInput
from lanmirror.name import nightly_date, utc_today, validate_repository, validate_tag
from lanmirror.remote.registry import Registry

log = logging.getLogger("lanmirror.ops.prune")

_ANY_NIGHTLY = re.compile(r"^(?P<base>.+)-(?P<date>\d{8})$")


@dataclass
class PruneReport:
    deleted: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    shared: list[str] = field(default_factory=list)  # old, but its digest is still used by a kept tag
    ignored: list[str] = field(default_factory=list)  # not a nightly tag
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
        if not dry_run:
            registry.delete_manifest(repo, digest)
        report.deleted += tags
        log.info("%s %s (%s)", "would delete" if dry_run else "deleted", ", ".join(tags), digest[:19])
    return report
