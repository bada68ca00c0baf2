"""Pruning a runner's own Docker cache: older nightlies of one base tag go, the newest N stay, and
so does anything a container (running or stopped) was created from. Runner disks are bounded
without `docker system prune`, which would also take what other jobs are using."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

from lanmirror.daemon import Engine
from lanmirror.errors import BadInput
from lanmirror.name import nightly_date

log = logging.getLogger("lanmirror.prune")


@dataclass
class Removed:
    tag: str
    image: str
    size: int


@dataclass
class LocalPruneReport:
    removed: list[Removed] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    in_use: list[str] = field(default_factory=list)
    bytes_freed: int = 0  # measured (the daemon's layer bytes before and after); estimated on a dry run
    dry_run: bool = False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def prune_local(engine: Engine, repository: str, base_tags: list[str], keep: int, *,
                dry_run: bool = False) -> LocalPruneReport:
    """`repository` is the name the images carry in this daemon (the canonical name resolve tags)."""
    if keep < 1:
        raise BadInput(f"--keep {keep}: keep at least the newest nightly (1 or more)")
    if not [b for b in base_tags if b]:
        raise BadInput("prune --local needs the base tag of the nightlies to prune (--base-tag)")
    nightlies = []
    for tag, image, size in engine.tagged(repository):
        day = next((d for d in (nightly_date(tag, b) for b in base_tags if b) if d), None)
        if day is not None:
            nightlies.append((day, tag, image, size))
    nightlies.sort(reverse=True)
    in_use = engine.images_in_use()
    report = LocalPruneReport(dry_run=dry_run)
    for index, (_, tag, image, size) in enumerate(nightlies):
        if index < keep:
            report.kept.append(tag)
        elif image in in_use:
            report.in_use.append(tag)
        else:
            report.removed.append(Removed(tag, image, size))
    if dry_run:
        report.bytes_freed = sum(r.size for r in report.removed)
        return report
    before = engine.layers_size()
    for r in report.removed:
        engine.untag(f"{repository}:{r.tag}")
        log.info("removed %s:%s (%s)", repository, r.tag, r.image[:19])
    report.bytes_freed = max(0, before - engine.layers_size())
    return report
