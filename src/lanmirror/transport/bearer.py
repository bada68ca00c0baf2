"""Bearer: a token per scope from the challenge's realm (the registry token spec), fetched with
the credentials as Basic, or anonymously."""

from __future__ import annotations

import threading
from urllib.parse import urlsplit

import requests

from lanmirror.authn.credentials import Credentials
from lanmirror.errors import AuthError, RegistryError, TransientError
from lanmirror.retry import network_cause
from lanmirror.transport.auth import Authenticator, Wire, refused_error
from lanmirror.transport.status import raise_for_transient


class Bearer(Authenticator):
    """Tokens by scope. One exchange per scope at a time: parallel probes wait for it instead of
    each asking, and a refusal is remembered, so a wrong password costs exactly one request."""

    scheme = "bearer"

    def __init__(self, wire: Wire, credentials: Credentials | None, params: dict[str, str]) -> None:
        super().__init__(wire, credentials, params)
        self._tokens: dict[str, str] = {}
        self._lock = threading.Lock()
        self._exchange = threading.Lock()
        self._round = 0
        self._error: Exception | None = None

    def header(self, scope: str | None) -> dict[str, str]:
        with self._lock:
            token = self._tokens.get(scope or "")
        return {"Authorization": f"Bearer {token}"} if token else {}

    def answer(self, scope: str | None, stale: str | None) -> bool:
        sent = stale.removeprefix("Bearer ") if stale and stale.startswith("Bearer ") else None
        self._obtain(scope or self.params.get("scope"), sent)
        return True

    def prefetch(self, scope: str | None) -> None:
        with self._lock:
            have = (scope or "") in self._tokens
        if not have:
            self._obtain(scope, None)

    def memo(self) -> dict[str, str] | None:
        return {k: v for k, v in self.params.items() if k in ("realm", "service")}

    def _obtain(self, scope: str | None, stale: str | None) -> None:
        seen = self._round
        with self._exchange:
            if self.failure is not None:
                raise self.failure
            if self._round != seen and self._error is not None:
                raise self._error  # it failed while we waited: do not queue up behind it again
            with self._lock:
                current = self._tokens.get(scope or "")
            if current is not None and current != stale:
                return  # another thread got a fresh one while we waited
            self._round += 1
            try:
                token = self._fetch(scope)
            except AuthError as exc:
                self.failure = self._error = exc
                raise
            except Exception as exc:
                self._error = exc
                raise
            self._error = None
            with self._lock:
                self._tokens[scope or ""] = token

    def _fetch(self, scope: str | None) -> str:
        wire = self.wire
        realm = self.params.get("realm")
        if not realm:
            raise RegistryError(f"{wire.registry}: bearer challenge without a realm", registry=wire.registry)
        query: dict[str, str | list[str]] = {k: v for k, v in self.params.items() if k in ("service",)}
        if scope:
            # One `scope` parameter per resource, repeated, as the token spec says (a mount needs two).
            query["scope"] = scope.split()
        wire.waiting_on = f"the token endpoint {realm}"
        try:
            # The realm on another host is verified against the system CAs, whatever this registry's rule.
            verify = wire.verify if urlsplit(realm).netloc == wire.host else True
            resp = self.request_token(realm, query, verify)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise TransientError(f"{wire.registry}: token endpoint {realm} unreachable: {network_cause(exc)}") \
                from None
        finally:
            wire.waiting_on = ""
        if resp.status_code in (401, 403):
            raise refused_error(wire.registry, self.credentials, resp.status_code)
        raise_for_transient(resp, wire.registry, "token endpoint")
        if resp.status_code != 200:
            raise RegistryError(f"{wire.registry}: token endpoint answered HTTP {resp.status_code}",
                                registry=wire.registry, status=resp.status_code)
        try:
            body = resp.json()
        except ValueError:
            raise RegistryError(f"{wire.registry}: token endpoint returned non-JSON", registry=wire.registry) \
                from None
        token = body.get("token") or body.get("access_token") if isinstance(body, dict) else None
        if not token or not isinstance(token, str):
            raise RegistryError(f"{wire.registry}: token endpoint returned no token", registry=wire.registry)
        return token

    def request_token(self, realm: str, query: dict[str, str | list[str]], verify: str | bool) -> requests.Response:
        """The token request itself: a GET, with the credentials as Basic when there are any."""
        creds = self.credentials
        auth = (creds.username, creds.password) if creds else None
        return self.wire.session.get(realm, params=query, auth=auth, timeout=self.wire.timeouts, verify=verify)

