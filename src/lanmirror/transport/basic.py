"""Basic: the username and password on every request, once the registry has asked for them."""

from __future__ import annotations

import base64

from lanmirror.transport.auth import Authenticator


class Basic(Authenticator):
    scheme = "basic"

    def header(self, scope: str | None) -> dict[str, str]:
        if self.credentials is None:
            return {}
        raw = f"{self.credentials.username}:{self.credentials.password}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode()}

    def answer(self, scope: str | None, stale: str | None) -> bool:
        # Sent once without a header, the request goes again with it; refused with it, the password
        # is wrong and sending it again will not help (the transport remembers that).
        return self.credentials is not None and stale is None

