"""Signatures, attestations and SBOMs travel with the image (issue: cosign tags and OCI referrers).

Made by the real clients from Debian 13 in the second engine's chroot: cosign 2.5 signs and attests,
oras 1.2 attaches an SBOM (Distribution has no referrers API: oras writes the fallback tag), buildx
0.13 pushes a multi-platform index with provenance. The source is the `lan2` registry (plain HTTP,
no login: the clients need none), the target `lan`; both are Debian's Distribution. An API-capable
registry is emulated from the spec's shapes (`tests/stack/ocireg.py`)."""

from __future__ import annotations

import json
import uuid

import pytest

from lanmirror.cmd.wiring import Clients
from lanmirror.ops.mirror import MirrorOptions, mirror
from lanmirror.ops.prune import prune
from lanmirror.remote.manifest import Manifest, sha256_digest
from lanmirror.remote.referrers import COSIGN, cosign_tag, fallback_tag, list_referrers
from lanmirror.remote.registry import Registry
from lanmirror.retry import RetryPolicy
from tests.helpers import TODAY, publish, run_cli, tag_for
from tests.stack import images
from tests.stack.ocireg import ReferrersRegistry

pytestmark = pytest.mark.integration
BASE = "v0.5.5-rocm700-mi30x"
FAST = RetryPolicy(attempts=3, base=0.1, cap=0.5)
SPDX = "application/spdx+json"
SBOM = json.dumps({"spdxVersion": "SPDX-2.3", "SPDXID": "SPDXRef-DOCUMENT", "name": "sgl-dev",
                   "dataLicense": "CC0-1.0", "documentNamespace": "https://example.invalid/sbom"})


class Tools:
    """cosign, oras and docker buildx from the trixie chroot, with one key pair."""

    def __init__(self, stack) -> None:
        self.d26 = stack.dockerd26
        self.dir = f"/tmp/lmt-{uuid.uuid4().hex[:8]}"
        (self.d26.rootfs / self.dir[1:]).mkdir(parents=True)
        (self.d26.rootfs / self.dir[1:] / "sbom.json").write_text(SBOM)
        self.run("cosign", "generate-key-pair")

    def run(self, *args: str, check: bool = True):
        proc = self.d26.tool("sh", "-c", f"cd {self.dir} && " + " ".join(f"'{a}'" for a in args),
                             env={"COSIGN_PASSWORD": "", "COSIGN_YES": "true"})
        if check:
            assert proc.returncode == 0, f"{args}: {proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        return proc

    def sign(self, ref: str) -> None:
        self.run("cosign", "sign", "--yes", "--key", "cosign.key", "--tlog-upload=false", "--allow-insecure-registry",
                 ref)

    def attest(self, ref: str) -> None:
        self.run("cosign", "attest", "--yes", "--key", "cosign.key", "--tlog-upload=false",
                 "--allow-insecure-registry", "--type", "spdxjson", "--predicate", "sbom.json", ref)

    def attach(self, ref: str, artifact_type: str = SPDX) -> None:
        self.run("oras", "attach", "--plain-http", "--artifact-type", artifact_type, ref, f"sbom.json:{artifact_type}")

    def verify(self, ref: str) -> None:
        self.run("cosign", "verify", "--key", "cosign.pub", "--insecure-ignore-tlog", "--allow-insecure-registry", ref)
        self.run("cosign", "verify-attestation", "--key", "cosign.pub", "--insecure-ignore-tlog",
                 "--allow-insecure-registry", "--type", "spdxjson", ref)

    def discover(self, ref: str) -> str:
        return self.run("oras", "discover", "--plain-http", "--format", "json", ref).stdout


def copy_blob(src: Registry, dst: Registry, src_repo: str, dst_repo: str, digest: str) -> None:
    resp = src.open_blob(src_repo, digest)
    data = resp.content
    resp.close()
    assert dst.upload_bytes(dst_repo, data) == digest


def put_raw(reg: Registry, repo: str, body: bytes, media_type: str, ref: str | None = None) -> str:
    manifest = Manifest(body, media_type, sha256_digest(body))
    return reg.put_manifest(repo, ref or manifest.digest, manifest)


