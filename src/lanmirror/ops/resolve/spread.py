"""Spreading a fleet over LAN replicas: rendezvous (highest-random-weight) hashing of the runner's
identity. Each runner always ranks the replicas the same way (it sticks to one, and its cache stays
warm there), the fleet splits evenly, and when a replica is down or lacks the tag only the runners
that ranked it first move, each to its own second choice."""

from __future__ import annotations

import hashlib
import os
import socket


def runner_identity(explicit: str | None = None) -> str:
    """--runner-id, else $RUNNER_NAME (set by GitHub's runner), else the host name."""
    return explicit or os.environ.get("RUNNER_NAME") or socket.gethostname()


def weight(runner: str, registry: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{runner}\0{registry}".encode()).digest()[:8], "big")


def rendezvous(runner: str, registries: list[str]) -> list[str]:
    """`registries` in this runner's order of preference (highest weight first)."""
    return sorted(registries, key=lambda r: weight(runner, r), reverse=True)
