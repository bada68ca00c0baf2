"""Slow-but-alive LAN pulls: a throughput floor hands the pull to the next source, keeping the
layers that already arrived (the original once spent 4 h 16 min in a pull from a slow LAN)."""

import json
import re

import docker
import pytest

from lanmirror.cmd.wiring import Clients
from lanmirror.daemon import Engine
from lanmirror.ops.resolve import ResolveOptions, resolve
from lanmirror.retry import RetryPolicy
from tests.helpers import TODAY, run_cli, tag_for
from tests.stack import HUB_CREDS, images

pytestmark = pytest.mark.integration
BASE = "v0.5.5-rocm700-mi30x"
FAST = RetryPolicy(attempts=3, base=0.1, cap=0.5)
MB = 1 << 20


@pytest.fixture(autouse=True)
def own_notes(tmp_path, monkeypatch):
    """The slow-source note is per runner: keep each test's to itself."""
    monkeypatch.setenv("LANMIRROR_CACHE", str(tmp_path / "cache"))


def publish(stack, repo, sizes, *, lan=True, lan2=False):
    """A nightly of one layer per size (the last one on top) on the Hub and the LAN registries."""
    tag = tag_for(BASE, 0)
    img = images.build([f"{repo}-{i}" for i in range(len(sizes))], 0, sizes=sizes)
    for reg in [stack.hub_client()] + ([stack.client(stack.lan)] if lan else []) + (
            [stack.client(stack.lan2)] if lan2 else []):
        images.push(reg, repo, tag, img)
    stack.clear_faults()
    return img


def resolve_with(stack, repo, lans, host=None, **kw):
    opts = ResolveOptions(repo=repo, base_tags=[BASE], lan_registries=lans, hub_registry=stack.hub, today=TODAY,
                          **kw)
    return resolve(opts, Clients(policy=FAST, docker_host=host or stack.docker_host,
                                 credentials={stack.hub: HUB_CREDS}))


def drop_local(stack, repo):
    api = docker.APIClient(base_url=stack.docker_host, version="auto")
    for image in api.images():
        if any(t.startswith(f"{stack.hub}/{repo}:") for t in image.get("RepoTags") or []):
            api.remove_image(image["Id"], force=True)


def hub_blob_bytes(stack):
    return sum(e.bytes_out for e in stack.hub_proxy.entries("GET") if "/blobs/" in e.path)


def test_slow_lan_hands_the_pull_to_the_hub(stack, repo, engine):
    """The two lower layers complete from the LAN, the top one crawls: the pull goes to the Hub after
    the window. Engine 26.1's containerd store keeps the completed layers, so the Hub sends only
    the missing one. Engine 20.10's classic store releases them when the pull is cancelled (none
    are left in its layerdb), so the Hub sends each blob once, all of them, and the attempt says
    so (bytes_kept 0) instead of claiming a saving that did not happen."""
    img = publish(stack, repo, [MB, MB, 4 * MB])
    top = img.layer_digests[-1]
    stack.lan_proxy.conn_rate, stack.lan_proxy.pace_path = 200_000, re.compile(top)
    res = resolve_with(stack, repo, [stack.lan], engine, pull_rate_window=3)
    assert (res.source, res.digest) == ("hub", img.digest)
    slow = next(a for a in res.attempts if a.rate_mbps is not None)
    assert slow.registry == stack.lan and slow.rate_mbps < slow.floor_mbps == 5.0
    assert slow.bytes_completed >= 2 * MB  # the two lower layers completed from the LAN
    from_hub = hub_blob_bytes(stack)
    if Engine(engine).image_store() == "containerd":
        # Nothing fetched twice: only the crawling layer (and the small config) comes from the Hub.
        assert len(img.blobs[top]) <= from_hub < len(img.blobs[top]) + MB
        assert slow.bytes_kept == slow.bytes_completed
        assert any(w.startswith(f"slow source: lan {stack.lan}") and "MB kept" in w for w in res.warnings)
    else:
        assert slow.bytes_kept == 0 and Engine(engine).image_store() == "classic"
        image_bytes = sum(len(b) for b in img.blobs.values())
        assert len(img.blobs[top]) < from_hub <= image_bytes  # each blob from the Hub at most once
        assert any(w.startswith(f"slow source: lan {stack.lan}") and "discards them" in w for w in res.warnings)


def test_a_lan_that_stalls_ends_after_the_window_with_default_settings(stack, repo):
    """Rate 0 is the limit case of slow: the default 30 s window ends it, not the 120 s stall guard.
    The daemon pulling directly: through the endpoint, the reader's own 30 s read timeout resumes
    the stalled stream first (tests/integration/test_fast_pull.py)."""
    img = publish(stack, repo, [3 * MB])
    stack.lan_proxy.break_body("stall", after=MB, path=img.layer_digests[0])
    proc = run_cli(stack, "resolve", "--repo", repo, "--base-tag", BASE, "--lan-registry", stack.lan,
                   "--hub-registry", stack.hub, "--json", "--pull-via", "daemon", timeout=150)
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout)
    assert (res["source"], res["digest"]) == ("hub", img.digest)
    slow = next(a for a in res["attempts"] if a["rate_mbps"] is not None)
    assert "below the floor of 5 MB/s" in slow["result"] and slow["seconds"] < 120


