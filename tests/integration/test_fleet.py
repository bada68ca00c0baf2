"""Fleet scale on the real stack: runners spread over LAN replicas, runner disks pruned."""

import json

import docker
import pytest

from lanmirror.cmd.wiring import Clients
from lanmirror.ops.resolve import ResolveOptions, resolve
from lanmirror.ops.resolve.spread import rendezvous
from lanmirror.retry import RetryPolicy
from tests.helpers import TODAY, publish, run_cli, tag_for

pytestmark = pytest.mark.integration
BASE = "v0.5.5-rocm700-mi30x"
FAST = RetryPolicy(attempts=2, base=0.1, cap=0.3)
RUNNERS = [f"gpu-runner-{i:02d}" for i in range(1, 9)]


@pytest.fixture(autouse=True)
def own_notes(tmp_path, monkeypatch):
    monkeypatch.setenv("LANMIRROR_CACHE", str(tmp_path / "cache"))


def chosen(stack, repo, runner):
    res = resolve(ResolveOptions(repo=repo, base_tags=[BASE], lan_registries=[stack.lan, stack.lan2],
                                 hub_registry=stack.hub, today=TODAY, pull=False, lan_select="spread",
                                 runner_id=runner, probe_timeout=1), Clients(policy=FAST, daemon=False))
    return res.source, res.registry


def test_spread_sticks_each_runner_to_its_replica_and_survives_one_down(stack, repo):
    publish(stack, repo, BASE, 1, hub=True, lan=True, lan2=True)
    first = {r: chosen(stack, repo, r) for r in RUNNERS}
    assert first == {r: ("lan", rendezvous(r, [stack.lan, stack.lan2])[0]) for r in RUNNERS}
    assert {r: chosen(stack, repo, r) for r in RUNNERS} == first  # stable across runs
    stack.lan_proxy.mode = "refuse"
    assert {chosen(stack, repo, r) for r in RUNNERS} == {("lan", stack.lan2)}
    assert stack.hub_proxy.counted_gets() == 0


def test_spread_prefers_a_replica_that_holds_the_newest_tag(stack, repo):
    publish(stack, repo, BASE, 2, hub=True, lan=True, lan2=True)
    publish(stack, repo, BASE, 1, hub=True, lan2=True)  # only the second replica has yesterday's
    assert {chosen(stack, repo, r) for r in RUNNERS} == {("lan", stack.lan2)}


def cache_nightly(stack, repo, days_ago, img):
    api = docker.APIClient(base_url=stack.docker_host, version="auto")
    ref = f"{stack.hub}/{repo}@{img.digest}"
    for _ in api.pull(ref, stream=True, decode=True):
        pass
    api.tag(ref, f"{stack.hub}/{repo}", tag_for(BASE, days_ago))
    return api


def local_tags(api, stack, repo):
    return sorted(t for i in api.images() for t in i.get("RepoTags") or [] if t.startswith(f"{stack.hub}/{repo}:"))


