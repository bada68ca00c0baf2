"""What a registry's status code means for the caller: a rate limit, a server error worth retrying.
Shared by the transport and the token exchange, so that neither imports the other."""

from __future__ import annotations

import requests

from lanmirror.errors import PullLimitExceeded, TransientError
from lanmirror.retry import parse_retry_after


def raise_for_transient(resp: requests.Response, registry: str, what: str) -> None:
    """429 and 5xx as errors the one retry policy understands; Docker Hub's pull limit (429 with
    TOOMANYREQUESTS or ratelimit-remaining 0, no Retry-After) as its own error, never retried."""
    status = resp.status_code
    if status == 429:
        retry_after = parse_retry_after(resp.headers.get("Retry-After"))
        remaining = resp.headers.get("ratelimit-remaining", "").split(";")[0].strip()
        if retry_after is None and ("TOOMANYREQUESTS" in resp.text[:2000].upper() or remaining == "0"):
            raise PullLimitExceeded(
                f"{registry}: pull rate limit reached (429 TOOMANYREQUESTS, "
                f"ratelimit-remaining={remaining or '?'}); "
                "log in with a paid account or wait for the window to reset",
                registry=registry, status=429, code="TOOMANYREQUESTS",
            )
        raise TransientError(f"{registry}: {what} HTTP 429 (Retry-After {retry_after})",
                             status=429, retry_after=retry_after)
    if status >= 500:
        resp.close()
        raise TransientError(f"{registry}: {what} HTTP {status}", status=status,
                             retry_after=parse_retry_after(resp.headers.get("Retry-After")))