def test_a_lan_above_the_floor_is_not_abandoned(stack, repo):
    img = publish(stack, repo, [24 * MB, 24 * MB])
    stack.lan_proxy.conn_rate = 12_000_000  # 12 MB/s per connection against a 5 MB/s floor: ~2 s of download
    res = resolve_with(stack, repo, [stack.lan], pull_rate_window=1)
    assert (res.source, res.digest, res.registry) == ("lan", img.digest, stack.lan)
    assert hub_blob_bytes(stack) == 0


def test_a_big_layers_extraction_is_not_slowness(stack, repo):
    img = publish(stack, repo, [160 * MB])
    res = resolve_with(stack, repo, [stack.lan], pull_rate_window=0.3, min_pull_rate=50)
    assert (res.source, res.digest) == ("lan", img.digest)


def test_second_replica_serves_before_the_hub_and_the_note_reorders_the_next_run(stack, repo):
    img = publish(stack, repo, [MB, 4 * MB], lan2=True)
    stack.lan_proxy.conn_rate, stack.lan_proxy.pace_path = 200_000, re.compile(img.layer_digests[-1])
    res = resolve_with(stack, repo, [stack.lan, stack.lan2], pull_rate_window=3)
    assert (res.source, res.registry, res.digest) == ("lan", stack.lan2, img.digest)
    assert hub_blob_bytes(stack) == 0
    drop_local(stack, repo)
    stack.clear_faults()
    again = resolve_with(stack, repo, [stack.lan, stack.lan2], pull_rate_window=3)
    assert next(a.registry for a in again.attempts if a.source == "lan") == stack.lan2
    assert again.registry == stack.lan2 and stack.lan_proxy.entries() == []


def test_a_dripping_lan_costs_the_probe_timeout_and_the_hub_delivers(stack, repo):
    """A LAN that holds the digest and drips every body after its first 64 KiB (200 B/s): the one
    stream measured within the probe timeout shows that even every parallel range together stays
    under the floor, so the LAN is left at once, and the Hub's pull reads nothing from it."""
    img = publish(stack, repo, [80 * MB])
    stack.lan_proxy.break_body("drip", after=64 << 10, count=10_000, path=img.layer_digests[0])
    proc = run_cli(stack, "resolve", "--repo", repo, "--base-tag", BASE, "--lan-registry", stack.lan,
                   "--hub-registry", stack.hub, "--json", "--probe-timeout", "2", timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads(proc.stdout)
    assert (res["source"], res["digest"]) == ("hub", img.digest)
    slow = next(a for a in res["attempts"] if a["event"] == "handoff")
    assert slow["registry"] == stack.lan and "stay below the floor of 5 MB/s" in slow["result"], slow
    assert slow["seconds"] <= 2 + 1.5, slow  # the probe timeout, not the floor's 30 s window nor a read timeout
    lan_blob_gets = stack.lan_proxy.entries("GET", img.layer_digests[0])
    assert len(lan_blob_gets) == 1, lan_blob_gets  # the probe range only: no range of the Hub's pull went there
    assert hub_blob_bytes(stack) >= 80 * MB


def test_the_budget_bounds_the_whole_resolve(stack, repo):
    """A LAN that stalls mid-layer would hold the pull for the floor's 30 s window; with --budget 6
    the pull gets only what is left of 6 s, and no further source is tried once it is spent: resolve
    fails naming the budget, instead of going on to the Hub."""
    img = publish(stack, repo, [3 * MB])
    stack.lan_proxy.break_body("stall", after=MB, path=img.layer_digests[0])
    proc = run_cli(stack, "resolve", "--repo", repo, "--base-tag", BASE, "--lan-registry", stack.lan,
                   "--hub-registry", stack.hub, "--json", "--pull-via", "daemon", "--budget", "6", timeout=150)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "the budget of 6s (--budget) ran out" in proc.stderr, proc.stderr[-2000:]
    record = json.loads(next(line for line in proc.stderr.splitlines()
                             if line.startswith("lanmirror-record/1 "))[len("lanmirror-record/1 "):])
    lan_pull = [a for a in record["resolve"]["attempts"] if a["source"] == "lan" and a["event"]]
    assert lan_pull and lan_pull[0]["seconds"] <= 6.5, lan_pull
    assert hub_blob_bytes(stack) == 0  # the Hub was never tried
