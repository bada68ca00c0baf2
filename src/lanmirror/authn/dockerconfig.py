"""Credentials that `docker login` stored, read through docker-py's own auth module."""

from __future__ import annotations

import logging
import os

from lanmirror.authn.credentials import IDENTITY_TOKEN_USER, Credentials
from lanmirror.name import DOCKER_HUB

log = logging.getLogger("lanmirror.authn")


def credentials_from_docker_config(registry: str) -> Credentials | None:
    """The credentials `docker login` stored for `registry`, through docker-py's own reader: it
    honours DOCKER_CONFIG, `auths`, `credsStore`, `credHelpers` and identity tokens, so we never
    parse config.json by hand. What it returns is only ever sent to `registry` itself."""
    import docker.auth

    try:
        config = docker.auth.load_config()
        entry = docker.auth.resolve_authconfig(config, None if registry == DOCKER_HUB else registry)
    except Exception as exc:  # a broken credential helper must not stop an anonymous pull
        log.warning("could not read Docker credentials for %s: %s", registry, type(exc).__name__)
        return None
    if not entry:
        return None
    where = os.path.join(os.environ.get("DOCKER_CONFIG") or "~/.docker", "config.json")
    if entry.get("IdentityToken"):
        return Credentials(IDENTITY_TOKEN_USER, entry["IdentityToken"], f"the identity token in {where}")
    username = entry.get("username") or entry.get("Username")
    password = entry.get("password") or entry.get("Password")
    if username and password:
        return Credentials(username, password, f"docker login ({where})")
    return None