def test_prune_local_keeps_the_newest_and_what_containers_use(stack, repo):
    images = {d: publish(stack, repo, BASE, d, hub=True, size=30_000 + d) for d in (1, 2, 3, 4)}
    api = None
    for d, img in images.items():
        api = cache_nightly(stack, repo, d, img)
    assert api is not None
    used = api.create_container(f"{stack.hub}/{repo}:{tag_for(BASE, 4)}", command=["/x"])  # stopped, never run
    args = ["prune", "--local", "--repo", repo, "--base-tag", BASE, "--keep", "2", "--hub-registry", stack.hub,
            "--json"]
    dry = run_cli(stack, *args, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    report = json.loads(dry.stdout)
    assert [r["tag"] for r in report["removed"]] == [tag_for(BASE, 3)] and report["dry_run"]
    assert len(local_tags(api, stack, repo)) == 4
    real = run_cli(stack, *args)
    report = json.loads(real.stdout)
    assert real.returncode == 0 and [r["tag"] for r in report["removed"]] == [tag_for(BASE, 3)]
    assert report["bytes_freed"] > 0 and report["in_use"] == [tag_for(BASE, 4)]
    assert local_tags(api, stack, repo) == sorted(f"{stack.hub}/{repo}:{tag_for(BASE, d)}" for d in (1, 2, 4))
    api.remove_container(used["Id"])
    for bad, message in ((["--base-tag", BASE, "--keep", "0"], "--keep 0"), (["--keep", "2"], "--base-tag")):
        proc = run_cli(stack, "prune", "--local", "--repo", repo, "--hub-registry", stack.hub, *bad)
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert local_tags(api, stack, repo) == sorted(f"{stack.hub}/{repo}:{tag_for(BASE, d)}" for d in (1, 2, 4))


def stored_blobs(registry) -> set[str]:
    root = registry.root / "data" / "docker" / "registry" / "v2" / "blobs" / "sha256"
    return {f"sha256:{p.parent.name}" for p in root.glob("*/*/data")} if root.exists() else set()


def test_a_pull_through_cache_is_warmed_not_claimed_unchanged(stack, repo):
    img = publish(stack, repo, BASE, 0, hub=True, layers=3)
    target = stack.pull_through.address
    assert not set(img.blobs) & stored_blobs(stack.pull_through)
    proc = run_cli(stack, "mirror", "--repo", repo, "--tag", tag_for(BASE, 0), "--source-registry", stack.hub,
                   "--lan-registry", target, "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)["results"][0]
    assert (result["status"], result["digest"], result["blobs_copied"]) == ("warmed", img.digest, len(img.blobs))
    assert set(img.blobs) <= stored_blobs(stack.pull_through)  # the cache now holds every blob
    res = resolve(ResolveOptions(repo=repo, base_tags=[BASE], lan_registries=[target], hub_registry=stack.hub,
                                 today=TODAY, pull=False), Clients(policy=FAST, daemon=False))
    assert (res.source, res.registry, res.digest, res.verified) == ("lan", target, img.digest, True)


def hub_blob_bytes(stack) -> int:
    return sum(e.bytes_out for e in stack.hub_proxy.entries("GET") if "/blobs/" in e.path)


def test_fan_out_reads_each_source_blob_once_for_three_targets(stack, repo):
    img = publish(stack, repo, BASE, 0, hub=True, layers=3, size=300_000)
    targets = [stack.lan, stack.lan2, stack.lan3]
    args = [a for t in targets for a in ("--lan-registry", t)]
    proc = run_cli(stack, "mirror", "--repo", repo, "--tag", tag_for(BASE, 0), "--source-registry", stack.hub,
                   *args, "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)["results"]
    assert sorted((r["registry"], r["status"]) for r in rows) == sorted((t, "copied") for t in targets)
    for target in targets:
        assert stack.client(target).head_manifest(repo, tag_for(BASE, 0)).digest == img.digest
    assert hub_blob_bytes(stack) == sum(len(b) for b in img.blobs.values())  # 1.0x the image, not 3.0x
    assert stack.hub_proxy.counted_gets() == 1  # one manifest GET for all three


def test_fan_out_a_refusing_target_fails_alone_and_a_broken_one_is_retried_alone(stack, repo):
    img = publish(stack, repo, BASE, 0, hub=True, layers=3, size=300_000)
    image_bytes = sum(len(b) for b in img.blobs.values())
    stack.lan2_proxy.fail(403, 1000, method="POST", path="/blobs/uploads/")
    stack.lan3_proxy.break_upload(after=100_000, count=1, method="PUT")
    targets = [stack.lan, stack.lan2, stack.lan3]
    args = ["mirror", "--repo", repo, "--tag", tag_for(BASE, 0), "--source-registry", stack.hub, "--json",
            *[a for t in targets for a in ("--lan-registry", t)]]
    proc = run_cli(stack, *args)
    assert proc.returncode == 1, proc.stderr
    rows = {r["registry"]: r for r in json.loads(proc.stdout)["results"]}
    assert (rows[stack.lan]["status"], rows[stack.lan3]["status"], rows[stack.lan2]["status"]) == (
        "copied", "copied", "failed")
    assert "403" in rows[stack.lan2]["error"]
    assert stack.client(stack.lan2).head_manifest(repo, tag_for(BASE, 0)) is None  # nothing half-published
    # the broken target read its blob again alone; the others shared one read
    assert image_bytes < hub_blob_bytes(stack) < 2 * image_bytes
    stack.clear_faults()
    again = run_cli(stack, *args)
    rows = {r["registry"]: r for r in json.loads(again.stdout)["results"]}
    assert again.returncode == 0 and [rows[t]["status"] for t in targets] == ["unchanged", "copied", "unchanged"]
    assert stack.client(stack.lan2).head_manifest(repo, tag_for(BASE, 0)).digest == img.digest
