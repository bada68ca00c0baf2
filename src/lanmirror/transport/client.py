"""HTTP to one registry: the request, the insecure rule, timeouts, retries, and the one retry on
a 401 (how that challenge is answered is `auth`'s, one module per scheme).

Like go-containerregistry's `remote/transport`: the layers above ask for `GET /v2/<repo>/...`
with a scope and get a response; how the token was obtained (anonymous or with the credentials
docker itself would use), and whether the request was retried, is decided below them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

from lanmirror import __version__
from lanmirror.authn.credentials import Credentials
from lanmirror.errors import AuthError, RegistryError, TransientError
from lanmirror.name import api_host, normalize_registry
from lanmirror.retry import DEFAULT_POLICY, RetryPolicy, UnknownHost, network_cause
from lanmirror.transport.auth import Authenticator, Wire, refused_error
from lanmirror.transport.challenge import load_challenge, parse_challenge, save_challenge
from lanmirror.transport.scheme import is_loopback
from lanmirror.transport.schemes import authenticator_for
from lanmirror.transport.session import NoNetrcSession
from lanmirror.transport.status import raise_for_transient
from lanmirror.transport.tls import ca_bundle, insecure_scheme, tls_files

log = logging.getLogger("lanmirror.transport")

USER_AGENT = f"lanmirror/{__version__}"


@dataclass(frozen=True)
class Timeouts:
    """Connect and read timeouts in seconds. Small connect timeouts are what keep a dead LAN
    registry from costing minutes: the original bash waited 20-30 s per probe."""

    connect: float = 3.0
    read: float = 30.0

    def pair(self) -> tuple[float, float]:
        return (self.connect, self.read)


class Transport:
    """Authenticated, retried, time-bounded HTTP to one registry's /v2/ API."""

    def __init__(
        self,
        registry: str,
        *,
        insecure: bool | None = None,
        credentials: Credentials | None = None,
        timeouts: Timeouts | None = None,
        policy: RetryPolicy = DEFAULT_POLICY,
        pool_size: int = 32,
        certs_dir: str | None = None,
    ) -> None:
        self.registry = normalize_registry(registry)
        self.host = api_host(self.registry)
        # Manifest GETs answered 200: on Docker Hub, each is a pull counted against the quota.
        self.manifest_gets = 0
        self._gets_lock = threading.Lock()
        # Docker's insecure rule: HTTPS without verification first, then plain HTTP (decided on the
        # first request); any other registry is HTTPS, verified against certs.d and the system CAs.
        self.insecure = is_loopback(self.registry) if insecure is None else insecure
        self.tls = tls_files(self.host, certs_dir)
        self._scheme: str | None = None if self.insecure else "https"
        self.credentials = credentials
        self.timeouts = timeouts or Timeouts()
        self.policy = policy
        self.session = NoNetrcSession()
        self.session.headers["User-Agent"] = USER_AGENT
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        # Passed with every request: requests would let $REQUESTS_CA_BUNDLE override a session's own.
        self.wire = Wire(self.registry, self.host, self.session, self.timeouts.pair(), ca_bundle(self.tls.cas))
        if self.tls.client:
            self.session.cert = self.tls.client
        self._lock = threading.Lock()
        self._auth: Authenticator | None = None
        self._challenged = ""  # the scheme of the last challenge, answerable or not
        self._basic_refused: AuthError | None = None
        # Credentials follow the registry, never a file: a remembered challenge (from a cache that
        # any job on this runner could have written) may only speed up an anonymous token request.
        remembered = load_challenge(self.host) if credentials is None else None
        if remembered is not None:
            self._auth = authenticator_for(*remembered, self.wire, None)
        self._challenge_cached = self._auth is not None

    @property
    def verify(self) -> str | bool:
        return self.wire.verify

    @verify.setter
    def verify(self, value: str | bool) -> None:
        self.wire.verify = value

    @property
    def waiting_on(self) -> str:
        """What a stuck request is waiting on, for the error a caller's deadline produces."""
        return self.wire.waiting_on

    def __repr__(self) -> str:
        return f"Transport({self._scheme or 'http(s)'}://{self.host})"

    @property
    def scheme(self) -> str:
        if self._scheme is None:
            with self._lock:
                if self._scheme is None:
                    scheme = insecure_scheme(self.session, self.host, self.timeouts.pair())
                    if scheme == "https":
                        self.verify = False
                    elif not is_loopback(self.registry):
                        log.warning("using plain HTTP for insecure registry %s", self.registry)
                    self._scheme = scheme
        return self._scheme

    def describe_tls(self) -> str:
        """How this registry is reached, for doctor: the scheme and what verifies it."""
        if self.scheme == "http":
            return "plain HTTP (insecure registry)"
        if self.verify is False:
            return "HTTPS, not verified (insecure registry)" + (" + client certificate" if self.tls.client else "")
        return f"HTTPS verified by {self.tls.describe()}"

    def url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.scheme}://{self.host}{path}"

    def owns(self, url: str) -> bool:
        """Whether `url` is this registry, so that it may see this registry's Authorization. An
        absolute URL from a Location or Link header names another host or port, or downgrades
        https to http: then it is someone else's, and gets none."""
        parts = urlsplit(url)
        return parts.netloc.lower() == self.host.lower() and not (self.scheme == "https" and parts.scheme != "https")

    def close(self) -> None:
        self.session.close()

    # -- auth -------------------------------------------------------------------------------

    def _failure(self) -> AuthError | None:
        """A refused login, remembered: every later request fails at once without sending it again."""
        return self._basic_refused or (self._auth.failure if self._auth else None)

    def _adopt(self, kind: str, params: dict[str, str]) -> tuple[Authenticator | None, bool]:
        """Take a challenge: the authenticator that answers it (the one in use, with its tokens, when
        the challenge is the same), and whether it changed."""
        with self._lock:
            self._challenged = kind
            if self._auth is not None and self._auth.same_challenge(kind, params):
                return self._auth, False
            self._auth = authenticator_for(kind, params, self.wire, self.credentials)
            return self._auth, True

    def _authenticate(self, resp: requests.Response, scope: str | None, sent: str | None) -> bool:
        """Handle a 401: hand its challenge to the scheme's authenticator. False if nothing can be done."""
        header = resp.headers.get("WWW-Authenticate", "")
        if not header:
            return False
        kind, params = parse_challenge(header)
        auth, changed = self._adopt(kind, params)
        if changed:
            memo = auth.memo() if auth else None
            save_challenge(self.host, (kind, memo) if memo is not None else None)
        if auth is None:
            return False
        return auth.answer(scope or params.get("scope"), sent)

    def _prefetch(self, scope: str | None) -> None:
        """With a challenge remembered from an earlier run, get ready before the first request
        instead of after its 401. A stale memory (the realm moved) is dropped, not fatal."""
        auth = self._auth
        if auth is None or not self._challenge_cached:
            return
        try:
            auth.prefetch(scope)
        except Exception as exc:
            # Whatever the remembered realm answered, a refusal included, is the file's word, not the
            # registry's: forget it and learn the challenge from the registry itself.
            log.info("%s: remembered auth challenge failed (%s); learning it again", self.registry, type(exc).__name__)
            with self._lock:
                if self._auth is auth:
                    self._auth = None
            self._challenge_cached = False
            save_challenge(self.host, None)

    # -- requests ---------------------------------------------------------------------------

    def _send_once(
        self, method: str, path: str, scope: str | None, headers: Mapping[str, str] | None,
        timeout: tuple[float, float] | None, **kwargs: Any,
    ) -> requests.Response:
        url = self.url(path)
        mine = self.owns(url)
        if mine:
            self._prefetch(scope)
        else:
            log.debug("%s: %s %s is another host's: sent without Authorization", self.registry, method, url)
        failure = self._failure() if mine else None
        if failure is not None:
            raise failure
        for attempt in range(2):
            auth = self._auth.header(scope) if mine and self._auth else {}
            hdrs = {**(headers or {}), **auth}
            try:
                resp = self.session.request(method, url, headers=hdrs, timeout=timeout or self.timeouts.pair(),
                                            verify=self.verify,
                                            **kwargs)
            except (requests.ConnectionError, requests.Timeout) as exc:
                cause = network_cause(exc)
                kind = UnknownHost if cause == "unknown host" else type(exc)
                raise kind(f"{self.registry}: {method} {path}: {cause}") from None
            # A 401 from where a redirect led (a storage host, a CDN) is that host's business: its
            # challenge never gets this registry's credentials.
            foreign = not self.owns(resp.url or url)
            if resp.status_code == 401 and attempt == 0 and mine and not foreign:
                sent = auth.get("Authorization") or None
                resp.close()
                if self._authenticate(resp, scope, sent):
                    if not _rewindable(kwargs.get("data")):
                        # Part of a streamed body went out with the refused request: never send the
                        # rest as if it were whole. The token is fresh now; the caller sends it again.
                        raise TransientError(f"{self.registry}: {method} {path}: the token expired during a "
                                             "streamed upload; sending it again from its start")
                    continue
            break
        if resp.status_code == 401 and foreign:
            resp.close()
            raise RegistryError(f"{self.registry}: {method} {path} was redirected to {urlsplit(resp.url).netloc}, "
                                "which refused it (HTTP 401); this registry's credentials are never sent there",
                                registry=self.registry, status=401)
        if resp.status_code == 401:
            resp.close()
            if auth.get("Authorization", "").startswith("Basic "):
                # Basic credentials refused: the password is wrong, and sending it again will not help.
                self._basic_refused = refused_error(self.registry, self.credentials, 401)
                raise self._basic_refused
            if self.credentials is None and self._challenged == "basic":
                raise refused_error(self.registry, None, 401)
            raise AuthError(f"{self.registry}: {method} {path} unauthorized (HTTP 401); "
                            "check credentials or repository access", registry=self.registry, status=401)
        raise_for_transient(resp, self.registry, f"{method} {path}")
        return resp

    def request(
        self,
        method: str,
        path: str,
        *,
        scope: str | None = None,
        headers: Mapping[str, str] | None = None,
        retry: bool = True,
        deadline: float | None = None,
        timeout: tuple[float, float] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """Send a request, authenticating on a challenge. Transient failures are retried with the
        one policy unless `retry` is False (for requests whose body is a one-shot stream)."""
        if not retry:
            return self._send_once(method, path, scope, headers, timeout, **kwargs)
        return self.policy.call(
            lambda: self._send_once(method, path, scope, headers, timeout, **kwargs),
            f"{method} {self.registry}{path}", deadline=deadline,
        )

    def count_manifest_get(self) -> None:
        with self._gets_lock:
            self.manifest_gets += 1

    def get_elsewhere(self, url: str, headers: Mapping[str, str] | None = None) -> requests.Response:
        """A streaming GET of a URL off this registry (the CDN a blob redirect pointed at): never
        with this registry's credentials, never retried here (the caller falls back to the registry)."""
        return self.session.get(url, headers=dict(headers or {}), stream=True, timeout=self.timeouts.pair(),
                                verify=True)

    def ping(self) -> requests.Response:
        """`GET /v2/`: tells whether the registry is up and learns its auth challenge."""
        url = self.url("/v2/")
        resp = self.session.get(url, timeout=self.timeouts.pair(), verify=self.verify)
        header = resp.headers.get("WWW-Authenticate", "") if resp.status_code == 401 else ""
        if header:
            self._adopt(*parse_challenge(header))
        return resp


def _rewindable(data: object) -> bool:
    """Whether a request body can be sent again as it was: nothing, or bytes."""
    return data is None or isinstance(data, (bytes, bytearray, str))


def error_detail(resp: requests.Response) -> str:
    """The registry's own error code and message from an OCI error body, if any."""
    try:
        errors = resp.json().get("errors") or []
    except (ValueError, AttributeError):
        return ""
    parts = [f"{e.get('code', '')}: {e.get('message', '')}" for e in errors if isinstance(e, dict)]
    return "; ".join(parts)[:300]
