"""mirror-to-lan and prune on the real stack."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import time
import zipfile

import pytest

from lanmirror.cmd.wiring import Clients
from lanmirror.errors import BadInput, LanmirrorError
from lanmirror.ops.mirror import MirrorOptions, mirror
from lanmirror.ops.prune import prune
from lanmirror.retry import RetryPolicy
from lanmirror.sources.artifacts import safe_extract, tags_from_artifact
from tests.helpers import LANMIRROR, TODAY, publish, run_cli, tag_for
from tests.stack import images
from tests.stack.github import FakeGitHub

pytestmark = pytest.mark.integration
BASE = "v0.5.5-rocm700-mi30x"
FAST = RetryPolicy(attempts=3, base=0.1, cap=0.5)


def do_mirror(stack, repo, tags, **kw):
    return mirror(MirrorOptions(repo=repo, tags=tags, lan_registry=stack.lan, source_registry=stack.hub, **kw),
                  Clients(policy=FAST, daemon=False))


def test_multi_layer_image_copied_byte_for_byte_then_noop(stack, repo):
    img = publish(stack, repo, BASE, 0, layers=8, size=100_000)
    tag = tag_for(BASE, 0)
    report = do_mirror(stack, repo, [tag])
    r = report.results[0]
    assert report.ok and (r.status, r.digest, r.blobs_copied) == ("copied", img.digest, 9)
    lan = stack.client(stack.lan)
    assert lan.head_manifest(repo, tag).digest == img.digest
    assert lan.get_manifest(repo, tag).body == img.manifest.body
    assert stack.hub_proxy.counted_gets() == 1  # the one manifest GET a copy needs
    stack.clear_faults()
    report = do_mirror(stack, repo, [tag])
    assert report.results[0].status == "unchanged"
    # HEADs only, and no 401 round trip (the Hub's auth challenge is remembered from the first
    # run): the tag on each side, then what could refer to it (cosign's three tags and the fallback
    # tag on the Hub, the tag's media type on the LAN) and one probe of the Hub's referrers API.
    fallback = f"sha256-{img.digest[7:]}"
    hub = sorted((e.method, e.path.rsplit("/", 1)[-1]) for e in stack.hub_proxy.entries())
    assert hub == sorted([("GET", img.digest), ("HEAD", tag), ("HEAD", fallback)]
                         + [("HEAD", f"{fallback}.{kind}") for kind in ("sig", "att", "sbom")]), hub
    assert stack.hub_proxy.counted_gets() == 0  # the GET is the referrers API's 404, not a manifest
    assert [e.method for e in stack.lan_proxy.entries()] == ["HEAD", "HEAD"]


def test_two_platform_index(stack, repo):
    imgs = {"amd64": images.build([f"{repo}-amd"], 30_000, "amd64"),
            "arm64": images.build([f"{repo}-arm"], 30_000, "arm64")}
    digest = images.push_index(stack.hub_client(), repo, "multi", imgs)
    stack.clear_faults()
    report = do_mirror(stack, repo, ["multi"])
    assert report.ok and report.results[0].digest == digest
    lan = stack.client(stack.lan)
    index = lan.get_manifest(repo, "multi")
    assert index.digest == digest and index.is_index
    for img in imgs.values():
        assert lan.get_manifest(repo, img.digest).body == img.manifest.body


def test_incremental_nightly_moves_only_the_new_layer(stack, repo):
    shared = [f"{repo}-shared-{i}" for i in range(7)]
    yesterday = images.build([*shared, f"{repo}-y"], 200_000)
    today = images.build([*shared, f"{repo}-t"], 200_000)
    hub = stack.hub_client()
    images.push(hub, repo, tag_for(BASE, 1), yesterday)
    images.push(hub, repo, tag_for(BASE, 0), today)
    images.push(stack.client(stack.lan), repo, tag_for(BASE, 1), yesterday)
    stack.clear_faults()
    report = do_mirror(stack, repo, [tag_for(BASE, 0)])
    r = report.results[0]
    new_layer = today.layer_digests[-1]
    config = today.manifest.blobs()[0].digest
    assert (r.blobs_copied, r.blobs_skipped) == (2, 7)
    assert stack.hub_proxy.bytes_out() == len(today.blobs[new_layer]) + len(today.blobs[config])
    assert r.bytes == stack.hub_proxy.bytes_out()


def test_cross_repository_mount(stack, repo):
    other = repo + "-base"
    img = images.build([f"{repo}-m1", f"{repo}-m2"], 50_000)
    images.push(stack.client(stack.lan), other, "base", img)
    images.push(stack.hub_client(), repo, "t", img)
    stack.clear_faults()
    report = do_mirror(stack, repo, ["t"], mount_from=[other])
    r = report.results[0]
    assert r.ok and r.blobs_mounted == 3 and r.blobs_copied == 0
    assert stack.hub_proxy.bytes_out() == 0


def test_corrupt_source_bytes_are_caught_and_nothing_is_tagged(stack, repo):
    publish(stack, repo, BASE, 0, layers=1, size=300_000)
    stack.hub_proxy.break_body("corrupt", after=1000, count=100)
    report = do_mirror(stack, repo, [tag_for(BASE, 0)])
    assert not report.ok and "corrupt data refused" in report.results[0].error
    assert stack.client(stack.lan).head_manifest(repo, tag_for(BASE, 0)) is None


def test_one_corrupt_read_is_retried(stack, repo):
    img = publish(stack, repo, BASE, 0, layers=1, size=300_000)
    stack.hub_proxy.break_body("corrupt", after=1000, count=1)
    report = do_mirror(stack, repo, [tag_for(BASE, 0)])
    assert report.ok and report.results[0].digest == img.digest


def test_killed_mid_blob_then_rerun_completes_and_tag_never_early(stack, repo):
    img = publish(stack, repo, BASE, 0, layers=4, size=2 << 20)
    tag = tag_for(BASE, 0)
    stack.hub_proxy.break_body("stall", after=1 << 20)
    env = {**stack.env()}
    proc = subprocess.Popen([LANMIRROR, "mirror", "--repo", repo, "--tag", tag, "--source-registry", stack.hub,
                             "--lan-registry", stack.lan, "--parallel", "2"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    lan = stack.client(stack.lan)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any("stall" in e.fault for e in stack.hub_proxy.entries("GET")):
        assert lan.head_manifest(repo, tag) is None
        time.sleep(0.05)
    # let the other stream finish its blob, so the rerun has something to skip
    time.sleep(1.0)
    assert lan.head_manifest(repo, tag) is None
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    assert lan.head_manifest(repo, tag) is None
    stack.clear_faults()
    report = do_mirror(stack, repo, [tag])
    r = report.results[0]
    assert r.ok and r.digest == img.digest and r.blobs_skipped >= 1
    assert lan.head_manifest(repo, tag).digest == img.digest


def test_dry_run_copies_nothing(stack, repo):
    publish(stack, repo, BASE, 0, layers=3)
    report = do_mirror(stack, repo, [tag_for(BASE, 0)], dry_run=True)
    r = report.results[0]
    assert r.status == "dry-run" and r.blobs_copied == 4 and r.bytes > 0 and r.plan
    assert stack.client(stack.lan).head_manifest(repo, tag_for(BASE, 0)) is None
    assert not stack.lan_proxy.entries("PUT") and not stack.lan_proxy.entries("POST")


def test_overwrite_and_no_overwrite(stack, repo):
    tag = tag_for(BASE, 0)
    publish(stack, repo, BASE, 0, hub=False, lan=True, variant="-old")
    new = publish(stack, repo, BASE, 0, hub=True)
    refused = do_mirror(stack, repo, [tag], overwrite=False)
    assert not refused.ok and "overwriting is off" in refused.results[0].error
    replaced = do_mirror(stack, repo, [tag])
    assert replaced.results[0].status == "replaced" and replaced.results[0].previous_digest
    assert stack.client(stack.lan).head_manifest(repo, tag).digest == new.digest


def test_cli_backfill_tag_file_and_exit_codes(stack, repo, tmp_path):
    for days in (0, 2, 5):
        publish(stack, repo, BASE, days)
    proc = run_cli(stack, "mirror", "--repo", repo, "--backfill", "4", "--base-tag", BASE, "--source-registry",
                   stack.hub, "--lan-registry", stack.lan, "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert [m["tag"] for m in out["mirrored"]] == [tag_for(BASE, 2), tag_for(BASE, 0)]
    folder = tmp_path / "tags"
    folder.mkdir()
    (folder / "mi30x.txt").write_text(f"  {tag_for(BASE, 5)}\n")
    (folder / "mi35x.txt").write_text(f"{tag_for(BASE, 0)}\n")
    proc = run_cli(stack, "mirror", "--repo", repo, "--tag-file", str(folder), "--source-registry", stack.hub,
                   "--lan-registry", stack.lan, "--json")
    out = json.loads(proc.stdout)
    assert proc.returncode == 0 and out["skipped"] == [tag_for(BASE, 0)]
    statuses = {r["tag"]: r["status"] for r in out["results"]}
    assert statuses == {tag_for(BASE, 5): "copied", tag_for(BASE, 0): "unchanged"}
    (folder / "evil.txt").write_text("$(rm -rf /)\n")
    proc = run_cli(stack, "mirror", "--repo", repo, "--tag-file", str(folder), "--source-registry", stack.hub,
                   "--lan-registry", stack.lan)
    assert proc.returncode == 2 and "evil.txt:1: invalid tag" in proc.stderr
    proc = run_cli(stack, "mirror", "--repo", repo, "--tag", "missing-20000101", "--tag", tag_for(BASE, 2),
                   "--source-registry", stack.hub, "--lan-registry", stack.lan, "--json")
    out = json.loads(proc.stdout)
    assert proc.returncode == 1 and [m["tag"] for m in out["mirrored"]] == [tag_for(BASE, 2)]
    proc = run_cli(stack, "mirror", "--repo", repo, "--tag", "t", "--source-registry", stack.hub)
    assert proc.returncode == 2 and "no LAN registry" in proc.stderr


def test_docker_engine_mirror(stack, repo, caplog):
    """pull + tag + push through the daemon. The daemon re-compresses layers on push, so the LAN
    digest differs from the Hub's: reported, warned about, and why `registry` is the default."""
    from lanmirror.daemon.engine import Engine

    img = publish(stack, repo, BASE, 0, layers=2)
    no_daemon = do_mirror(stack, repo, [tag_for(BASE, 0)], engine="docker")
    assert not no_daemon.ok and "needs the Docker daemon" in no_daemon.results[0].error
    report = mirror(MirrorOptions(repo=repo, tags=[tag_for(BASE, 0)], lan_registry=stack.lan,
                                  source_registry=stack.hub, engine="docker"),
                    Clients(policy=FAST, docker_host=stack.docker_host))
    assert report.ok, report.results[0].error
    on_lan = stack.client(stack.lan).head_manifest(repo, tag_for(BASE, 0)).digest
    assert report.results[0].digest == on_lan
    assert Engine(stack.docker_host).local_image(f"{stack.lan}/{repo}:{tag_for(BASE, 0)}") is not None
    if on_lan != img.digest:
        assert "docker may re-encode" in caplog.text


