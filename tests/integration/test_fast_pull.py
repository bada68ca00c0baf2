"""The daemon pulls through lanmirror's loopback endpoint (parallel ranges, every replica), on both
engines: names and RepoDigests as a direct pull leaves them, integrity, hand-offs, fallback."""

from __future__ import annotations

import json
import re

import pytest
import requests

from lanmirror.daemon import Engine
from tests.helpers import publish, run_cli, run_cli_isolated, tag_for

pytestmark = pytest.mark.integration
BASE = "v0.5.5-rocm700-mi30x"
LOOPBACK_NAME = re.compile(r"/[0-9a-f]{24}/")


def resolve(stack, repo, *extra: str, engine: str | None = None, lans: tuple[str, ...] = ()):
    lan_args = [x for lan in lans for x in ("--lan-registry", lan)]
    env = {"DOCKER_HOST": engine} if engine else None
    proc = run_cli(stack, "resolve", "--repo", repo, "--base-tag", BASE, "--hub-registry", stack.hub, *lan_args,
                   "--json", *extra, env=env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout), proc.stderr


def served(res: dict) -> dict[str, dict]:
    """The attempts rows of the sources that fed the endpoint, by registry."""
    return {a["registry"]: a for a in res["attempts"] if a["path"] == "ranges" and not a["result"].startswith("pulled")}


def names(engine: str) -> list[str]:
    api = Engine(engine).api
    return [n for img in api.images() for n in (img.get("RepoTags") or []) + (img.get("RepoDigests") or [])]


def test_a_pull_through_the_endpoint_is_named_as_a_direct_pull_and_then_a_verified_cache_hit(stack, repo, engine):
    img = publish(stack, repo, BASE, 1, hub=True, lan=True, size=300_000, layers=3)
    res, _ = resolve(stack, repo, "--pull-via", "ranges", engine=engine, lans=(stack.lan,))
    assert (res["source"], res["digest"], res["verified"]) == ("lan", img.digest, True)
    pulled = [a for a in res["attempts"] if a["result"].startswith("pulled")]
    assert pulled[0]["path"] == "ranges" and pulled[0]["bytes"] >= 3 * 300_000, pulled
    local = Engine(engine).local_image(f"{stack.hub}/{repo}:{tag_for(BASE, 1)}")
    assert local is not None and any(d.endswith("@" + img.digest) for d in local.repo_digests), local
    assert [n for n in names(engine) if LOOPBACK_NAME.search(n)] == []
    assert stack.lan_proxy.bytes_out() >= 3 * 300_000  # the blobs came from the LAN, through us
    again, _ = resolve(stack, repo, engine=engine, lans=(stack.lan,))
    assert (again["source"], again["digest"], again["verified"]) == ("local", img.digest, True)


def test_a_replica_serving_corrupt_bytes_costs_one_retry_and_is_named(stack, repo, engine):
    img = publish(stack, repo, BASE, 1, hub=True, lan=True, lan2=True, size=300_000, layers=2)
    stack.lan_proxy.break_body("corrupt", after=150_000, count=1000)  # every blob it serves is wrong
    res, _ = resolve(stack, repo, "--pull-via", "ranges", engine=engine, lans=(stack.lan, stack.lan2))
    assert (res["source"], res["digest"]) == ("lan", img.digest)
    rows = served(res)
    assert "served wrong bytes" in rows.get(stack.lan, {}).get("result", ""), res["attempts"]
    assert rows[stack.lan2]["bytes"] >= 2 * 300_000, rows  # the other replica served every blob whole
    local = Engine(engine).local_image(f"{stack.hub}/{repo}:{tag_for(BASE, 1)}")
    assert local is not None and any(d.endswith("@" + img.digest) for d in local.repo_digests)
    # Nothing wrong was committed: the layers the daemon holds are the image's own.
    api = Engine(engine).api
    assert api.inspect_image(local.id)["RootFS"]["Layers"] == [
        api.inspect_image(local.id)["RootFS"]["Layers"][i] for i in range(2)]
    # Only the blobs the daemon had asked for at once (config and layers, at most three) went to it.
    assert len(stack.lan_proxy.entries("GET", "/blobs/")) <= 3


def test_a_replica_that_dies_mid_blob_is_finished_by_the_others(stack, repo, engine):
    img = publish(stack, repo, BASE, 1, hub=True, lan=True, lan2=True, size=1_000_000, layers=1)
    # Every response from it breaks after 100 kB: more breaks than the retry policy resumes through.
    stack.lan_proxy.break_body("reset", after=100_000, count=1000)
    res, _ = resolve(stack, repo, "--pull-via", "ranges", engine=engine, lans=(stack.lan, stack.lan2))
    assert (res["source"], res["digest"]) == ("lan", img.digest)
    rows = served(res)
    assert rows[stack.lan]["bytes"] >= 100_000 and "handed on" in rows[stack.lan]["result"], rows
    assert 0 < rows[stack.lan2]["bytes"] < 1_000_000, rows  # it finished the blob from the byte reached
    local = Engine(engine).local_image(f"{stack.hub}/{repo}:{tag_for(BASE, 1)}")
    assert local is not None and any(d.endswith("@" + img.digest) for d in local.repo_digests)


