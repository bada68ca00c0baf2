"""The shapes buildx and other builders push, copied byte for byte: OCI manifests and indexes with
attestation manifests, nested indexes, zstd layers, a manifest with a `subject`, and
non-distributable layers (kept in the manifest, not copied, warned about). Then resolve pulls them
through the real daemon."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import docker
import pytest

from lanmirror.records import PREFIX
from lanmirror.remote.manifest import Manifest
from tests.helpers import run_cli, tag_for
from tests.stack import images

pytestmark = pytest.mark.integration
BASE = "v2-shape"


class BlobServer:
    """Serves non-distributable layers at their `urls`, on loopback, and counts the GETs."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.gets: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                server.gets.append(self.path)
                body = server.blobs.get(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def foreign_host():
    server = BlobServer()
    yield server
    server.stop()


def push_tree(stack, repo: str, tag: str, top: Manifest, parts: list[images.Image],
              extra: list[Manifest] = (), also: list[images.Image] = ()) -> None:
    hub = stack.hub_client()
    for img in [*also, *parts]:
        images.push(hub, repo, img.digest, img)
    for m in extra:
        hub.put_manifest(repo, m.digest, m)
    hub.put_manifest(repo, tag, top)
    stack.clear_faults()


subject_of: dict[str, images.Image] = {}


def shapes(repo: str, foreign_host: BlobServer) -> dict[str, tuple[Manifest, list[images.Image], list[Manifest]]]:
    plain = images.build_oci([f"{repo}-oci-0", f"{repo}-oci-1"], 30_000)
    buildx, buildx_parts = images.buildx_index(images.build_oci([f"{repo}-bx-0"], 30_000))
    inner, inner_parts = images.buildx_index(images.build_oci([f"{repo}-nest-0"], 30_000))
    nested = images.oci_index([(inner, {"annotations": {"org.lanmirror.test": "inner index"}})])
    zstd = images.build_oci([f"{repo}-zstd-0", f"{repo}-zstd-1"], 300_000, zstd=True)
    signed_base = subject_of[repo] = images.build_oci([f"{repo}-subj-0"], 30_000)
    with_subject = images.build_oci([f"{repo}-subj-sbom"], 2_000, subject=signed_base)
    url = f"http://{foreign_host.address}/layers/{repo.replace('/', '-')}-foreign"
    # Docker's foreign-layer type, as Windows base images have it: what both engines fetch from `urls`.
    foreign = images.build_oci([f"{repo}-dist-0", f"{repo}-foreign-0"], 30_000, foreign={f"{repo}-foreign-0": url},
                               docker_v2=True)
    foreign_host.blobs[url.split(foreign_host.address, 1)[1]] = images.layer(f"{repo}-foreign-0", 30_000)[0]
    return {
        "oci-manifest": (plain.manifest, [plain], []),
        "buildx-index": (buildx, buildx_parts, []),
        "nested-index": (nested, inner_parts, [inner]),
        "zstd": (zstd.manifest, [zstd], []),
        # The image it refers to is another tag's business: copying the SBOM does not need it.
        "subject": (with_subject.manifest, [with_subject], []),
        "non-distributable": (foreign.manifest, [foreign], []),
    }


def test_every_shape_mirrors_byte_for_byte(stack, repo, foreign_host):
    cases = shapes(repo, foreign_host)
    tags = {}
    for n, (name, (top, parts, extra)) in enumerate(cases.items()):
        tags[name] = tag_for(BASE, n + 1)
        push_tree(stack, repo, tags[name], top, parts, extra, also=[subject_of[repo]] if name == "subject" else [])
    args = ["mirror", "--repo", repo, "--source-registry", stack.hub, "--lan-registry", stack.lan, "--json"]
    for tag in tags.values():
        args += ["--tag", tag]
    proc = run_cli(stack, *args)
    assert proc.returncode == 0, proc.stderr
    results = {r["tag"]: r for r in json.loads(proc.stdout)["results"]}
    lan, hub = stack.client(stack.lan), stack.hub_client()
    for name, (top, parts, extra) in cases.items():
        assert results[tags[name]]["status"] == "copied", (name, results[tags[name]])
        assert lan.head_manifest(repo, tags[name]).digest == top.digest, name
        for m in [top, *extra, *(p.manifest for p in parts)]:
            got = lan.get_manifest(repo, m.digest)
            assert got.body == m.body and got.media_type == m.media_type, (name, m.media_type)
        for img in parts:
            for digest, blob in img.blobs.items():
                assert lan.open_blob(repo, digest).content == blob, (name, digest)
    foreign = cases["non-distributable"][1][0]
    foreign_layer = next(d for d in foreign.manifest.blobs() if not d.distributable)
    assert lan.head_blob(repo, foreign_layer.digest) is None and hub.head_blob(repo, foreign_layer.digest) is None
    assert results[tags["non-distributable"]]["foreign"] == [foreign_layer.digest]
    assert "non-distributable" in proc.stderr and foreign_layer.digest[:19] in proc.stderr
    assert all(not r["foreign"] for t, r in results.items() if t != tags["non-distributable"])


# What Docker 20.10 with the classic store cannot pull at all (Engine 26.1 with the containerd store can):
# it does not descend into nested indexes, has no zstd decompressor, and never fetches `urls` on Linux.
ENGINE_20_CANNOT = {"nested-index": "no matching manifest for linux/amd64", "zstd": "invalid tar header",
                    "non-distributable": "unknown blob"}


@pytest.mark.parametrize("shape", ["buildx-index", "nested-index", "zstd", "subject", "non-distributable"])
def test_resolve_pulls_each_shape_from_the_lan(stack, repo, foreign_host, shape, engine):
    top, parts, extra = shapes(repo, foreign_host)[shape]
    tag = tag_for(BASE, 1)
    push_tree(stack, repo, tag, top, parts, extra, also=[subject_of[repo]] if shape == "subject" else [])
    proc = run_cli(stack, "mirror", "--repo", repo, "--source-registry", stack.hub, "--lan-registry", stack.lan,
                   "--tag", tag)
    assert proc.returncode == 0, proc.stderr
    proc = run_cli(stack, "resolve", "--repo", repo, "--base-tag", BASE, "--hub-registry", stack.hub,
                   "--lan-registry", stack.lan, "--json", env={"DOCKER_HOST": engine})
    limit = ENGINE_20_CANNOT.get(shape) if engine == stack.engines()["20.10-classic"] else None
    if limit:
        # Engine 20.10 cannot pull this shape from anywhere: the LAN copy is not the cause, since the
        # Hub's original fails the same way, and resolve says so in one line per source.
        assert proc.returncode == 1 and "Traceback" not in proc.stderr
        failed = [line for line in proc.stderr.splitlines() if "pull failed" in line and not line.startswith(PREFIX)]
        assert [line.split()[0] for line in failed] == ["lan", "hub"] and all(limit in line for line in failed)
        return
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout)
    assert (res["source"], res["digest"], res["pulled"]) == ("lan", top.digest, True), res
    # The daemon holds the image under its canonical name, with the layers the manifest names.
    image = parts[0]
    config = json.loads(image.blobs[image.manifest.parsed()["config"]["digest"]])
    inspect = docker.APIClient(base_url=engine, version="auto").inspect_image(res["image"])
    assert inspect["RootFS"]["Layers"] == config["rootfs"]["diff_ids"]
    if shape == "non-distributable":
        assert foreign_host.gets, "the daemon fetched the foreign layer from its URL"
