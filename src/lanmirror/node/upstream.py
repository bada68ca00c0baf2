"""Where the node mirror gets what a daemon asks for, and what it checks first.

A tag is resolved the way resolve does it: the Hub's digest (a manifest HEAD, which Docker Hub does
not count as a pull) is the truth; the LAN replicas holding that same digest are the sources, the
Hub the last one. A Hub that is unreachable (a network failure) leaves it to `hub_unavailable`
("lan": the LAN replicas' common digest, said in a warning; "fail"); a Hub that refuses (401/403)
or does not have the tag is a failed check, and the daemon gets an error (it then falls back to
the Hub by itself, with its own credentials). A manifest or blob by digest needs no check: its
bytes are hashed against the digest."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import requests

from lanmirror.errors import AuthError, LanmirrorError, NotFound
from lanmirror.name import repository_on
from lanmirror.ops.clients import Clients
from lanmirror.remote.manifest import Manifest
from lanmirror.remote.ranges import RangeSettings
from lanmirror.remote.registry import Registry
from lanmirror.retry import RetryPolicy, describe, run_bounded
from lanmirror.serve.feed import Source, load_manifest
from lanmirror.transport import Timeouts

log = logging.getLogger("lanmirror.node")

HUB_UNAVAILABLE = ("lan", "fail")
TAG_TTL = 10.0  # seconds a checked tag is reused: many daemons asking at once cost the Hub one HEAD


class CheckFailed(LanmirrorError):
    """The tag cannot be served as verified: the Hub refused the check, or does not have it."""


@dataclass
class Resolved:
    digest: str
    lans: list[str]  # the LAN replicas that hold this digest, in order
    verified: bool
    at: float = field(default_factory=time.monotonic)


@dataclass
class Upstream:
    clients: Clients
    lans: list[str]
    hub: str
    policy: RetryPolicy
    settings: RangeSettings = field(default_factory=RangeSettings)
    probe_timeout: float = 3.0
    hub_timeout: float = 15.0
    hub_unavailable: str = "lan"
    min_rate: float = 5e6  # bytes/s below which a fill's source is handed off (0: no floor) ...
    rate_window: float = 30.0  # ... after this many seconds
    _registries: dict[str, Registry] = field(default_factory=dict)
    _tags: dict[tuple[str, str], Resolved] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def registry(self, name: str) -> Registry:
        with self._lock:
            if name not in self._registries:
                timeout = self.hub_timeout if name == self.hub else self.probe_timeout
                self._registries[name] = self.clients.registry(name, timeouts=Timeouts(min(timeout, 5.0), 60.0))
            return self._registries[name]

    def hub_repo(self, repo: str) -> str:
        return repository_on(self.hub, repo)

    # -- tags ----------------------------------------------------------------------------------

    def resolve(self, repo: str, tag: str) -> Resolved:
        key = (repo, tag)
        with self._lock:
            known = self._tags.get(key)
        if known is not None and time.monotonic() - known.at < TAG_TTL:
            return known
        lans = list(self.lans)
        tasks: list[Callable[[], Any]] = [partial(self.registry(self.hub).head_manifest, self.hub_repo(repo), tag,
                                                  retry=False)]
        tasks += [partial(self.registry(lan).head_manifest, repo, tag, retry=False) for lan in lans]
        results = run_bounded(tasks, max(self.hub_timeout, self.probe_timeout))
        (hub_done, hub), lan_results = results[0], results[1:]
        lan_digests = {lan: value.digest for lan, (done, value) in zip(lans, lan_results, strict=True)
                       if done and value is not None and not isinstance(value, BaseException)}
        if hub_done and isinstance(hub, AuthError):
            raise CheckFailed(f"{self.hub} refused the check of {repo}:{tag} ({describe(hub)}): not served")
        if hub_done and hub is None:
            raise NotFound(f"{repo}:{tag} is not on {self.hub}: a tag only the LAN has is never served")
        if hub_done and not isinstance(hub, BaseException):
            digest = hub.digest
            resolved = Resolved(digest, [lan for lan in lans if lan_digests.get(lan) == digest], True)
        else:
            why = describe(hub) if hub_done else f"no answer within {self.hub_timeout:g}s"
            if isinstance(hub, NotFound) or self.hub_unavailable == "fail" or not lan_digests:
                raise CheckFailed(f"{self.hub} is unavailable ({why}) and {repo}:{tag} cannot be checked")
            digests = set(lan_digests.values())
            if len(digests) > 1:
                raise CheckFailed(f"{self.hub} is unavailable ({why}) and the LAN replicas disagree on {repo}:{tag}")
            digest = digests.pop()
            log.warning("%s is unavailable (%s): serving %s:%s as the LAN replicas have it (%s), unverified",
                        self.hub, why, repo, tag, digest[:19])
            resolved = Resolved(digest, [lan for lan in lans if lan in lan_digests], False)
        with self._lock:
            self._tags[key] = resolved
        return resolved

    # -- by digest -----------------------------------------------------------------------------

    def sources(self, repo: str, lans: list[str] | None = None) -> list[Source]:
        """The LAN replicas (those known to hold the image first), then the Hub."""
        order = (lans or []) + [lan for lan in self.lans if lan not in (lans or [])]
        out = [Source("lan", self.registry(lan), repo) for lan in order]
        return [*out, Source("hub", self.registry(self.hub), self.hub_repo(repo))]

    def manifest(self, repo: str, digest: str, lans: list[str] | None = None) -> Manifest:
        return load_manifest(self.sources(repo, lans), digest, max(self.probe_timeout, 5.0))

    def blob_sources(self, repo: str, digest: str) -> tuple[list[Source], int | None]:
        """The LAN replicas that hold the blob (asked at once, HEAD), then the Hub; and its size."""
        lans = list(self.lans)
        found = run_bounded([partial(self.registry(lan).head_blob, repo, digest) for lan in lans],
                            self.probe_timeout)
        holding = [lan for lan, (done, value) in zip(lans, found, strict=True)
                   if done and isinstance(value, int)]
        sizes = [value for done, value in found if done and isinstance(value, int) and value > 0]
        size = sizes[0] if sizes else None
        if size is None:
            try:
                size = self.registry(self.hub).head_blob(self.hub_repo(repo), digest)
            except (LanmirrorError, requests.RequestException) as exc:
                log.info("HEAD of blob %s on %s failed: %s", digest[:19], self.hub, describe(exc))
        sources = [Source("lan", self.registry(lan), repo) for lan in holding]
        return [*sources, Source("hub", self.registry(self.hub), self.hub_repo(repo))], size
