"""The schemes lanmirror answers, registered in one place (a new scheme is its module plus a line
here); the transport picks an authenticator through this module, so they are always registered."""

from __future__ import annotations

from lanmirror.authn.credentials import Credentials
from lanmirror.transport.auth import Authenticator, Wire, authenticator_for, register
from lanmirror.transport.basic import Basic
from lanmirror.transport.bearer import Bearer
from lanmirror.transport.identity import IdentityToken


def _bearer(wire: Wire, credentials: Credentials | None, params: dict[str, str]) -> Authenticator:
    """A bearer realm takes a password as Basic, or an identity token as an OAuth2 refresh token."""
    if credentials is not None and credentials.identity_token:
        return IdentityToken(wire, credentials, params)
    return Bearer(wire, credentials, params)


register("basic", Basic)
register("bearer", _bearer)

__all__ = ["authenticator_for"]