def test_where_the_daemon_cannot_reach_the_endpoint_it_pulls_directly_and_says_so_once(stack, repo):
    img = publish(stack, repo, BASE, 1, hub=True, lan=True)
    proc = run_cli_isolated(stack, "resolve", "--repo", repo, "--base-tag", BASE, "--lan-registry", stack.lan,
                            "--hub-registry", stack.hub, "--no-verify", "--probe-timeout", "3", "--json",
                            "--helper-image", "local/no-helper:1")  # with one: test_runner_shapes.py
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout)
    assert (res["source"], res["digest"]) == ("lan", img.digest)
    lines = [line for line in proc.stderr.splitlines() if line.startswith("endpoint")]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"endpoint 127.0.0.1: not used (the Docker daemon reaches {stack.lan}, this job does "
                               "not (docker outside of docker): the endpoint here could not read it; on the "
                               "daemon's host: no helper image (local/no-helper:1)"), lines
    assert lines[0].endswith("): the daemon pulls directly"), lines
    assert [a["path"] for a in res["attempts"] if a["result"].startswith("pulled")] == ["daemon"]
    # The LAN this job cannot reach is asked once (the probes), never again by the pull.
    assert [a["source"] for a in res["attempts"] if a["registry"] == stack.lan] == ["lan", "lan-daemon", "lan"]


def test_a_black_holed_lan_is_asked_once_in_a_run_and_the_hub_delivers(stack, repo, engine):
    """A LAN that accepts and never answers: the job-side probes and the daemon's run at once and
    end by one probe timeout; no later step (the fast pull's holder check, a fallback) asks it again."""
    img = publish(stack, repo, BASE, 1, hub=True, lan=True)
    stack.lan_proxy.mode = "blackhole"
    res, _ = resolve(stack, repo, "--probe-timeout", "2", engine=engine, lans=(stack.lan,))
    assert (res["source"], res["digest"]) == ("hub", img.digest)
    assert [a["source"] for a in res["attempts"] if a["registry"] == stack.lan] == ["lan", "lan-daemon"]
    # Seven candidates (7 days): one connection each from the job and from the daemon, and the one
    # that learns the scheme; no more (the fast pull's holder check made it 16).
    assert 0 < stack.lan_proxy.connections <= 15, stack.lan_proxy.connections


def test_the_endpoint_serves_only_this_runs_image_on_loopback_with_ranges(stack, repo):
    from lanmirror.remote.ranges import RangeSettings
    from lanmirror.retry import RetryPolicy
    from lanmirror.serve import BlobSources, Endpoint, Source
    from lanmirror.serve.image import ServedImage

    img = publish(stack, repo, BASE, 1, hub=False, lan=True, size=200_000, layers=2)
    other = publish(stack, f"{repo}-other", BASE, 1, hub=False, lan=True, variant="-other")
    lan = stack.client(stack.lan)
    sources = [Source("lan", lan, repo)]
    image = ServedImage(lambda d: lan.get_manifest(repo, d))
    image.add_top(lan.get_manifest(repo, img.digest))
    feed = BlobSources(sources, RetryPolicy(attempts=2, base=0.1, cap=0.2), RangeSettings())
    with pytest.raises(ValueError):
        Endpoint(repo, image, feed, host="0.0.0.0")
    with Endpoint(repo, image, feed) as ep:
        assert ep._server.server_address[0] == "127.0.0.1"
        base = f"http://{ep.name.replace(ep.registry, ep.registry + '/v2', 1)}"
        layer = img.layer_digests[0]
        blob = img.blobs[layer]
        assert requests.get(f"http://{ep.registry}/v2/").status_code == 200
        manifest = requests.get(f"{base}/manifests/{img.digest}")
        assert manifest.content == img.manifest.body and manifest.headers["Docker-Content-Digest"] == img.digest
        head = requests.head(f"{base}/blobs/{layer}")
        assert (head.status_code, int(head.headers["Content-Length"])) == (200, len(blob))
        part = requests.get(f"{base}/blobs/{layer}", headers={"Range": "bytes=1000-"})
        assert (part.status_code, part.content) == (206, blob[1000:])
        assert part.headers["Content-Range"] == f"bytes 1000-{len(blob) - 1}/{len(blob)}"
        part = requests.get(f"{base}/blobs/{layer}", headers={"Range": "bytes=5-9"})
        assert (part.status_code, part.content) == (206, blob[5:10])
        assert requests.get(f"{base}/blobs/{layer}").content == blob
        refused = [
            f"http://{ep.registry}/v2/{repo}/manifests/{img.digest}",  # no prefix
            f"http://{ep.registry}/v2/{ep.prefix}/{repo}-other/manifests/{other.digest}",  # another repository
            f"{base}/manifests/{other.digest}",  # another digest
            f"{base}/blobs/{other.layer_digests[0]}",
            f"{base}/manifests/{tag_for(BASE, 1)}",  # a tag: only digests
            f"{base}/tags/list",
        ]
        assert [requests.get(u).status_code for u in refused] == [404] * len(refused)
    assert requests.__name__  # the endpoint is closed now:
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://{ep.registry}/v2/", timeout=2)


