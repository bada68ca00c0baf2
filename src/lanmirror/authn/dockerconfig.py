"""Credentials that `docker login` stored, read through docker-py's own auth module.

Two rules docker-py does not keep on its own, because the runner's disk is shared:
- with DOCKER_CONFIG set, only that folder is read. docker-py falls back to ~/.docker/config.json
  and ~/.dockercfg when the folder has no config.json; a job that gave itself a private
  DOCKER_CONFIG must not end up with another job's helpers.
- a credential helper runs without lanmirror's secrets in its environment (see `secretenv`)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import docker.auth

from lanmirror.authn.credentials import IDENTITY_TOKEN_USER, Credentials
from lanmirror.authn.secretenv import blanked_secrets
from lanmirror.name import DOCKER_HUB

log = logging.getLogger("lanmirror.authn")


class PinnedAuthConfig(docker.auth.AuthConfig):  # type: ignore[misc]
    """An AuthConfig that docker-py never replaces: it reloads the default files whenever the
    one it holds looks empty, which would undo the DOCKER_CONFIG rule above."""

    @property
    def is_empty(self) -> bool:
        return False


def config_file() -> Path | None:
    """The docker config file this process may read, or None."""
    folder = os.environ.get("DOCKER_CONFIG")
    if folder:
        path = Path(folder) / "config.json"
        return path if path.is_file() else None
    for path in (Path.home() / ".docker" / "config.json", Path.home() / ".dockercfg"):
        if path.is_file():
            return path
    return None


def load_docker_config() -> PinnedAuthConfig:
    """The docker config (auths, credsStore, credHelpers) by the rules above; empty if there is none."""
    env = blanked_secrets()
    path = config_file()
    if path is None:
        return PinnedAuthConfig({}, env)
    loaded = docker.auth.load_config(config_path=str(path), credstore_env=env)
    return PinnedAuthConfig(dict(loaded), env)


def credentials_from_docker_config(registry: str) -> Credentials | None:
    """The credentials `docker login` stored for `registry`. What it returns is only ever sent to
    `registry` itself."""
    try:
        config = load_docker_config()
        entry = config.resolve_authconfig(None if registry == DOCKER_HUB else registry)
    except Exception as exc:  # a broken credential helper must not stop an anonymous pull
        log.warning("could not read Docker credentials for %s: %s", registry, type(exc).__name__)
        return None
    if not entry:
        return None
    where = str(config_file() or "docker config")
    if entry.get("IdentityToken"):
        return Credentials(IDENTITY_TOKEN_USER, entry["IdentityToken"], f"the identity token in {where}")
    username = entry.get("username") or entry.get("Username")
    password = entry.get("password") or entry.get("Password")
    if username and password:
        return Credentials(username, password, f"docker login ({where})")
    return None
