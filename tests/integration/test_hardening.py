"""Protocol hardening, each against the real registries through the fault proxy."""

import json
import os
from urllib.parse import quote

import pytest

from lanmirror.cmd.wiring import Clients
from lanmirror.errors import RegistryError
from lanmirror.remote.blobwrite import BlobWriter
from lanmirror.remote.manifest import sha256_digest
from lanmirror.retry import RetryPolicy
from tests.helpers import publish, run_cli, tag_for
from tests.stack import HUB_CREDS
from tests.stack.tokens import SERVICE

pytestmark = pytest.mark.integration
BASE = "b"


def test_blob_reads_ask_for_the_bytes_unencoded(stack, repo):
    publish(stack, repo, BASE, 0, hub=True)
    proc = run_cli(stack, "mirror", "--repo", repo, "--tag", tag_for(BASE, 0), "--source-registry", stack.hub,
                   "--lan-registry", stack.lan)
    assert proc.returncode == 0, proc.stderr
    gets = [e for e in stack.hub_proxy.entries("GET") if "/blobs/" in e.path and e.status == 200]
    assert gets and {e.accept_encoding for e in gets} == {"identity"}


def test_a_manifest_over_4_mib_is_refused_unread(stack, repo):
    publish(stack, repo, BASE, 0, lan=True, hub=False)
    stack.lan_proxy.fail(200, 1, method="GET", path="/manifests/", body=b'{"x": "' + b"a" * (5 << 20) + b'"}',
                         headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    with pytest.raises(RegistryError, match="larger than 4 MiB"):
        stack.client(stack.lan).get_manifest(repo, tag_for(BASE, 0))


def test_a_head_without_the_digest_header_falls_back_to_get_and_hash(stack, repo):
    img = publish(stack, repo, BASE, 0, lan=True, hub=False)
    stack.lan_proxy.fail(200, 1, method="HEAD", path="/manifests/",
                         headers={"Content-Type": "application/vnd.docker.distribution.manifest.v2+json"})
    head = stack.client(stack.lan).head_manifest(repo, tag_for(BASE, 0))
    assert head is not None and head.digest == img.digest
    assert [e.method for e in stack.lan_proxy.entries() if "/manifests/" in e.path] == ["HEAD", "GET"]


def test_an_unreachable_registry_is_one_line_and_exit_1_never_a_traceback(stack, repo):
    proc = run_cli(stack, "resolve", "--repo", repo, "--image", f"127.0.0.1:9/{repo}:{tag_for(BASE, 0)}",
                   "--hub-registry", "127.0.0.1:9", "--hub-timeout", "2", "--no-pull", "--json")
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and proc.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "127.0.0.1:9" in proc.stderr
    json.loads(proc.stdout or "{}")  # nothing half-printed on stdout


def test_an_explicit_image_honours_the_hub_registry_and_comes_from_the_lan(stack, repo):
    img = publish(stack, repo, BASE, 2, hub=True, lan=True)
    proc = run_cli(stack, "resolve", "--repo", repo, "--image", f"{repo}:{tag_for(BASE, 2)}", "--base-tag", BASE,
                   "--hub-registry", stack.hub, "--lan-registry", stack.lan, "--json")
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout)
    assert (res["source"], res["registry"], res["digest"], res["verified"], res["age-days"]) == (
        "lan", stack.lan, img.digest, True, "2")
    assert res["image"] == f"{stack.hub}/{repo}:{tag_for(BASE, 2)}"
    assert stack.hub_proxy.counted_gets() == 0


def test_a_mount_asks_for_both_scopes_as_repeated_parameters(stack, repo):
    img = publish(stack, repo, BASE, 0, hub=True, layers=1)
    layer = img.layer_digests[0]
    with Clients(credentials={stack.hub: HUB_CREDS}, daemon=False) as clients:
        assert clients.registry(stack.hub).mount_blob(f"{repo}-copy", layer, repo)
    tokens = [e.path for e in stack.token_proxy.entries() if "scope=" in e.path]
    both = [p for p in tokens if p.count("scope=") == 2]
    assert both, tokens
    assert quote(f"repository:{repo}:pull", safe="") in both[0] and \
        quote(f"repository:{repo}-copy:pull,push", safe="") in both[0]


def test_a_refused_mount_uploads_into_the_session_it_opened(stack, repo):
    img = publish(stack, repo, BASE, 0, hub=True, layers=2)
    proc = run_cli(stack, "mirror", "--repo", repo, "--tag", tag_for(BASE, 0), "--source-registry", stack.hub,
                   "--lan-registry", stack.lan, "--mount-from", "nothing/here", "--upload-chunk-mb", "0")
    assert proc.returncode == 0, proc.stderr
    log = [(e.method, e.path.split("?")[0]) for e in stack.lan_proxy.entries() if "/blobs/uploads/" in e.path]
    posts = [p for m, p in log if m == "POST"]
    assert len(posts) == len(img.blobs) and all(m != "DELETE" for m, _ in log), log  # one POST per blob, no cancel
    assert stack.client(stack.lan).head_manifest(repo, tag_for(BASE, 0)).digest == img.digest


def test_a_401_in_the_middle_of_a_streamed_upload_never_sends_half_a_body(stack, repo):
    data = os.urandom(3 << 20)
    digest = sha256_digest(data)
    with Clients(credentials={stack.hub: HUB_CREDS}, daemon=False) as clients:
        hub = clients.registry(stack.hub)
        hub.upload_bytes(repo, b"warm up the token")
        challenge = f'Bearer realm="http://{stack.token_proxy.address}/token",service="{SERVICE}"'
        stack.hub_proxy.fail(401, 1, method="PATCH", headers={"WWW-Authenticate": challenge})
        writer = BlobWriter(hub, repo, digest, len(data), lambda offset: [data[offset:]],
                            RetryPolicy(attempts=3, base=0.1), chunk_size=1 << 20)
        writer.run()
    assert stack.client(stack.hub, HUB_CREDS).head_blob(repo, digest) == len(data)
    assert writer.resumes == 1
