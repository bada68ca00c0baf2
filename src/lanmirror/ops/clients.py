"""What an operation needs from the wiring: registry clients and the Docker engine, already
configured (credentials, the insecure rule, the retry policy). Operations never build a
transport themselves; `lanmirror.cmd.wiring.Clients` is the one implementation."""

from __future__ import annotations

from typing import Protocol

from lanmirror.authn import Credentials
from lanmirror.daemon import Engine
from lanmirror.remote.registry import Registry
from lanmirror.retry import RetryPolicy
from lanmirror.transport import Timeouts


class Clients(Protocol):
    policy: RetryPolicy

    def registry(self, name: str, *, timeouts: Timeouts | None = None, pool_size: int = 32) -> Registry:
        """A client for one registry, with the credentials the keychain holds for it."""
        ...

    def engine(self, timeout: float | None = None) -> Engine | None:
        """The Docker engine (None when this run has no daemon); one per timeout, reused."""
        ...

    def counted_pulls(self, registry: str) -> int:
        """Manifest GETs and direct daemon pulls this command made from `registry` so far."""
        ...

    def credentials(self, registry: str) -> Credentials | None:
        """What the daemon must be handed to pull from or push to `registry`."""
        ...

    def insecure(self, registry: str) -> bool:
        """Whether `registry` is spoken to over plain HTTP (Docker's rule)."""
        ...
