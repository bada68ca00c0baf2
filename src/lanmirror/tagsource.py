"""Where the tags to mirror come from: flags, tag files, the nightly window. Tags are untrusted
(files, artifacts, dispatch inputs), so each one is checked against the OCI grammar here, before
anything else sees it."""

from __future__ import annotations

import concurrent.futures as cf
import datetime as dt
import logging
import tempfile
from pathlib import Path

from lanmirror.errors import BadInput
from lanmirror.reference import nightly_candidates, validate_tag
from lanmirror.registry import Registry

log = logging.getLogger("lanmirror.tagsource")

MAX_TAG_FILE_BYTES = 64 * 1024
MAX_TAG_FILES = 64


def _read_one(path: Path) -> list[str]:
    if path.is_symlink():
        raise BadInput(f"tag file {path} is a symlink: refused")
    size = path.stat().st_size
    if size > MAX_TAG_FILE_BYTES:
        raise BadInput(f"tag file {path} is {size} bytes: more than {MAX_TAG_FILE_BYTES} is not a tag file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise BadInput(f"tag file {path} is not UTF-8 text") from None
    tags = []
    for n, line in enumerate(text.splitlines(), 1):
        value = line.strip()
        if not value or value.startswith("#"):
            continue
        try:
            tags.append(validate_tag(value))
        except BadInput as exc:
            raise BadInput(f"{path}:{n}: {exc}") from None
    return tags


def read_tag_file(path: str | Path) -> list[str]:
    """Tags from a file (one per line, whitespace trimmed, '#' comments) or from every `*.txt` file
    of a folder (the original artifact: one `<arch>.txt` per GPU architecture)."""
    p = Path(path)
    if not p.exists():
        raise BadInput(f"tag file {p} does not exist")
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.suffix == ".txt")
        if not files:
            raise BadInput(f"tag folder {p} holds no *.txt files")
        if len(files) > MAX_TAG_FILES:
            raise BadInput(f"tag folder {p} holds {len(files)} files; at most {MAX_TAG_FILES} are read")
        tags = [t for f in files for t in _read_one(f)]
    else:
        tags = _read_one(p)
    if not tags:
        raise BadInput(f"no tag found in {p}: the file is empty")
    return list(dict.fromkeys(tags))


def backfill_tags(registry: Registry, repo: str, base_tags: list[str], days: int,
                  today: dt.date | None = None) -> list[str]:
    """Every nightly of the last `days` days that `registry` has, oldest first (free HEADs)."""
    if not base_tags:
        raise BadInput("--backfill needs at least one --base-tag")
    cands = [t for base in base_tags for t, _ in nightly_candidates(base, days, today)]
    with cf.ThreadPoolExecutor(max_workers=min(16, len(cands))) as pool:
        found = list(pool.map(lambda t: registry.head_manifest(repo, t) is not None, cands))
    return [t for t, ok in reversed(list(zip(cands, found, strict=True))) if ok]


def gather_tags(*, tags: list[str], tag_file: str | None = None, from_artifact: str | None = None,
                run_id: int | None = None, workflow: str | None = None, backfill_days: int | None = None,
                base_tags: list[str] | None = None, source: Registry | None = None, repo: str = "") -> list[str]:
    """Every way of naming tags (flags, tag file, artifact, backfill window), in that order, deduplicated."""
    from lanmirror.artifacts import tags_from_artifact

    out = [validate_tag(t) for t in tags]
    if tag_file:
        out += read_tag_file(tag_file)
    if from_artifact:
        with tempfile.TemporaryDirectory(prefix="lanmirror-artifact-") as tmp:
            out += tags_from_artifact(from_artifact, Path(tmp), run_id=run_id, workflow=workflow)
    if backfill_days:
        if source is None:
            raise BadInput("--backfill needs a source registry")
        found = backfill_tags(source, repo, base_tags or [], backfill_days)
        log.info("backfill: %d nightlies of the last %d day(s) on %s", len(found), backfill_days, source.name)
        out += found
    return list(dict.fromkeys(out))
