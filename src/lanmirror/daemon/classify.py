"""Daemon errors arrive as text (inside the JSON progress stream or an API error): classify them
like HTTP errors, so the one retry policy can tell a reset (retry) from a pull limit or a missing
tag (do not)."""

from __future__ import annotations

import re

from lanmirror.errors import AuthError, EngineError, NotFound, PullLimitExceeded, TransientError

_TRANSIENT_MARKERS = ("connection reset", "i/o timeout", "timeout", "unexpected eof", " eof", "temporary",
                      "tls handshake", "broken pipe")
# An HTTP 5xx status as the daemon words it ("received unexpected HTTP status: 503 Service
# Unavailable", "status code 502"); never the port of an address such as 10.0.0.5:5000.
_SERVER_ERROR = re.compile(r"(?<![:\d])5(?:00|02|03|04)(?!\d)")


def classify_stream_error(message: str, source: str) -> Exception:
    """Map a daemon error string to the exception type the callers decide on."""
    low = message.lower()
    text = f"{source}: {message}"
    if "toomanyrequests" in low or "pull rate limit" in low:
        return PullLimitExceeded(text, registry=source, status=429, code="TOOMANYREQUESTS")
    if "manifest unknown" in low or "not found" in low or "does not exist" in low:
        return NotFound(text, registry=source, status=404)
    if "unauthorized" in low or "authentication required" in low or "denied" in low:
        return AuthError(text, registry=source, status=401)
    if "no space left" in low or "disk quota" in low:
        return EngineError(f"{text} (the registry's disk is full: free space or run its garbage collector)")
    if any(marker in low for marker in _TRANSIENT_MARKERS) or _SERVER_ERROR.search(low):
        return TransientError(text)
    return EngineError(text)