@pytest.fixture(scope="module")
def tools(_stack):
    return Tools(_stack)


def do_mirror(stack, repo, tags, source=None, target=None, **kw):
    return mirror(MirrorOptions(repo=repo, tags=tags, lan_registry=target or stack.lan,
                                source_registry=source or stack.lan2, **kw), Clients(policy=FAST, daemon=False))


def signed_image(stack, repo, tools, days_ago=1):
    """A nightly on the source, signed, attested and with an SBOM attached by oras."""
    img = publish(stack, repo, BASE, days_ago, hub=False, lan2=True)
    ref = f"{stack.lan2}/{repo}@{img.digest}"
    tools.sign(ref)
    tools.attest(ref)
    tools.attach(ref)
    stack.clear_faults()
    return img, ref


def manifests_equal(stack, repo, ref: str) -> bool:
    src, dst = stack.client(stack.lan2), stack.client(stack.lan)
    return src.get_manifest(repo, ref).body == dst.get_manifest(repo, ref).body


def test_cosign_and_oras_referrers_are_copied_and_verify_on_the_lan(stack, repo, tools):
    img, _ = signed_image(stack, repo, tools)
    tag = tag_for(BASE, 1)
    report = do_mirror(stack, repo, [tag])
    row = report.results[0]
    assert report.ok and row.status == "copied", row.error
    assert row.referrers_copied == 3  # .sig, .att, the oras SBOM
    lan_ref = f"{stack.lan}/{repo}@{img.digest}"
    tools.verify(lan_ref)
    assert SPDX in tools.discover(lan_ref)
    # Byte for byte: the cosign tags, the fallback tag's index and the referrer itself.
    for kind in ("sig", "att"):
        assert manifests_equal(stack, repo, cosign_tag(img.digest, kind))
    assert manifests_equal(stack, repo, fallback_tag(img.digest))
    listed = list_referrers(stack.client(stack.lan), repo, img.digest)
    assert [r.artifact_type for r in listed.items] == [SPDX] and not listed.api
    assert manifests_equal(stack, repo, listed.items[0].digest)

    # A second mirror: nothing written, a handful of HEADs (and the API probe's 404) per side.
    stack.clear_faults()
    again = do_mirror(stack, repo, [tag])
    assert again.results[0].status == "unchanged" and again.results[0].referrers_copied == 0
    lan = stack.lan_proxy.entries()
    assert [e for e in lan if e.method not in ("HEAD", "GET")] == []
    assert [e.method for e in lan].count("GET") == 0 and len(lan) <= 6, [(e.method, e.path) for e in lan]
    src = stack.lan2_proxy.entries()
    assert {e.method for e in src} <= {"HEAD", "GET"} and len(src) <= 8, [(e.method, e.path) for e in src]
    assert [e.path for e in src if e.method == "GET"] == []


