"""Where registry addresses come from when no flag names them (credentials: `lanmirror.authn`).

Shared by the CLI and the actions so both read the same environment the same way.
"""

from __future__ import annotations

import os
import re

from lanmirror.errors import BadInput

LAN_ENV = ("LANMIRROR_LAN_REGISTRY", "LOCAL_DOCKER_REGISTRY")  # the second is the original bash's name
HUB_ENV = "LANMIRROR_HUB_REGISTRY"
INSECURE_ENV = "LANMIRROR_INSECURE_REGISTRIES"


def split_list(values: list[str] | str | None) -> list[str]:
    """Accept repeated flags, comma/space/newline separated lists, or a mix."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    out: list[str] = []
    for v in values:
        out += [p for p in re.split(r"[\s,]+", v) if p]
    return out


def split_tags(values: list[str] | str | None, flag: str) -> list[str]:
    """Tags from repeated flags or comma/newline separated lists (an action's multi-line input).
    A tag never holds white space: `--base-tag 'v0.5.5 rocm700'` is a typo, not two base tags, and
    is refused (exit 2) rather than searched as two."""
    if values is None:
        return []
    out: list[str] = []
    for v in [values] if isinstance(values, str) else values:
        for part in re.split(r"[,\n]+", v):
            part = part.strip()
            if re.search(r"\s", part):
                raise BadInput(f"{flag} {part!r}: a tag has no white space; give one tag per {flag}, or separate "
                               "them with commas or new lines")
            if part:
                out.append(part)
    return out


def lan_registries(flags: list[str] | None) -> list[str]:
    if flags:
        return split_list(flags)
    for name in LAN_ENV:
        if os.environ.get(name):
            return split_list(os.environ[name])
    return []


def hub_registry(flag: str | None, default: str = "docker.io") -> str:
    return flag or os.environ.get(HUB_ENV) or default


def insecure_list(flags: list[str] | str | None) -> list[str]:
    """--insecure-registry values, else $LANMIRROR_INSECURE_REGISTRIES."""
    return split_list(flags) or split_list(os.environ.get(INSECURE_ENV))
