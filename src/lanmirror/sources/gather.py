"""Every way of naming tags to mirror, in one call: flags, tag file, artifact, backfill window."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from lanmirror.errors import BadInput
from lanmirror.name import validate_tag
from lanmirror.remote.registry import Registry
from lanmirror.sources.artifacts import tags_from_artifact
from lanmirror.sources.backfill import backfill_tags
from lanmirror.sources.tagfile import read_tag_file

log = logging.getLogger("lanmirror.sources")


def gather_tags(*, tags: list[str], tag_file: str | None = None, from_artifact: str | None = None,
                run_id: int | None = None, workflow: str | None = None, any_branch: bool = False,
                backfill_days: int | None = None,
                base_tags: list[str] | None = None, source: Registry | None = None, repo: str = "") -> list[str]:
    """Every way of naming tags (flags, tag file, artifact, backfill window), in that order, deduplicated."""
    out = [validate_tag(t) for t in tags]
    if tag_file:
        out += read_tag_file(tag_file)
    if from_artifact:
        with tempfile.TemporaryDirectory(prefix="lanmirror-artifact-") as tmp:
            out += tags_from_artifact(from_artifact, Path(tmp), run_id=run_id, workflow=workflow,
                                      any_branch=any_branch)
    if backfill_days:
        if source is None:
            raise BadInput("--backfill needs a source registry")
        found = backfill_tags(source, repo, base_tags or [], backfill_days)
        log.info("backfill: %d nightlies of the last %d day(s) on %s", len(found), backfill_days, source.name)
        out += found
    return list(dict.fromkeys(out))
