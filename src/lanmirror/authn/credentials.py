"""A username and a secret, where they came from, and nothing that could print the secret."""

from __future__ import annotations

from dataclasses import dataclass, field

# docker-py's and the Docker CLI's marker: the "password" is an OAuth2 refresh (identity) token.
IDENTITY_TOKEN_USER = "<token>"


@dataclass(frozen=True)
class Credentials:
    """A username and password or token. `repr` never shows the secret. `source` says where they
    were found (a flag, an environment variable, docker config), so that a refused login can tell
    the user which one to fix."""

    username: str
    password: str = field(repr=False)
    source: str = ""

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, password='***', source={self.source!r})"

    @property
    def identity_token(self) -> bool:
        """An identity token (`docker login` through a browser or an SSO helper): exchanged at the
        token endpoint with the OAuth2 refresh_token grant, never sent as a password."""
        return self.username == IDENTITY_TOKEN_USER

    def describe(self) -> str:
        who = "an identity token" if self.identity_token else f"user {self.username!r}"
        return f"{who} (from {self.source})" if self.source else who

    def daemon_auth(self) -> dict[str, str]:
        """The auth config the Docker daemon expects in `X-Registry-Auth` for a pull or push."""
        if self.identity_token:
            return {"identitytoken": self.password}
        return {"username": self.username, "password": self.password}
