"""Where registry addresses and credentials come from when no flag names them.

Shared by the CLI and the actions so both read the same environment the same way.
"""

from __future__ import annotations

import os
import re

from lanmirror.transport import Credentials, credentials_from_docker_config

LAN_ENV = ("LANMIRROR_LAN_REGISTRY", "LOCAL_DOCKER_REGISTRY")  # the second is the original bash's name
HUB_ENV = "LANMIRROR_HUB_REGISTRY"
USER_ENV = ("DOCKERHUB_USERNAME", "LANMIRROR_HUB_USERNAME")
TOKEN_ENV = ("DOCKERHUB_TOKEN", "DOCKERHUB_PASSWORD", "LANMIRROR_HUB_TOKEN")
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


def lan_registries(flags: list[str] | None) -> list[str]:
    if flags:
        return split_list(flags)
    for name in LAN_ENV:
        if os.environ.get(name):
            return split_list(os.environ[name])
    return []


def hub_registry(flag: str | None, default: str = "docker.io") -> str:
    return flag or os.environ.get(HUB_ENV) or default


def first_env(names: tuple[str, ...]) -> str:
    for name in names:
        if os.environ.get(name):
            return os.environ[name]
    return ""


def hub_credentials(registry: str, username: str | None = None, token: str | None = None) -> Credentials | None:
    """Explicit username+token, else the DOCKERHUB_* environment, else `docker login`'s store."""
    username = username or first_env(USER_ENV)
    token = token or first_env(TOKEN_ENV)
    if username and token:
        return Credentials(username, token)
    return credentials_from_docker_config(registry)



def insecure_list(flags: list[str] | str | None) -> list[str]:
    """--insecure-registry values, else $LANMIRROR_INSECURE_REGISTRIES."""
    return split_list(flags) or split_list(os.environ.get(INSECURE_ENV))
