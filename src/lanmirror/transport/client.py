"""HTTP to one registry: auth challenges, token exchange, timeouts, retries.

Like go-containerregistry's `remote/transport`: the layers above ask for `GET /v2/<repo>/...`
with a scope and get a response; how the bearer token was obtained (anonymous or with the
credentials docker itself would use), and whether the request was retried, is decided here.
"""

from __future__ import annotations

import base64
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
from lanmirror.errors import AuthError, PullLimitExceeded, RegistryError, TransientError
from lanmirror.name import api_host, normalize_registry
from lanmirror.retry import DEFAULT_POLICY, RetryPolicy, UnknownHost, network_cause, parse_retry_after
from lanmirror.transport.challenge import load_challenge, parse_challenge, save_challenge
from lanmirror.transport.scheme import is_loopback
from lanmirror.transport.session import RegistrySession
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
        self.session = RegistrySession()
        self.session.headers["User-Agent"] = USER_AGENT
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        # Passed with every request: requests would let $REQUESTS_CA_BUNDLE override a session's own.
        self.verify: str | bool = ca_bundle(self.tls.cas)
        if self.tls.client:
            self.session.cert = self.tls.client
        self._lock = threading.Lock()
        self._challenge: tuple[str, dict[str, str]] | None = None
        self._tokens: dict[str, str] = {}
        # One token exchange per scope at a time: parallel probes wait for it instead of each asking,
        # and refused credentials are remembered, so a wrong password costs exactly one request.
        self._token_lock = threading.Lock()
        self._auth_failure: AuthError | None = None
        self._token_round = 0
        self._token_error: Exception | None = None
        # What a stuck request is waiting on, for the error a caller's deadline produces.
        self.waiting_on = ""
        # Credentials follow the registry, never a file: a remembered challenge (from a cache that
        # any job on this runner could have written) may only speed up an anonymous token request.
        self._challenge = load_challenge(self.host) if credentials is None else None
        self._challenge_cached = self._challenge is not None

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

    def _auth_header(self, scope: str | None) -> dict[str, str]:
        with self._lock:
            challenge = self._challenge
            token = self._tokens.get(scope or "")
        if challenge is None:
            return {}
        kind, _ = challenge
        if kind == "bearer" and token:
            return {"Authorization": f"Bearer {token}"}
        if kind == "basic" and self.credentials:
            raw = f"{self.credentials.username}:{self.credentials.password}".encode()
            return {"Authorization": "Basic " + base64.b64encode(raw).decode()}
        return {}

    def _fetch_token(self, params: dict[str, str], scope: str | None) -> None:
        realm = params.get("realm")
        if not realm:
            raise RegistryError(f"{self.registry}: bearer challenge without a realm", registry=self.registry)
        query: dict[str, str | list[str]] = {k: v for k, v in params.items() if k in ("service",)}
        if scope:
            # One `scope` parameter per resource, repeated, as the token spec says (a mount needs two).
            query["scope"] = scope.split()
        creds = self.credentials
        self.waiting_on = f"the token endpoint {realm}"
        try:
            # The realm on another host is verified against the system CAs, whatever this registry's rule.
            verify = self.verify if urlsplit(realm).netloc == self.host else True
            if creds is not None and creds.identity_token:
                # An identity token is an OAuth2 refresh token: POSTed as a form, never sent as Basic.
                form = {**query, "grant_type": "refresh_token", "refresh_token": creds.password,
                        "client_id": "lanmirror"}
                resp = self.session.post(realm, data=form, timeout=self.timeouts.pair(), verify=verify)
            else:
                auth = (creds.username, creds.password) if creds else None
                resp = self.session.get(realm, params=query, auth=auth, timeout=self.timeouts.pair(), verify=verify)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise TransientError(f"{self.registry}: token endpoint {realm} unreachable: {network_cause(exc)}") from None
        finally:
            self.waiting_on = ""
        if resp.status_code in (401, 403):
            raise self._refused(resp.status_code)
        self._raise_for_transient(resp, "token endpoint")
        if resp.status_code != 200:
            raise RegistryError(f"{self.registry}: token endpoint answered HTTP {resp.status_code}",
                                registry=self.registry, status=resp.status_code)
        try:
            body = resp.json()
        except ValueError:
            raise RegistryError(f"{self.registry}: token endpoint returned non-JSON", registry=self.registry) from None
        token = body.get("token") or body.get("access_token")
        if not token:
            raise RegistryError(f"{self.registry}: token endpoint returned no token", registry=self.registry)
        with self._lock:
            self._tokens[scope or ""] = token

    def _refused(self, status: int) -> AuthError:
        """The one error a refused login gives: who was refused, where the credentials came from,
        and what to do. It is remembered, so every later request fails at once without sending
        the same wrong password again."""
        if self.credentials is None:
            hint = (f"this registry needs a login: run `docker login {self.registry}` on this runner, or set "
                    "LANMIRROR_LAN_USERNAME and LANMIRROR_LAN_PASSWORD (for the Hub: DOCKERHUB_USERNAME and "
                    "DOCKERHUB_TOKEN)")
            who = "anonymous access"
        else:
            hint = "fix that password or token (or `docker login` again) and re-run"
            who = self.credentials.describe()
        return AuthError(f"{self.registry}: authentication failed for {who} (HTTP {status}); {hint}",
                         registry=self.registry, status=status)

    def _authenticate(self, resp: requests.Response, scope: str | None, stale_token: str | None) -> bool:
        """Handle a 401: remember the challenge and get a token. False if nothing can be done."""
        header = resp.headers.get("WWW-Authenticate", "")
        if not header:
            return False
        kind, params = parse_challenge(header)
        with self._lock:
            known = self._challenge
            self._challenge = (kind, params)
        if known is None or known[0] != kind or {k: known[1].get(k) for k in ("realm", "service")} != {
                k: params.get(k) for k in ("realm", "service")}:
            save_challenge(self.host, (kind, params) if kind == "bearer" else None)
        if kind == "bearer":
            self._obtain_token(params, scope or params.get("scope"), stale_token)
            return True
        return kind == "basic" and self.credentials is not None

    def _obtain_token(self, params: dict[str, str], key: str | None, stale_token: str | None) -> None:
        """One token exchange per scope at a time (see __init__)."""
        round_seen = self._token_round
        with self._token_lock:
            if self._auth_failure is not None:
                raise self._auth_failure
            if self._token_round != round_seen and self._token_error is not None:
                raise self._token_error  # it failed while we waited: do not queue up behind it again
            with self._lock:
                current = self._tokens.get(key or "")
            if current is None or current == stale_token:
                self._token_round += 1
                try:
                    self._fetch_token(params, key)
                    self._token_error = None
                except AuthError as exc:
                    self._auth_failure = self._token_error = exc
                    raise
                except Exception as exc:
                    self._token_error = exc
                    raise

    def _prefetch_token(self, scope: str | None) -> None:
        """With a challenge remembered from an earlier run, get the token before the first request
        instead of after its 401. A stale memory (the realm moved) is dropped, not fatal."""
        with self._lock:
            challenge = self._challenge
            have = (scope or "") in self._tokens
        if have or challenge is None or challenge[0] != "bearer" or not self._challenge_cached:
            return
        try:
            self._obtain_token(challenge[1], scope, None)
        except Exception as exc:
            # Whatever the remembered realm answered, a refusal included, is the file's word, not the
            # registry's: forget it and learn the challenge from the registry itself.
            log.info("%s: remembered auth challenge failed (%s); learning it again", self.registry, type(exc).__name__)
            with self._lock:
                self._challenge = None
            self._challenge_cached = False
            self._token_error = self._auth_failure = None
            save_challenge(self.host, None)

    # -- requests ---------------------------------------------------------------------------

    def _raise_for_transient(self, resp: requests.Response, what: str) -> None:
        status = resp.status_code
        if status == 429:
            retry_after = parse_retry_after(resp.headers.get("Retry-After"))
            remaining = resp.headers.get("ratelimit-remaining", "").split(";")[0].strip()
            if retry_after is None and ("TOOMANYREQUESTS" in resp.text[:2000].upper() or remaining == "0"):
                raise PullLimitExceeded(
                    f"{self.registry}: pull rate limit reached (429 TOOMANYREQUESTS, "
                    f"ratelimit-remaining={remaining or '?'}); "
                    "log in with a paid account or wait for the window to reset",
                    registry=self.registry, status=429, code="TOOMANYREQUESTS",
                )
            raise TransientError(f"{self.registry}: {what} HTTP 429 (Retry-After {retry_after})",
                                 status=429, retry_after=retry_after)
        if status >= 500:
            resp.close()
            raise TransientError(f"{self.registry}: {what} HTTP {status}", status=status,
                                 retry_after=parse_retry_after(resp.headers.get("Retry-After")))

    def _send_once(
        self, method: str, path: str, scope: str | None, headers: Mapping[str, str] | None,
        timeout: tuple[float, float] | None, **kwargs: Any,
    ) -> requests.Response:
        url = self.url(path)
        mine = self.owns(url)
        if mine:
            self._prefetch_token(scope)
        else:
            log.debug("%s: %s %s is another host's: sent without Authorization", self.registry, method, url)
        if mine and self._auth_failure is not None:
            raise self._auth_failure
        for attempt in range(2):
            auth = self._auth_header(scope) if mine else {}
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
                sent = auth.get("Authorization", "").removeprefix("Bearer ") or None
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
                self._auth_failure = self._refused(401)
                raise self._auth_failure
            if self.credentials is None and self._challenge is not None and self._challenge[0] == "basic":
                raise self._refused(401)
            raise AuthError(f"{self.registry}: {method} {path} unauthorized (HTTP 401); "
                            "check credentials or repository access", registry=self.registry, status=401)
        self._raise_for_transient(resp, f"{method} {path}")
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
        if resp.status_code == 401:
            header = resp.headers.get("WWW-Authenticate", "")
            if header:
                with self._lock:
                    self._challenge = parse_challenge(header)
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