def test_two_targets_each_get_the_signatures(stack, repo, tools):
    """mirror to several LAN registries at once (one read of each image blob for all): each target
    still gets every referrer, and `cosign verify` works on each."""
    img, _ = signed_image(stack, repo, tools)
    proc = run_cli(stack, "mirror", "--repo", repo, "--tag", tag_for(BASE, 1), "--source-registry", stack.lan2,
                   "--lan-registry", stack.lan, "--lan-registry", stack.lan3, "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["referrers"] == 6 and [r["referrers_copied"] for r in data["results"]] == [3, 3]
    for target in (stack.lan, stack.lan3):
        tools.verify(f"{target}/{repo}@{img.digest}")
        assert SPDX in tools.discover(f"{target}/{repo}@{img.digest}")


def test_referrers_none_copies_the_image_alone_and_artifact_type_filters(stack, repo, tools):
    img, _ = signed_image(stack, repo, tools)
    tag = tag_for(BASE, 1)
    assert do_mirror(stack, repo, [tag], referrers="none").results[0].referrers_copied == 0
    lan = stack.client(stack.lan)
    assert lan.head_manifest(repo, cosign_tag(img.digest, "sig")) is None
    assert lan.head_manifest(repo, fallback_tag(img.digest)) is None
    row = do_mirror(stack, repo, [tag], artifact_types=[SPDX]).results[0]
    assert (row.status, row.referrers_copied) == ("unchanged", 1)
    assert lan.head_manifest(repo, cosign_tag(img.digest, "sig")) is None
    assert [r.artifact_type for r in list_referrers(lan, repo, img.digest).items] == [SPDX]
    row = do_mirror(stack, repo, [tag], artifact_types=[COSIGN["sig"]]).results[0]
    assert row.referrers_copied == 1 and lan.head_manifest(repo, cosign_tag(img.digest, "sig")) is not None


def test_an_existing_fallback_index_on_the_target_is_merged_not_replaced(stack, repo, tools):
    img, _ = signed_image(stack, repo, tools)
    tag = tag_for(BASE, 1)
    do_mirror(stack, repo, [tag], referrers="none")
    # Another client attached its own artifact to the LAN copy first.
    tools.attach(f"{stack.lan}/{repo}@{img.digest}", "application/vnd.example.scan+json")
    lan = stack.client(stack.lan)
    before = {r.digest for r in list_referrers(lan, repo, img.digest).items}
    assert len(before) == 1
    row = do_mirror(stack, repo, [tag]).results[0]
    assert row.referrers_copied == 3, row.error
    after = list_referrers(lan, repo, img.digest).items
    assert before < {r.digest for r in after}
    assert sorted(r.artifact_type for r in after) == sorted(["application/vnd.example.scan+json", SPDX])
    assert "application/vnd.example.scan+json" in tools.discover(f"{stack.lan}/{repo}@{img.digest}")


def test_a_multi_platform_index_with_provenance_and_a_signed_child(stack, repo, tools, tmp_path):
    ctx = stack.dockerd26.rootfs / tools.dir[1:] / "ctx"
    ctx.mkdir()
    (ctx / "hello.txt").write_text(repo)
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY hello.txt /\n")
    tag = tag_for(BASE, 2)
    proc = stack.dockerd26.tool("docker", "buildx", "build", "--provenance=mode=max", "--platform", "linux/amd64",
                                "--push", "-t", f"{stack.lan2}/{repo}:{tag}", f"{tools.dir}/ctx",
                                env={"DOCKER_HOST": "unix:///run/lmt-docker.sock"}, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    src = stack.client(stack.lan2)
    index = src.get_manifest(repo, tag)
    assert index.is_index
    children = index.children()
    image_child = next(c for c in children if (c.platform or {}).get("architecture") == "amd64")
    tools.sign(f"{stack.lan2}/{repo}@{image_child.digest}")  # a platform's own signature
    tools.sign(f"{stack.lan2}/{repo}@{index.digest}")
    stack.clear_faults()
    row = do_mirror(stack, repo, [tag]).results[0]
    assert row.status == "copied" and row.referrers_copied == 2, row.error
    lan = stack.client(stack.lan)
    assert lan.get_manifest(repo, tag).body == index.body
    for child in children:  # the attestation manifest of buildx included, byte for byte
        assert lan.get_manifest(repo, child.digest).body == src.get_manifest(repo, child.digest).body
    for digest in (index.digest, image_child.digest):
        tools.run("cosign", "verify", "--key", "cosign.pub", "--insecure-ignore-tlog", "--allow-insecure-registry",
                  f"{stack.lan}/{repo}@{digest}")


def test_an_api_capable_target_lists_them_itself_and_an_api_capable_source_is_read(stack, repo, tools):
    img, _ = signed_image(stack, repo, tools)
    tag = tag_for(BASE, 1)
    api = ReferrersRegistry().start()
    try:
        row = do_mirror(stack, repo, [tag], target=api.address).results[0]
        assert row.status == "copied" and row.referrers_copied == 3, row.error
        client = stack.client(api.address)
        listed = list_referrers(client, repo, img.digest)
        assert listed.api and [r.artifact_type for r in listed.items] == [SPDX]
        assert client.head_manifest(repo, fallback_tag(img.digest)) is None  # no fallback tag where the API is
        assert client.head_manifest(repo, cosign_tag(img.digest, "sig")) is not None
        api.requests.clear()
        assert do_mirror(stack, repo, [tag], target=api.address).results[0].referrers_copied == 0
        assert api.writes() == []
        # The API-capable registry as the source: the target (no API) gets the fallback tag.
        other = f"{repo}-from-api"
        images.push(client, other, tag, images.build([f"{other}-0"], 10_000))
        subject = client.head_manifest(other, tag).digest
        for referrer in listed.items:  # the same SBOM, now about this image
            body = json.loads(client.get_manifest(repo, referrer.digest).body)
            body["subject"] = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": subject,
                               "size": client.head_manifest(other, tag).size}
            for blob in [body["config"], *body["layers"]]:
                copy_blob(client, client, repo, other, blob["digest"])
            put_raw(client, other, json.dumps(body).encode(), referrer.media_type)
        row = do_mirror(stack, other, [tag], source=api.address).results[0]
        assert row.referrers_copied == 1, row.error
        lan_list = list_referrers(stack.client(stack.lan), other, subject)
        assert not lan_list.api and [r.artifact_type for r in lan_list.items] == [SPDX]
    finally:
        api.stop()


def test_prune_takes_a_deleted_images_signatures_and_keeps_the_others(stack, repo, tools):
    old, _ = signed_image(stack, repo, tools, days_ago=20)
    new, _ = signed_image(stack, repo, tools, days_ago=1)
    do_mirror(stack, repo, [tag_for(BASE, 20), tag_for(BASE, 1)])
    lan = stack.client(stack.lan_registry.address)
    old_refs = list_referrers(lan, repo, old.digest).items
    report = prune(lan, repo, keep_days=7, base_tags=[BASE], dry_run=False)
    assert report.deleted == [tag_for(BASE, 20)]
    for kind in ("sig", "att"):
        assert lan.head_manifest(repo, cosign_tag(old.digest, kind)) is None
        assert lan.head_manifest(repo, cosign_tag(new.digest, kind)) is not None
    assert lan.head_manifest(repo, fallback_tag(old.digest)) is None
    assert all(lan.head_manifest(repo, r.digest) is None for r in old_refs)
    assert [r.artifact_type for r in list_referrers(lan, repo, new.digest).items] == [SPDX]
    tools.verify(f"{stack.lan}/{repo}@{new.digest}")


def test_resolve_refuses_a_lan_copy_without_the_hubs_signature(stack, repo, tools):
    """--require-referrer: the Hub copy is signed, the LAN copy is not (mirrored before the
    signature was made): stale, so resolve takes the Hub's."""
    img = publish(stack, repo, BASE, 1, hub=True, lan=True, lan2=True)
    tools.sign(f"{stack.lan2}/{repo}@{img.digest}")
    # The Hub gets the real signature cosign made (the same bytes, by our copy: cosign has no login here).
    hub = stack.hub_client()
    sig_tag = cosign_tag(img.digest, "sig")
    sig = stack.client(stack.lan2).get_manifest(repo, sig_tag)
    for blob in sig.blobs():
        copy_blob(stack.client(stack.lan2), hub, repo, repo, blob.digest)
    hub.put_manifest(repo, sig_tag, sig)
    stack.clear_faults()
    args = ["resolve", "--repo", repo, "--base-tag", BASE, "--lan-registry", stack.lan, "--hub-registry", stack.hub,
            "--no-pull", "--json"]
    plain = json.loads(run_cli(stack, *args).stdout)
    assert plain["source"] == "lan"
    proc = run_cli(stack, *args, "--require-referrer", "sig")
    assert proc.returncode == 0, proc.stderr
    strict = json.loads(proc.stdout)
    assert strict["source"] == "hub" and any("lacks" in a["result"] for a in strict["attempts"]), strict["attempts"]
    # A LAN that puts any manifest under the signature's tag name has not got the Hub's signature.
    lan = stack.client(stack.lan)
    lan.put_manifest(repo, sig_tag, lan.get_manifest(repo, img.digest))
    forged = json.loads(run_cli(stack, *args, "--require-referrer", "sig").stdout)
    assert forged["source"] == "hub" and any("lacks" in a["result"] for a in forged["attempts"]), forged["attempts"]
    # Once the LAN has it too, the LAN copy is good again.
    do_mirror(stack, repo, [tag_for(BASE, 1)], source=stack.hub_registry.address)
    assert json.loads(run_cli(stack, *args, "--require-referrer", "sig").stdout)["source"] == "lan"
    assert TODAY


def planted_referrers(stack, repo, subject, count: int, *, layer: bytes = b"scan", other_subject: str = ""):
    """`count` referrers of `subject` on the source (lan2), listed under its fallback tag, as any
    client (or a tampered registry) can write them; `other_subject` makes the last one name another."""
    from lanmirror.remote.manifest import sha256_digest as digest_of

    src = stack.client(stack.lan2)
    cfg = b"{}"
    src.upload_bytes(repo, cfg)
    src.upload_bytes(repo, layer)
    listed = []
    for n in range(count):
        names = other_subject if other_subject and n == count - 1 else subject.digest
        body = json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": "application/vnd.example.scan+json",
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": digest_of(cfg), "size": len(cfg)},
            "layers": [{"mediaType": "application/octet-stream", "digest": digest_of(layer), "size": len(layer)}],
            "subject": {"mediaType": subject.manifest.media_type, "digest": names, "size": len(subject.manifest.body)},
            "annotations": {"n": str(n)}}).encode()
        d = put_raw(src, repo, body, "application/vnd.oci.image.manifest.v1+json")
        listed.append({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": d, "size": len(body),
                       "artifactType": "application/vnd.example.scan+json"})
    index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                        "manifests": listed}).encode()
    put_raw(src, repo, index, "application/vnd.oci.image.index.v1+json", fallback_tag(subject.digest))
    stack.clear_faults()
    return [d["digest"] for d in listed]


