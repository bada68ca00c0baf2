"""Step 3: every (candidate, source) pair that was found, in the order the policy prefers them."""

from __future__ import annotations

from lanmirror.ops.resolve.model import Candidate, Option

_RANK = {"local": 0, "lan": 1, "hub": 2}


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
    if policy == "cache-first":
        order = {c.tag: i for i, c in enumerate(cands)}
        options.sort(key=lambda o: (_RANK[o.kind], order[o.cand.tag]))
    return options


def hub_options(cands: list[Candidate], hub_registry: str, hits: dict[str, str] | None) -> list[Option]:
    """The Hub's options, for appending when every nearer source failed."""
    return [Option(c, "hub", hub_registry, hits[c.tag]) for c in cands if hits and c.tag in hits]
