"""The resolve pipeline's steps, each on its own, without a registry or a daemon."""

import datetime as dt

import pytest

from lanmirror.cmd.wiring import Clients
from lanmirror.ops.resolve.candidates import candidates
from lanmirror.ops.resolve.choose import better_unknowns, hub_options, rank
from lanmirror.ops.resolve.context import Run
from lanmirror.ops.resolve.model import Candidate, Option, ResolveOptions
from lanmirror.ops.resolve.verify import STALE, UNPUBLISHED, verify_lan

TODAY = dt.date(2026, 11, 28)
D1, D2 = "sha256:" + "1" * 64, "sha256:" + "2" * 64


def opts(**kw):
    kw.setdefault("base_tags", ["a", "b"])
    return ResolveOptions(repo="rocm/sgl-dev", days=2, today=TODAY, **kw)


def test_candidates_cache_first_keeps_base_tag_preference_then_newest():
    tags = [c.tag for c in candidates(opts())]
    assert tags == ["a-20261128", "a-20261127", "b-20261128", "b-20261127"]


def test_candidates_newest_sorts_by_age_then_base_tag():
    cands = candidates(opts(policy="newest"))
    assert [c.tag for c in cands] == ["a-20261128", "b-20261128", "a-20261127", "b-20261127"]
    assert [c.age_days for c in cands] == [0, 0, 1, 1]


def test_rank_cache_first_prefers_the_nearest_source_over_a_newer_tag():
    cands = candidates(opts())
    lan = [("lan:5000", {"a-20261127": D1})]
    hub = {"a-20261128": D2, "a-20261127": D1}
    order = rank("cache-first", cands, {}, lan, "docker.io", hub)
    assert [(o.kind, o.cand.tag) for o in order] == [("lan", "a-20261127"), ("hub", "a-20261128"),
                                                      ("hub", "a-20261127")]


def test_rank_newest_prefers_the_newer_tag_then_the_nearest_source():
    cands = candidates(opts(policy="newest"))
    local = {"a-20261127": D1}
    lan = [("lan:5000", {"a-20261127": D1, "b-20261128": D2})]
    order = rank("newest", cands, local, lan, "docker.io", {"b-20261128": D2})
    assert [(o.kind, o.cand.tag) for o in order] == [("lan", "b-20261128"), ("hub", "b-20261128"),
                                                      ("local", "a-20261127"), ("lan", "a-20261127")]


def test_hub_options_are_only_what_the_hub_holds():
    cands = candidates(opts())
    assert [o.cand.tag for o in hub_options(cands, "docker.io", {"b-20261127": D1})] == ["b-20261127"]
    assert hub_options(cands, "docker.io", None) == []


@pytest.mark.parametrize(("hub_hits", "allow", "verdict", "warning"), [
    ({"a-20261128": D1}, False, True, None),
    ({"a-20261128": D2}, False, STALE, "stale mirror"),
    # A tag the Hub answers 404 for is anyone's push: skipped, unless --allow-unverified.
    ({}, False, UNPUBLISHED, "is not on docker.io, so nothing can verify it; not using it"),
    ({}, True, False, "UNVERIFIED: the LAN copy lan:5000/rocm/sgl-dev:a-20261128 is not on docker.io"),
])
def test_verify_lan_compares_with_the_hubs_digest(hub_hits, allow, verdict, warning):
    run = Run(opts(allow_unverified=allow), Clients(daemon=False))
    run.hub_absent |= {"a-20261128"} - set(hub_hits)  # as probe_hub records a tag the Hub answered 404 for
    option = Option(Candidate("a-20261128", TODAY, 0, 0), "lan", "lan:5000", D1)
    assert verify_lan(run, option, hub_hits) == verdict
    assert (warning is None and not run.warnings) or warning in run.warnings[0]


def test_only_an_unanswered_probe_for_a_preferred_other_tag_degrades_a_choice():
    cands = candidates(opts())
    new, old = cands[0], cands[1]
    chosen = Option(old, "lan", "lan:5000", D1)
    lan_new = Option(new, "lan", "lan:5000", "503")
    hub_new = Option(new, "hub", "docker.io", "503")
    lan_same = Option(old, "lan", "lan:5000", "503")
    assert better_unknowns("cache-first", cands, ["lan:5000"], chosen, [lan_new, hub_new, lan_same]) == [lan_new]
    from_hub = Option(old, "hub", "docker.io", D1)
    assert better_unknowns("cache-first", cands, ["lan:5000"], from_hub, [lan_same]) == []
    assert better_unknowns("newest", cands, ["lan:5000"], from_hub, [hub_new]) == [hub_new]
