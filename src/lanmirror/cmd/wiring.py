"""The one place that turns settings (flags, inputs, environment) into clients.

Every command builds one `Clients` and hands it to its operation; the operation asks it for a
registry or the engine and never decides credentials, schemes or retry policy itself. Everything
built here is closed when the command ends (`with Clients(...) as clients:`).
"""

from __future__ import annotations

import argparse
import logging
import threading
from collections.abc import Iterable, Mapping
from types import TracebackType

from lanmirror.authn import Credentials, hub_credentials, lan_credentials
from lanmirror.cmd.settings import insecure_list, lan_registries
from lanmirror.daemon import Engine
from lanmirror.errors import LanmirrorError
from lanmirror.name import DOCKER_HUB, normalize_registry
from lanmirror.remote.registry import Registry
from lanmirror.retry import DEFAULT_POLICY, RetryPolicy
from lanmirror.transport import Timeouts, Transport, is_insecure, is_loopback

log = logging.getLogger("lanmirror.wiring")


def plain_http_allowed(allowed: list[str], registries: Iterable[str], engine: Engine | None = None, *,
                       ask_daemon: bool = True) -> list[str]:
    """`allowed` (the user's HOST[:PORT] / CIDR list), plus the Docker daemon's insecure-registries
    when a registry in play is neither loopback nor covered by it. A LAN registry is usually plain
    HTTP, and the runner's daemon is where the admin already declared it for `docker pull`: with
    this, mirror, prune and resolve need no extra flag wherever docker itself works."""
    allowed = list(allowed)
    # Docker Hub is never plain HTTP: it alone never justifies asking the daemon.
    candidates = [r for r in registries if normalize_registry(r) != DOCKER_HUB]
    if not ask_daemon or all(is_loopback(r) or is_insecure(r, allowed) for r in candidates):
        return allowed
    try:
        daemon = (engine or Engine(timeout=5.0, policy=RetryPolicy(attempts=1))).insecure_registries()
    except LanmirrorError as exc:
        log.info("could not read the Docker daemon's insecure registries (%s); HTTPS unless "
                 "--insecure-registry names the registry", exc)
        return allowed
    return allowed + daemon


class Clients:
    """Registry clients and Docker engines for one command, built from its settings.

    `credentials` maps a registry (as normalised by `lanmirror.name`) to what it gets; any other
    registry is spoken to anonymously. `insecure` is the user's HOST[:PORT] / CIDR list; the
    daemon's own insecure-registries are read the first time a registry outside it and outside
    loopback is connected (and only when `daemon` is on)."""

    def __init__(self, *, credentials: Mapping[str, Credentials | None] | None = None,
                 insecure: Iterable[str] = (), policy: RetryPolicy = DEFAULT_POLICY,
                 docker_host: str | None = None, daemon: bool = True, certs_dir: str | None = None) -> None:
        self.policy = policy
        self._credentials = {normalize_registry(k): v for k, v in (credentials or {}).items() if v is not None}
        self._insecure = list(insecure)
        self._docker_host = docker_host
        self._daemon = daemon
        self._certs_dir = certs_dir
        self._daemon_insecure: list[str] | None = None
        self._engines: dict[float | None, Engine] = {}
        self._transports: list[Transport] = []
        self._lock = threading.RLock()  # insecure() asks engine() while holding it

    def __enter__(self) -> Clients:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            transports, self._transports = self._transports, []
            engines, self._engines = list(self._engines.values()), {}
        for t in transports:
            t.close()
        for e in engines:
            e.close()

    def credentials(self, registry: str) -> Credentials | None:
        return self._credentials.get(normalize_registry(registry))

    def insecure(self, registry: str) -> bool:
        """Docker's rule: loopback, the user's list, then the daemon's insecure-registries."""
        if is_insecure(registry, self._insecure):
            return True
        if normalize_registry(registry) == DOCKER_HUB or not self._daemon:
            return False
        with self._lock:
            if self._daemon_insecure is None:
                self._daemon_insecure = plain_http_allowed([], [registry], self.engine(5.0))
        return is_insecure(registry, self._daemon_insecure)

    def registry(self, name: str, *, timeouts: Timeouts | None = None, pool_size: int = 32) -> Registry:
        transport = Transport(name, insecure=self.insecure(name), credentials=self.credentials(name),
                              timeouts=timeouts, policy=self.policy, pool_size=pool_size, certs_dir=self._certs_dir)
        with self._lock:
            self._transports.append(transport)
        return Registry(transport)

    def counted_pulls(self, registry: str) -> int:
        """Pulls this command made from `registry` as Docker Hub counts them: the manifest GETs of
        every client built here, and each pull the daemon was asked to make from it directly."""
        name = normalize_registry(registry)
        with self._lock:
            gets = sum(t.manifest_gets for t in self._transports if t.registry == name)
            return gets + sum(e.pulls.get(name, 0) for e in self._engines.values())

    def engine(self, timeout: float | None = None) -> Engine | None:
        if not self._daemon:
            return None
        with self._lock:
            if timeout not in self._engines:
                self._engines[timeout] = Engine(self._docker_host, policy=self.policy,
                                                **({"timeout": timeout} if timeout is not None else {}))
            return self._engines[timeout]


def clients_for(args: argparse.Namespace, upstream: str | None, *, policy: RetryPolicy = DEFAULT_POLICY,
                extra: Mapping[str, Credentials] | None = None, daemon: bool = True) -> Clients:
    """The clients a command's flags ask for.

    The upstream registry (Docker Hub or its stand-in) gets the Hub credentials (--hub-username,
    the DOCKERHUB_* environment, then `docker login`'s store). Each LAN registry gets the LAN
    credentials (--lan-username, $LANMIRROR_LAN_USERNAME/PASSWORD, then what `docker login` stored
    for that registry). Credentials are keyed by registry, so each only ever reaches its own.
    The insecure rule reads --insecure-registry, then $LANMIRROR_INSECURE_REGISTRIES."""
    creds: dict[str, Credentials | None] = {}
    value = getattr(args, "lan_registry", None)
    for lan in lan_registries([value] if isinstance(value, str) else value):
        if upstream is None or normalize_registry(lan) != normalize_registry(upstream):
            creds[lan] = lan_credentials(normalize_registry(lan), getattr(args, "lan_username", None))
    if upstream is not None:
        creds[upstream] = hub_credentials(upstream, getattr(args, "hub_username", None))
    creds.update(extra or {})  # a forced image's own login, for its registry (resolve --image-env)
    return Clients(credentials=creds, insecure=insecure_list(args.insecure_registry), policy=policy,
                   certs_dir=getattr(args, "certs_dir", None), daemon=daemon)


def doctor_clients(args: argparse.Namespace, upstream: str) -> Clients:
    """Doctor reports what happens now, fast: no retries."""
    return clients_for(args, upstream, policy=RetryPolicy(attempts=1))
