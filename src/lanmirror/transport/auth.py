"""How a request proves who it is: the authenticator interface, the table of schemes, and what
every scheme shares (the wire to a token endpoint, the one error a refused login gives).

One authenticator per `WWW-Authenticate` scheme, picked from the registry's challenge, like
go-containerregistry's `transport/basic.go` and `bearer.go`. The transport knows only this
interface: it asks for a header, and on a 401 hands the challenge here and sends the request once
more if told to. A new scheme is one module with an `Authenticator` and one line in `schemes`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import requests

from lanmirror.authn.credentials import Credentials
from lanmirror.errors import AuthError


@dataclass
class Wire:
    """What an authenticator may use to reach a token endpoint: this registry's session (no
    ~/.netrc), its timeouts, and how its TLS is verified (which the transport settles on its first
    request). `waiting_on` names a slow request for the error a caller's deadline produces."""

    registry: str
    host: str
    session: requests.Session
    timeouts: tuple[float, float]
    verify: str | bool = True
    waiting_on: str = ""


class Authenticator:
    """One scheme's way to answer a challenge. `failure` is remembered once a login is refused, so
    that the same wrong password is never sent twice."""

    scheme: ClassVar[str] = ""

    def __init__(self, wire: Wire, credentials: Credentials | None, params: dict[str, str]) -> None:
        self.wire = wire
        self.credentials = credentials
        self.params = params
        self.failure: AuthError | None = None

    @classmethod
    def accepts(cls, credentials: Credentials | None) -> bool:
        """Whether this scheme can do anything with these credentials (Basic needs some)."""
        return True

    def header(self, scope: str | None) -> dict[str, str]:
        """The Authorization header for a request in `scope` ({} while there is none yet)."""
        return {}

    def answer(self, scope: str | None, stale: str | None) -> bool:
        """A request was refused with this challenge (having sent `stale`, if anything): make the
        next one acceptable. True when sending it again can succeed."""
        return False

    def prefetch(self, scope: str | None) -> None:
        """With a challenge remembered from an earlier run, get ready before the first request."""

    def same_challenge(self, scheme: str, params: dict[str, str]) -> bool:
        keys = ("realm", "service")
        return scheme == self.scheme and {k: self.params.get(k) for k in keys} == {k: params.get(k) for k in keys}

    def memo(self) -> dict[str, str] | None:
        """What of the challenge may be remembered on disk for the next run (never a secret)."""
        return None


Factory = Callable[[Wire, "Credentials | None", dict[str, str]], "Authenticator | None"]
SCHEMES: dict[str, Factory] = {}


def register(scheme: str, factory: Factory) -> None:
    """Make `scheme` (lower case, as in the challenge) answerable by `factory`."""
    SCHEMES[scheme.lower()] = factory


def authenticator_for(scheme: str, params: dict[str, str], wire: Wire,
                      credentials: Credentials | None) -> Authenticator | None:
    """The authenticator for a challenge, or None when no registered scheme can answer it."""
    factory = SCHEMES.get(scheme.lower())
    return factory(wire, credentials, params) if factory else None


def refused_error(registry: str, credentials: Credentials | None, status: int) -> AuthError:
    """The one error a refused login gives: who was refused, where the credentials came from, and
    what to do."""
    if credentials is None:
        hint = (f"this registry needs a login: run `docker login {registry}` on this runner, or set "
                "LANMIRROR_LAN_USERNAME and LANMIRROR_LAN_PASSWORD (for the Hub: DOCKERHUB_USERNAME and "
                "DOCKERHUB_TOKEN)")
        who = "anonymous access"
    else:
        hint = "fix that password or token (or `docker login` again) and re-run"
        who = credentials.describe()
    return AuthError(f"{registry}: authentication failed for {who} (HTTP {status}); {hint}",
                     registry=registry, status=status)
