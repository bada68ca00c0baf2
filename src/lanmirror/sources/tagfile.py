"""Tag files: one tag per line, or a folder of `<arch>.txt` files (the publish job's artifact).
Their content is untrusted, so each tag is checked against the OCI grammar here, before anything
else sees it."""

from __future__ import annotations

import logging
from pathlib import Path

from lanmirror.errors import BadInput
from lanmirror.name import validate_tag

log = logging.getLogger("lanmirror.sources.tagfile")

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