def test_referrers_are_capped_per_image_by_count_and_bytes_with_one_warning(stack, repo, monkeypatch, caplog):
    from lanmirror.ops.mirror import referrers as mod

    img = publish(stack, repo, BASE, 1, hub=False, lan2=True)
    planted_referrers(stack, repo, img, 5)
    monkeypatch.setattr(mod, "MAX_REFERRERS", 3)
    row = do_mirror(stack, repo, [tag_for(BASE, 1)]).results[0]
    assert row.referrers_copied == 3, row.error
    assert len(list_referrers(stack.client(stack.lan), repo, img.digest).items) == 3
    warned = [r.getMessage() for r in caplog.records if "referrers of" in r.getMessage()]
    assert len(warned) == 1 and "2 of the 5 referrers" in warned[0], warned
    other = publish(stack, f"{repo}-big", BASE, 1, hub=False, lan2=True)
    planted_referrers(stack, f"{repo}-big", other, 2, layer=b"x" * 5000)
    monkeypatch.setattr(mod, "MAX_REFERRER_BYTES", 8000)  # room for one of the two
    row = do_mirror(stack, f"{repo}-big", [tag_for(BASE, 1)]).results[0]
    assert row.referrers_copied == 1, row.error


def test_a_referrer_naming_another_subject_is_not_copied(stack, repo):
    img = publish(stack, repo, BASE, 1, hub=False, lan2=True)
    other = publish(stack, f"{repo}-other", BASE, 2, hub=False, lan2=True)
    forged = planted_referrers(stack, repo, img, 2, other_subject=other.digest)[-1]
    row = do_mirror(stack, repo, [tag_for(BASE, 1)]).results[0]
    assert row.error and "does not name" in row.error, row
    lan = stack.client(stack.lan)
    assert lan.head_manifest(repo, forged) is None
    assert forged not in {r.digest for r in list_referrers(lan, repo, img.digest).items}
