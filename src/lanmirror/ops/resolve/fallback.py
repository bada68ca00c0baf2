"""Last resorts, when nothing of the line is in the window (`--fallback`): the newest tag of the
same line in the registries' tag lists, then a local image of the line. Each is clearly marked.

A line is a base tag with its version left open: `v0.5.5-rocm700-mi30x` is the line
`v<version>-rocm700-mi30x-<YYYYMMDD>`, so a nightly of v0.5.10 is newer than one of v0.5.9
(versions compare as numbers), and then the later date wins. Costs in Docker Hub quota: a tag list
is not a counted pull, and neither are the HEADs that check what was picked; pulling it from the
Hub is one pull, as any Hub pull is. Off by default: a job that gets an older image than the window
asked for should have asked for it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import replace

from lanmirror.errors import LanmirrorError
from lanmirror.name import Reference, repository_on
from lanmirror.ops.clients import Clients
from lanmirror.ops.resolve.model import FALLBACKS, Attempt, NothingFound, Resolution, ResolveOptions
from lanmirror.retry import describe, is_transient

_VERSION = re.compile(r"^(?P<prefix>[A-Za-z]*)(?P<version>\d+(?:\.\d+)*)(?P<rest>-.+)?$")

Search = Callable[[ResolveOptions], Resolution]


def line(base: str) -> re.Pattern[str]:
    """The tags of `base`'s line: its version (a leading `v1.2.3`) open, then `-<YYYYMMDD>`."""
    m = _VERSION.match(base)
    if m is None:
        return re.compile(rf"^(?P<version>){re.escape(base)}-(?P<date>\d{{8}})$")
    return re.compile(rf"^{re.escape(m['prefix'])}(?P<version>\d+(?:\.\d+)*){re.escape(m['rest'] or '')}"
                      rf"-(?P<date>\d{{8}})$")


def newest(tags: list[str], bases: list[str]) -> str | None:
    """The newest tag of the first base's line that has any, by version (as numbers), then date."""
    for base in bases:
        pattern = line(base)
        found = []
        for tag in tags:
            m = pattern.match(tag)
            if m is None:
                continue
            try:
                date = dt.datetime.strptime(m["date"], "%Y%m%d").date()
            except ValueError:
                continue
            version = tuple(int(p) for p in m["version"].split(".")) if m["version"] else ()
            found.append((version, date, tag))
        if found:
            return max(found)[2]
    return None


def last_resort(opts: ResolveOptions, clients: Clients, missed: NothingFound, search: Search) -> Resolution:
    """Try the fallbacks `opts.fallback` names, in their order; raise `missed` (with what they
    tried added) when none gives an image."""
    attempts = list(missed.attempts)
    named = ", ".join(f"{b}-<YYYYMMDD>" for b in opts.base_tags)
    for kind in FALLBACKS:
        if kind not in opts.fallback:
            continue
        tag, where = listed(opts, clients, attempts) if kind == "tags" else cached(opts, clients, attempts)
        if tag is None:
            continue
        try:
            res = search(replace(opts, image=str(canonical(opts, tag)), fallback=[]))
        except NothingFound as exc:
            attempts += exc.attempts
            continue
        res.fallback = kind
        res.warnings.insert(0, f"FALLBACK: no nightly of {named} in the last {opts.days} day(s); using {tag}, the "
                               f"newest of its line {where}")
        res.attempts = attempts + res.attempts
        return res
    raise NothingFound(str(missed), attempts)


def canonical(opts: ResolveOptions, tag: str) -> Reference:
    """`tag` of the repository on the Hub registry: the name a searched tag is pulled and cached as."""
    return Reference(opts.hub_registry, repository_on(opts.hub_registry, opts.repo), tag=tag)


def listed(opts: ResolveOptions, clients: Clients, attempts: list[Attempt]) -> tuple[str | None, str]:
    """The newest tag of the line in the tag lists. The Hub's list decides when it answers: a LAN's
    list is the LAN's word, and a tag only a LAN lists (a tampered LAN's "v9.9.9") is not chosen.
    Only when the Hub cannot be reached (a network failure) do the LAN lists stand in, and the copy
    is then checked as any LAN copy is. A Hub that refuses the list has failed a check: no LAN list
    stands in for it."""
    def tags_of(kind: str, registry: str) -> list[str] | BaseException:
        try:
            return clients.registry(registry).list_tags(repository_on(registry, opts.repo))
        except (LanmirrorError, OSError) as exc:
            attempts.append(Attempt(kind, registry, f"fallback: tag list failed: {describe(exc)}", 0.0))
            return exc

    hub = tags_of("hub", opts.hub_registry)
    if not isinstance(hub, BaseException):
        return newest(hub, opts.base_tags), f"in the tag list of {opts.hub_registry}"
    if not is_transient(hub):
        return None, ""
    for lan in opts.lan_registries:
        tags = tags_of("lan", lan)
        best = newest([] if isinstance(tags, BaseException) else tags, opts.base_tags)
        if best:
            return best, f"in the tag list of {lan} ({opts.hub_registry}'s could not be read)"
    return None, ""


def cached(opts: ResolveOptions, clients: Clients, attempts: list[Attempt]) -> tuple[str | None, str]:
    """The newest tag of the line among the images this runner's daemon holds."""
    engine = clients.engine()
    if engine is None:
        return None, ""
    try:
        tags = [tag for tag, _, _ in engine.tagged(canonical(opts, "latest").familiar_repository)]
    except LanmirrorError as exc:
        attempts.append(Attempt("local", "docker", f"fallback: listing local images failed: {describe(exc)}", 0.0))
        return None, ""
    best = newest(tags, opts.base_tags)
    return best, "in this runner's local images (older than the window)" if best else ""
