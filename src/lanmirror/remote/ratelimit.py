"""Docker Hub's rate-limit headers, read from any manifest answer (a HEAD is free and has them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RateLimit:
    """Docker Hub's rate-limit headers (`ratelimit-limit: 100;w=21600`)."""

    limit: int | None = None
    remaining: int | None = None
    source: str | None = None

    @classmethod
    def from_headers(cls, headers: Any) -> RateLimit | None:
        def first_int(value: str | None) -> int | None:
            if not value:
                return None
            head = value.split(";", 1)[0].strip()
            return int(head) if head.isdigit() else None

        limit = first_int(headers.get("ratelimit-limit"))
        remaining = first_int(headers.get("ratelimit-remaining"))
        source = headers.get("docker-ratelimit-source")
        if limit is None and remaining is None:
            return None
        return cls(limit, remaining, source)
