"""A new auth scheme is one authenticator plus `register` (transport/schemes.py for the built-in
ones): the transport answers its challenge without knowing it. Shown with a scheme made up here,
against a real HTTP server on loopback."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lanmirror.authn import Credentials
from lanmirror.errors import AuthError
from lanmirror.transport import Transport
from lanmirror.transport.auth import SCHEMES, Authenticator, Wire, register


class Server(ThreadingHTTPServer):
    """Challenges with `Signed-Test nonce="..."` and accepts `Signed-Test <password>:<nonce>`."""

    seen: list[str]


def serve() -> Server:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self.server.seen.append(self.headers.get("Authorization", ""))  # type: ignore[attr-defined]
            ok = self.headers.get("Authorization") == "Signed-Test s3cret:n0nce"
            self.send_response(200 if ok else 401)
            if not ok:
                self.send_header("WWW-Authenticate", 'Signed-Test nonce="n0nce",realm="test"')
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

    server = Server(("127.0.0.1", 0), Handler)
    server.seen = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class SignedTest(Authenticator):
    scheme = "signed-test"

    def __init__(self, wire: Wire, credentials: Credentials | None, params: dict[str, str]) -> None:
        super().__init__(wire, credentials, params)
        self.ready = False

    def header(self, scope: str | None) -> dict[str, str]:
        if not self.ready or self.credentials is None:
            return {}
        return {"Authorization": f"Signed-Test {self.credentials.password}:{self.params['nonce']}"}

    def answer(self, scope: str | None, stale: str | None) -> bool:
        self.ready = self.credentials is not None and stale is None
        return self.ready


@pytest.fixture
def signed_test():
    register("signed-test", lambda wire, creds, params: SignedTest(wire, creds, params))
    yield
    SCHEMES.pop("signed-test", None)


def test_a_registered_scheme_answers_its_challenge(signed_test):
    server = serve()
    try:
        t = Transport(f"127.0.0.1:{server.server_port}", credentials=Credentials("u", "s3cret"))
        resp = t.request("GET", "/v2/rocm/sgl-dev/tags/list", retry=False)
        assert resp.status_code == 200
        assert server.seen == ["", "Signed-Test s3cret:n0nce"]
        # The next request carries it from the start: no second 401.
        assert t.request("GET", "/v2/", retry=False).status_code == 200
        assert server.seen[-1] == "Signed-Test s3cret:n0nce" and len(server.seen) == 3
    finally:
        server.shutdown()


def test_a_scheme_nobody_registered_is_an_auth_error_not_a_retry_loop():
    server = serve()
    try:
        t = Transport(f"127.0.0.1:{server.server_port}", credentials=Credentials("u", "s3cret"))
        with pytest.raises(AuthError, match="unauthorized"):
            t.request("GET", "/v2/", retry=False)
        assert server.seen == [""]
    finally:
        server.shutdown()


def test_the_built_in_schemes_are_registered():
    assert {"basic", "bearer"} <= set(SCHEMES)
