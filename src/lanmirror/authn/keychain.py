"""Credentials for a registry, from the first place that has them: explicit values (flags, action
inputs), then the environment, then `docker login`'s store."""

from __future__ import annotations

import os

from lanmirror.authn.credentials import Credentials
from lanmirror.authn.dockerconfig import credentials_from_docker_config

USER_ENV = ("DOCKERHUB_USERNAME", "LANMIRROR_HUB_USERNAME")
TOKEN_ENV = ("DOCKERHUB_TOKEN", "DOCKERHUB_PASSWORD", "LANMIRROR_HUB_TOKEN")


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
