"""Credentials for a registry, from the first place that has them: explicit values (flags, action
inputs), then the environment, then `docker login`'s store.

The Hub and the LAN each have their own variables, so a Hub token is never offered to a LAN
registry (which may be plain HTTP, or someone else's) and a LAN login never goes to the Hub."""

from __future__ import annotations

import os

from lanmirror.authn.credentials import Credentials
from lanmirror.authn.dockerconfig import credentials_from_docker_config
from lanmirror.authn.secretenv import HUB_TOKEN_ENV, HUB_USER_ENV, LAN_PASSWORD_ENV, LAN_USER_ENV


def first_env(names: tuple[str, ...]) -> tuple[str, str]:
    """The first of `names` that is set, and its value."""
    for name in names:
        if os.environ.get(name):
            return name, os.environ[name]
    return "", ""


def _explicit_or_env(username: str | None, user_env: tuple[str, ...], secret_env: tuple[str, ...],
                     flag: str) -> Credentials | None:
    env_user, user = first_env(user_env)
    secret_name, secret = first_env(secret_env)
    if username:
        user, env_user = username, ""
    if user and secret:
        source = f"${env_user}/${secret_name}" if env_user else f"{flag} and ${secret_name}"
        return Credentials(user, secret, source)
    return None


def hub_credentials(registry: str, username: str | None = None) -> Credentials | None:
    """--hub-username (or $DOCKERHUB_USERNAME) with $DOCKERHUB_TOKEN, else `docker login`'s store."""
    return (_explicit_or_env(username, HUB_USER_ENV, HUB_TOKEN_ENV, "--hub-username")
            or credentials_from_docker_config(registry))


def lan_credentials(registry: str, username: str | None = None) -> Credentials | None:
    """--lan-username (or $LANMIRROR_LAN_USERNAME) with $LANMIRROR_LAN_PASSWORD, else what
    `docker login REGISTRY` stored for this LAN registry (auths, credsStore, credHelpers)."""
    return (_explicit_or_env(username, LAN_USER_ENV, LAN_PASSWORD_ENV, "--lan-username")
            or credentials_from_docker_config(registry))


def override_credentials(variable: str) -> Credentials | None:
    """The login of an image forced by `variable` (AMD_CI_IMAGE_MI35X): $<variable>_USERNAME with
    $<variable>_PASSWORD, for that image's registry only. None unless both are set."""
    return _explicit_or_env(None, (f"{variable}_USERNAME",), (f"{variable}_PASSWORD",), "")