@pytest.mark.parametrize("fault", [None, "refuse"])
def test_the_ranges_of_one_blob_come_from_every_replica(stack, repo, fault):
    """Small settings so that a 4 MB layer is read as ranges: both replicas serve ranges of it, and
    when one resets every connection, the other serves every range; the bytes are whole."""
    import hashlib

    from lanmirror.remote.ranges import RangeSettings
    from lanmirror.retry import RetryPolicy
    from lanmirror.serve import BlobSources, Source
    from lanmirror.serve.feed import Provenance

    img = publish(stack, repo, BASE, 1, hub=False, lan=True, lan2=True, size=4_000_000, layers=1)
    layer = img.layer_digests[0]
    if fault:
        stack.lan2_proxy.mode = "refuse"
    sources = [Source("lan", stack.client(stack.lan), repo), Source("lan", stack.client(stack.lan2), repo)]
    settings = RangeSettings(threshold=1 << 20, chunk_size=256 << 10, window=8, switch_below=None, start_flows=4)
    feed = BlobSources(sources, RetryPolicy(attempts=2, base=0.05, cap=0.1), settings)
    provenance = Provenance()
    data = b"".join(feed.read(layer, len(img.blobs[layer]), 0, provenance))
    contributors = provenance.contributors()
    assert "sha256:" + hashlib.sha256(data).hexdigest() == layer
    assert sources[0].bytes + sources[1].bytes == len(data)
    served = {p.name: p.bytes_out() for p in (stack.lan_proxy, stack.lan2_proxy)}
    assert served["lan"] > 1_000_000, served
    if fault:
        assert (sources[0].bytes, sources[1].bytes) == (len(data), 0) and contributors == {stack.lan}
    else:
        assert served["lan2"] > 1_000_000 and contributors == {stack.lan, stack.lan2}, served
        assert sources[1].bytes > 1_000_000


def test_a_hub_image_through_the_endpoint_is_a_verified_cache_hit_next_time(stack, repo, engine):
    img = publish(stack, repo, BASE, 1, hub=True, size=300_000, layers=2)
    res, _ = resolve(stack, repo, "--pull-via", "ranges", engine=engine)
    assert (res["source"], res["digest"]) == ("hub", img.digest)
    assert stack.hub_proxy.counted_gets() == 1  # the one manifest GET a direct pull makes too
    local = Engine(engine).local_image(f"{stack.hub}/{repo}:{tag_for(BASE, 1)}")
    assert local is not None and any(d.endswith("@" + img.digest) for d in local.repo_digests), local
    # Only names a user can read: the canonical tag and, on the classic store (which keeps only the
    # digest references it pulled), `127.0.0.1:PORT/<repo>@digest`, never the endpoint's prefix.
    mine = [n for n in names(engine) if repo in n]
    assert [n for n in mine if LOOPBACK_NAME.search(n)] == [], mine
    others = [n for n in mine if n != f"{stack.hub}/{repo}:{tag_for(BASE, 1)}" and not n.startswith(f"{stack.hub}/")]
    assert all(re.fullmatch(rf"127\.0\.0\.1:\d+/{re.escape(repo)}@{img.digest}", n) for n in others), mine
    again, _ = resolve(stack, repo, engine=engine)
    assert (again["source"], again["digest"], again["verified"]) == ("local", img.digest, True)
    assert stack.hub_proxy.counted_gets() == 1  # verifying the cache hit is a free HEAD


