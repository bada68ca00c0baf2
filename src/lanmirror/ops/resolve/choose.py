"""Step 3: every (candidate, source) pair that was found, in the order the policy prefers them."""

from __future__ import annotations

from lanmirror.ops.resolve.model import Candidate, Option

_RANK = {"local": 0, "lan": 1, "hub": 2}


def sort_key(policy: str, cands: list[Candidate], lans: list[str], option: Option) -> tuple[int, int, int]:
    """Where `option` stands in the policy's order (smaller first)."""
    cand = next(i for i, c in enumerate(cands) if c.tag == option.cand.tag)
    site = lans.index(option.registry) if option.kind == "lan" and option.registry in lans else 0
    if policy == "cache-first":
        return (_RANK[option.kind], cand, site)
    return (cand, _RANK[option.kind], site)


def better_unknowns(policy: str, cands: list[Candidate], lans: list[str], chosen: Option,
                    unknown: list[Option]) -> list[Option]:
    """The probes that failed for another tag that the policy would have preferred to `chosen`: an
    older image may be settled for only knowingly. (The same tag from a farther source is not an
    older image: the digest check decides there.)"""
    mark = sort_key(policy, cands, lans, chosen)
    return [u for u in unknown if u.cand.tag != chosen.cand.tag and sort_key(policy, cands, lans, u) < mark]


def rank(policy: str, cands: list[Candidate], local: dict[str, str], lan_hits: list[tuple[str, dict[str, str]]],
         hub_registry: str, hub_hits: dict[str, str] | None) -> list[Option]:
    """newest: candidate order first, then the nearest source; cache-first: the nearest source
    first (local, then LAN sites in preference order, then the Hub), then candidate order."""
    options: list[Option] = []
    for cand in cands:
        if cand.tag in local:
            options.append(Option(cand, "local", "docker", local[cand.tag]))
        for lan, hits in lan_hits:
            if cand.tag in hits:
                options.append(Option(cand, "lan", lan, hits[cand.tag]))
        if hub_hits and cand.tag in hub_hits:
            options.append(Option(cand, "hub", hub_registry, hub_hits[cand.tag]))
    lans = [lan for lan, _ in lan_hits]
    options.sort(key=lambda o: sort_key(policy, cands, lans, o))
    return options


def hub_options(cands: list[Candidate], hub_registry: str, hits: dict[str, str] | None) -> list[Option]:
    """The Hub's options, for appending when every nearer source failed."""
    return [Option(c, "hub", hub_registry, hits[c.tag]) for c in cands if hits and c.tag in hits]
