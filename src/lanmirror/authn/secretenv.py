"""The environment variables that carry lanmirror's secrets, and an environment without them.

A docker credential helper is a program named by a config file and found on PATH: on a shared
runner both may be another job's. It is asked only for the registry it is named for, and it runs
without any secret lanmirror knows of, so a planted helper learns nothing it was not already given."""

from __future__ import annotations

import os

HUB_USER_ENV = ("DOCKERHUB_USERNAME", "LANMIRROR_HUB_USERNAME")
HUB_TOKEN_ENV = ("DOCKERHUB_TOKEN", "DOCKERHUB_PASSWORD", "LANMIRROR_HUB_TOKEN")
LAN_USER_ENV = ("LANMIRROR_LAN_USERNAME",)
LAN_PASSWORD_ENV = ("LANMIRROR_LAN_PASSWORD",)
GITHUB_TOKEN_ENV = ("GITHUB_TOKEN", "GH_TOKEN")
# The runner's own tokens: the cache and OIDC endpoints of this job.
RUNNER_TOKEN_ENV = ("ACTIONS_RUNTIME_TOKEN", "ACTIONS_ID_TOKEN_REQUEST_TOKEN", "ACTIONS_ID_TOKEN_REQUEST_URL")

RECORD_KEY_ENV = ("LANMIRROR_RECORD_KEY",)  # signs the run records (lanmirror.records)

SECRET_ENV = HUB_TOKEN_ENV + LAN_PASSWORD_ENV + GITHUB_TOKEN_ENV + RUNNER_TOKEN_ENV + RECORD_KEY_ENV


def secret_values(environ: dict[str, str] | None = None) -> list[str]:
    """The values of the secrets above that are set: what a record or report must never carry."""
    env = os.environ if environ is None else environ
    return [v for k, v in env.items() if v and len(v) >= 4 and (k in SECRET_ENV or k.upper().endswith("_PASSWORD"))]


def blanked_secrets(environ: dict[str, str] | None = None) -> dict[str, str]:
    """For a credential helper: every secret above and every action input (INPUT_*: the composite
    actions hand tokens over that way too) that is set in `environ` (default: this process's),
    mapped to "". docker-py builds a helper's environment as os.environ *updated with* what it is
    given, so blanking each one is how it leaves that environment."""
    env = os.environ if environ is None else environ
    # *_PASSWORD too: the login of an image forced from the environment (AMD_CI_IMAGE_MI35X_PASSWORD).
    return {k: "" for k in env if k in SECRET_ENV or k.upper().startswith("INPUT_") or k.upper().endswith("_PASSWORD")}
