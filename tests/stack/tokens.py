"""A Docker-Hub-style token server: JWTs signed by a self-signed cert the registry trusts.

Anonymous callers get `pull`; a known user with the right password gets what they ask for;
a wrong password gets 401, like auth.docker.io. A POST with the OAuth2 refresh_token grant and a
known refresh token (what `docker login` stores as an identity token) is that token's user.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

SERVICE = "registry.docker.io"
ISSUER = "lanmirror-test-auth"


class TokenServer:
    def __init__(self, workdir: Path, users: dict[str, str]) -> None:
        self.users = dict(users)
        self.cert_path = workdir / "token-cert.pem"
        self.requests: list[dict[str, str]] = []
        self.refresh_tokens: dict[str, str] = {}  # identity token -> user
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lanmirror test token signer")])
        now = dt.datetime.now(dt.timezone.utc)
        self.cert = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(self.key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30)).sign(self.key, hashes.SHA256())
        )
        self.cert_path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        self._x5c = base64.b64encode(self.cert.public_bytes(serialization.Encoding.DER)).decode()
        self._pem = self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption())
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                server._handle(self)

            def do_POST(self) -> None:
                server._handle_post(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.realm = f"http://127.0.0.1:{self.port}/token"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> TokenServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _user(self, handler: BaseHTTPRequestHandler) -> tuple[str | None, bool]:
        header = handler.headers.get("Authorization", "")
        if not header.lower().startswith("basic "):
            return None, True
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return None, False
        return user, self.users.get(user) == password

    def _handle_post(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        form = parse_qs(handler.rfile.read(length).decode())
        refresh = form.get("refresh_token", [""])[0]
        user = self.refresh_tokens.get(refresh) if form.get("grant_type") == ["refresh_token"] else None
        self._reply(handler, form, user, user is not None, "refresh_token")

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        url = urlparse(handler.path)
        query = parse_qs(url.query)
        user, ok = self._user(handler)
        self._reply(handler, query, user, ok, "basic" if user else "anonymous")

    def _reply(self, handler: BaseHTTPRequestHandler, query: dict[str, list[str]], user: str | None, ok: bool,
               grant: str) -> None:
        self.requests.append({"user": user or "", "scope": " ".join(query.get("scope", [])), "grant": grant,
                              "service": query.get("service", [""])[0]})
        if not ok:
            body = json.dumps({"details": "incorrect username or password"}).encode()
            handler.send_response(401)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)
            return
        access = []
        for scope in " ".join(query.get("scope", [])).split():
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            wanted = [a for a in actions.split(",") if a]
            granted = wanted if user else [a for a in wanted if a == "pull"]
            access.append({"type": kind, "name": name, "actions": granted})
        now = int(dt.datetime.now(dt.timezone.utc).timestamp())
        claims = {"iss": ISSUER, "sub": user or "", "aud": query.get("service", [SERVICE])[0], "exp": now + 300,
                  "nbf": now - 10, "iat": now, "jti": uuid.uuid4().hex, "access": access}
        token = jwt.encode(claims, self._pem, algorithm="RS256", headers={"x5c": [self._x5c]})
        body = json.dumps({"token": token, "access_token": token, "expires_in": 300,
                           "issued_at": dt.datetime.now(dt.timezone.utc).isoformat()}).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
