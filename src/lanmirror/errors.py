"""Exceptions shared by every layer.

The classes encode *what the caller should do next*: BadInput → fix the command line (exit 2);
TransientError → the one retry policy may try again; everything else → fail or fall back to the
next source. Messages name the source and the cause because they end up in CI logs.
"""

from __future__ import annotations


class LanmirrorError(Exception):
    """Base class for every error this package raises on purpose."""


class BadInput(LanmirrorError, ValueError):
    """The user gave something malformed (a tag, a registry address, a file). Exit code 2."""


class RegistryError(LanmirrorError):
    """A registry answered with an error that retrying will not fix (400, 401, 403, 404, ...)."""

    def __init__(self, message: str, *, registry: str = "", status: int | None = None, code: str = "") -> None:
        super().__init__(message)
        self.registry = registry
        self.status = status
        self.code = code


class AuthError(RegistryError):
    """Credentials were refused. Never retried: a wrong password does not get righter."""


class NotFound(RegistryError):
    """The manifest or blob does not exist."""


class PullLimitExceeded(RegistryError):
    """Docker Hub's pull-rate limit (429 TOOMANYREQUESTS without Retry-After).

    Not retried: the window is six hours, so hammering only burns more of everybody's quota.
    """


class TransientError(LanmirrorError):
    """A failure the retry policy may retry: 429 with Retry-After, 5xx, resets, timeouts."""

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class SourceAbandoned(LanmirrorError):
    """A blob read left its source on purpose (too slow): the next source goes on from the byte
    reached; never retried on the same source."""


class DigestMismatch(LanmirrorError):
    """Bytes did not hash to the digest they were addressed by: corrupt or stale data."""


class EngineError(LanmirrorError):
    """The Docker daemon failed or reported an error inside its JSON stream."""


class DaemonTimeout(EngineError):
    """The daemon took a call and did not answer in time. It is up: what it was asked to do (a
    request of its own to a registry, say) is what hangs, and reports must not blame the daemon."""


class StallError(EngineError):
    """A pull made no progress for longer than the stall guard allows."""


class SlowPullError(StallError):
    """A pull that was alive but too slow: below the throughput floor for a whole window, or
    projected to overrun the pull timeout. It names the rate, the floor, the bytes of layers that
    had completed, and how many of those the daemon keeps for the next source (None: unknown)."""

    def __init__(self, message: str, *, rate: float, floor: float, completed: int, kept: int | None,
                 unsized: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.rate, self.floor, self.completed, self.kept = rate, floor, completed, kept
        self.unsized = unsized  # short IDs of completed layers whose size the daemon never said
