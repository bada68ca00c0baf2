"""An identity token (what `docker login` stores as `identitytoken` for some registries): an
OAuth2 refresh token, exchanged at the bearer realm with a POSTed form, never sent as Basic."""

from __future__ import annotations

import requests

from lanmirror.transport.bearer import Bearer


class IdentityToken(Bearer):
    def request_token(self, realm: str, query: dict[str, str | list[str]], verify: str | bool) -> requests.Response:
        assert self.credentials is not None
        form = {**query, "grant_type": "refresh_token", "refresh_token": self.credentials.password,
                "client_id": "lanmirror"}
        return self.wire.session.post(realm, data=form, timeout=self.wire.timeouts, verify=verify)
