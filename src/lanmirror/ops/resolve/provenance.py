"""Where a cached image came from, when that matters later: a LAN copy that could not be checked
against the Hub is pulled and retagged under the canonical name, so the next run would find it
"local" and lose the mark. The note is keyed by image ID, in the runner-private cache; it can
only ever add a warning, never make an image trusted."""

from __future__ import annotations

from lanmirror.cache import read_json, write_json

NOTE = "provenance.json"


def mark_unverified(image_id: str, registry: str) -> None:
    data = read_json(NOTE)
    data[image_id] = {"source": "lan", "registry": registry, "verified": False}
    write_json(NOTE, dict(list(data.items())[-200:]))  # bounded: the newest 200 images


def clear(image_id: str) -> None:
    data = read_json(NOTE)
    if data.pop(image_id, None) is not None:
        write_json(NOTE, data)


def unverified_source(image_id: str) -> str | None:
    """The LAN registry an unverified copy came from, if this runner pulled it so."""
    entry = read_json(NOTE).get(image_id)
    if isinstance(entry, dict) and entry.get("verified") is False:
        return str(entry.get("registry") or "a LAN registry")
    return None
