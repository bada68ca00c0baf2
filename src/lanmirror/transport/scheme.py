"""Which registries may be spoken to without TLS verification or over plain HTTP (Docker's
insecure rule): loopback, and what the user or the daemon declared. Everything else is HTTPS."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from lanmirror.name import normalize_registry


def host_of(registry: str) -> str:
    host = registry
    if host.startswith("["):
        return host[1:host.index("]")]
    return host.rsplit(":", 1)[0] if ":" in host else host


def is_loopback(registry: str) -> bool:
    host = host_of(registry)
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_insecure(registry: str, insecure: Iterable[str] = ()) -> bool:
    """Whether plain HTTP may be used: loopback, or a registry (HOST[:PORT], host or CIDR) that the
    user or the Docker daemon marked insecure. Everything else is HTTPS with verification."""
    registry = normalize_registry(registry)
    if is_loopback(registry):
        return True
    host = host_of(registry)
    for entry in insecure:
        entry = entry.strip()
        if not entry:
            continue
        if "/" in entry:
            try:
                if ipaddress.ip_address(host) in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                continue
        elif normalize_registry(entry) in (registry, host):
            return True
    return False