def test_a_stalled_lan_stream_is_resumed_by_the_reader(stack, repo):
    """Through the endpoint a LAN stream that stalls is the reader's to handle: its read timeout
    resumes it from the byte reached, and the pull completes from the LAN, never re-reading a byte."""
    img = publish(stack, repo, BASE, 1, hub=True, lan=True, size=3 << 20, layers=1)
    stack.lan_proxy.break_body("stall", after=1 << 20, path=img.layer_digests[0])
    # The floor off and the stall guard past the reader's 30 s read timeout: the reader's resume is
    # what is tested (with both on, whichever fires first wins: a resume, or a hand-off to the Hub).
    res, _ = resolve(stack, repo, "--pull-via", "ranges", "--stall-timeout", "60", "--min-pull-rate", "0",
                     lans=(stack.lan,))
    assert (res["source"], res["digest"]) == ("lan", img.digest)
    assert stack.hub_proxy.bytes_out() == 0
    assert stack.lan_proxy.bytes_out() < (3 << 20) + (1 << 20)


def test_a_hub_redirect_to_a_cdn_is_followed_without_the_registry_token(stack, repo):
    """The one reader's CDN handling, through the endpoint: the Hub's 307 is followed, the CDN never
    sees an Authorization header, and the daemon gets the right image (the reader's reuse of the
    signed URL and its refresh on expiry are tested in test_wan.py)."""
    from tests.stack.proxy import FaultProxy

    img = publish(stack, repo, BASE, 1, hub=True, size=300_000, layers=2)
    cdn = FaultProxy(stack.hub_registry.address, "cdn").start()
    try:
        stack.hub_proxy.cdn = cdn
        res, _ = resolve(stack, repo, "--pull-via", "ranges")
        assert (res["source"], res["digest"]) == ("hub", img.digest)
        assert [e.status for e in stack.hub_proxy.entries("GET", "/blobs/")].count(307) >= 2
        assert len(cdn.entries("GET")) >= 2 and cdn.cdn_saw_authorization == 0
    finally:
        cdn.stop()


def test_auto_leaves_a_fast_single_stream_to_the_daemon(stack, repo):
    """auto from a LAN: with no layer big enough for ranges, or one stream already at the reader's
    own switch rate (a LAN on loopback), the daemon pulls directly, and the attempts say why."""
    small = publish(stack, repo, BASE, 1, hub=True, lan=True, size=300_000, layers=2)
    res, _ = resolve(stack, repo, lans=(stack.lan_registry.address,))
    assert (res["source"], res["digest"]) == ("lan", small.digest)
    why = [a["result"] for a in res["attempts"] if a["source"] == "endpoint"]
    assert why == ["not needed (no layer over 64 MiB): the daemon pulls directly"], res["attempts"]
    assert [a["path"] for a in res["attempts"] if a["result"].startswith("pulled")] == ["daemon"]
    big = publish(stack, f"{repo}-big", BASE, 0, hub=True, lan=True, size=70 << 20, layers=1)
    res, _ = resolve(stack, f"{repo}-big", lans=(stack.lan_registry.address,))  # the registry itself: no proxy
    assert (res["source"], res["digest"]) == ("lan", big.digest)
    why = [a["result"] for a in res["attempts"] if a["source"] == "endpoint"]
    assert len(why) == 1 and why[0].startswith("not needed (one stream from it runs at "), res["attempts"]


def test_a_lan_corrupting_then_breaking_is_blamed_not_the_hub(stack, repo):
    """The LAN sends a wrong byte, then breaks every connection: the Hub finishes the blob from the
    byte reached, and the whole hashes wrong. Only the LAN is to blame (the Hub's own re-read of the
    first bytes plus its part hash right), so the daemon's retry is served by the Hub, and resolve
    delivers the Hub's image naming the LAN, never the Hub.

    Engine 20.10 (the classic store) only: the containerd store keeps the bytes it received in its
    ingest and resumes every later pull of that blob from them, wrong byte included, whoever serves
    the rest (its own direct pulls too); the blame is the same there, the image is not (docs/security.md)."""
    engine = stack.docker_host
    img = publish(stack, repo, BASE, 1, hub=True, lan=True, size=300_000, layers=1)
    layer = img.layer_digests[0]
    stack.lan_proxy.break_body("corrupt-reset", after=1000, count=1000, path=layer)  # wrong, then a break
    stack.lan_proxy.break_body("reset", after=1001, count=1000, path=layer)  # every resume breaks too
    res, _ = resolve(stack, repo, "--pull-via", "ranges", engine=engine, lans=(stack.lan,))
    assert res["digest"] == img.digest
    rows = served(res)
    assert "served wrong bytes" in rows[stack.lan]["result"], res["attempts"]
    assert "wrong bytes" not in rows[stack.hub]["result"] and rows[stack.hub]["bytes"] >= 300_000, rows
    local = Engine(engine).local_image(f"{stack.hub}/{repo}:{tag_for(BASE, 1)}")
    assert local is not None and any(d.endswith("@" + img.digest) for d in local.repo_digests)