def make_zip(files: dict[str, bytes], symlink: str | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (0o120777 << 16)
            z.writestr(info, "/etc/passwd")
    return buf.getvalue()


@pytest.fixture
def github():
    gh = FakeGitHub().start()
    yield gh
    gh.stop()


def test_from_artifact_via_pygithub(stack, repo, github, tmp_path):
    img = publish(stack, repo, BASE, 1)
    github.artifacts[4242] = {"nightly-tag-mi30x": make_zip({"mi30x.txt": f"{tag_for(BASE, 1)}\n".encode()}),
                              "other": make_zip({"x.txt": b"not-this\n"})}
    github.workflow_runs["release-docker-amd-nightly.yml"] = [4242]
    env = {"GITHUB_TOKEN": github.token, "GITHUB_REPOSITORY": github.repository, "GITHUB_API_URL": github.api,
           "GITHUB_RUN_ID": "4242"}
    proc = run_cli(stack, "mirror", "--repo", repo, "--from-artifact", "nightly-tag-*", "--source-registry",
                   stack.hub, "--lan-registry", stack.lan, "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["mirrored"] == [{"tag": tag_for(BASE, 1), "digest": img.digest}]
    storage = [r for r in github.requests if r[1].startswith("/storage/")]
    assert storage and all(auth == "" for _, _, auth in storage)  # the token never went to storage
    assert github.token not in proc.stdout + proc.stderr
    tags = tags_from_artifact("nightly-tag-*", tmp_path, token=github.token, repository=github.repository,
                              api_url=github.api, workflow="release-docker-amd-nightly.yml")
    assert tags == [tag_for(BASE, 1)]


@pytest.mark.parametrize(
    ("files", "symlink", "message"),
    [
        ({"../escape.txt": b"t\n"}, None, "escapes"),
        ({"/abs.txt": b"t\n"}, None, "escapes"),
        ({}, "link.txt", "symlink"),
        ({f"f{i}.txt": b"t\n" for i in range(100)}, None, "at most"),
        ({"big.txt": b"a" * (2 << 20)}, None, "more than"),
    ],
)
def test_unsafe_artifact_zips_are_refused(tmp_path, files, symlink, message):
    with pytest.raises(BadInput, match=message):
        safe_extract(make_zip(files, symlink), tmp_path)
    assert not any(tmp_path.parent.glob("escape.txt"))


def test_artifact_with_bad_tags_mirrors_nothing(stack, repo, github):
    github.artifacts[77] = {"nightly-tag": make_zip({"mi30x.txt": b"tag with spaces\n"})}
    env = {"GITHUB_TOKEN": github.token, "GITHUB_REPOSITORY": github.repository, "GITHUB_API_URL": github.api}
    proc = run_cli(stack, "mirror", "--repo", repo, "--from-artifact", "nightly-tag", "--run-id", "77",
                   "--source-registry", stack.hub, "--lan-registry", stack.lan, env=env)
    assert proc.returncode == 2 and "invalid tag" in proc.stderr
    assert stack.lan_proxy.entries() == []
    github.artifacts[78] = {"nightly-tag": make_zip({"mi30x.txt": b"\n  \n"})}
    proc = run_cli(stack, "mirror", "--repo", repo, "--from-artifact", "nightly-tag", "--run-id", "78",
                   "--source-registry", stack.hub, "--lan-registry", stack.lan, env=env)
    assert proc.returncode == 2 and "empty" in proc.stderr


def test_prune_deletes_exactly_the_old_nightlies(stack, repo):
    lan = stack.client(stack.lan)
    imgs = {d: publish(stack, repo, BASE, d, hub=False, lan=True) for d in (0, 1, 5, 9)}
    same_as_today = tag_for(BASE, 12)
    lan.put_manifest(repo, same_as_today, imgs[0].manifest)  # an old tag sharing today's digest
    lan.put_manifest(repo, "latest", imgs[9].manifest)  # not a nightly, same digest as an old one
    images.push(lan, repo, "stable", images.build([f"{repo}-stable"], 1000))
    dry = prune(lan, repo, 3, dry_run=True, today=TODAY)
    assert sorted(dry.deleted) == sorted([tag_for(BASE, 5)])
    assert sorted(dry.shared) == sorted([tag_for(BASE, 9), same_as_today])
    assert sorted(lan.list_tags(repo)) == sorted([tag_for(BASE, d) for d in (0, 1, 5, 9)] +
                                                 [same_as_today, "latest", "stable"])
    report = prune(lan, repo, 3, today=TODAY)
    assert report.deleted == [tag_for(BASE, 5)]
    assert sorted(lan.list_tags(repo)) == sorted([tag_for(BASE, d) for d in (0, 1, 9)] +
                                                 [same_as_today, "latest", "stable"])
    assert lan.head_manifest(repo, "latest").digest == imgs[9].digest


def test_workflow_artifacts_come_only_from_trusted_default_branch_runs(github, tmp_path):
    """A pull request's run (a fork's or a branch's) is newer, and its artifact names another tag:
    --workflow still takes the scheduled run on the default branch; --any-branch takes the newest."""
    github.artifacts[5001] = {"nightly-tag-mi30x": make_zip({"mi30x.txt": b"evil-20261130\n"})}
    github.artifacts[5002] = {"nightly-tag-mi30x": make_zip({"mi30x.txt": b"fork-20261130\n"})}
    github.artifacts[4242] = {"nightly-tag-mi30x": make_zip({"mi30x.txt": b"good-20261129\n"})}
    github.workflow_runs["release.yml"] = [5001, 5002, 4242]  # newest first, as GitHub lists them
    github.run_origin[5001] = ("main", "pull_request", github.repository)
    github.run_origin[5002] = ("main", "push", "mallory/sglang")
    kw = {"token": github.token, "repository": github.repository, "api_url": github.api, "workflow": "release.yml"}
    assert tags_from_artifact("nightly-tag-*", tmp_path / "a", **kw) == ["good-20261129"]
    assert tags_from_artifact("nightly-tag-*", tmp_path / "b", any_branch=True, **kw) == ["evil-20261130"]
    github.workflow_runs["release.yml"] = [5001]
    with pytest.raises(LanmirrorError, match="no successful run from push, schedule or workflow_dispatch"):
        tags_from_artifact("nightly-tag-*", tmp_path / "c", **kw)


def test_a_planted_netrc_never_reaches_the_artifact_storage(stack, repo, github, tmp_path):
    """GitHub's 302 leads to another host; requests, left to itself, asks ~/.netrc about that host.
    A runner's home is anyone's: nothing from it may go with the download."""
    img = publish(stack, repo, BASE, 1)
    github.artifacts[4343] = {"nightly-tag-mi30x": make_zip({"mi30x.txt": f"{tag_for(BASE, 1)}\n".encode()})}
    home = tmp_path / "home"
    home.mkdir()
    (home / ".netrc").write_text("machine localhost login netrc-user password netrc-planted\n")
    (home / ".netrc").chmod(0o600)
    env = {"GITHUB_TOKEN": github.token, "GITHUB_REPOSITORY": github.repository, "GITHUB_API_URL": github.api,
           "GITHUB_RUN_ID": "4343", "HOME": str(home)}
    proc = run_cli(stack, "mirror", "--repo", repo, "--from-artifact", "nightly-tag-*", "--source-registry",
                   stack.hub, "--lan-registry", stack.lan, "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["mirrored"] == [{"tag": tag_for(BASE, 1), "digest": img.digest}]
    storage = [r for r in github.requests if r[1].startswith("/storage/")]
    assert storage and all(auth == "" for _, _, auth in storage), storage
