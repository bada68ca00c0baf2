"""The registry client and the engine against the real stack, through the fault proxy."""

import subprocess
import time

import pytest
import requests

from lanmirror.daemon.classify import classify_stream_error
from lanmirror.daemon.engine import Engine
from lanmirror.errors import EngineError, NotFound, PullLimitExceeded, TransientError
from lanmirror.remote.registry import Registry
from lanmirror.retry import RetryPolicy
from lanmirror.transport import Timeouts, Transport
from tests.stack import HUB_CREDS, images

pytestmark = pytest.mark.integration


@pytest.fixture
def nightly(stack, repo):
    img = images.build([f"{repo}-1", f"{repo}-2", f"{repo}-3"], 50_000)
    images.push(stack.hub_client(), repo, "v1-20261128", img)
    stack.clear_faults()
    return img


def test_head_is_free_get_is_counted(stack, repo, nightly):
    reg = stack.client(stack.hub)
    head = reg.head_manifest(repo, "v1-20261128")
    assert head.digest == nightly.digest
    assert head.ratelimit.limit == 100 and head.ratelimit.remaining == 100
    assert head.ratelimit.source == "127.0.0.1"
    assert stack.hub_proxy.counted_gets() == 0
    manifest = reg.get_manifest(repo, "v1-20261128")
    assert manifest.body == nightly.manifest.body
    assert stack.hub_proxy.counted_gets() == 1
    assert reg.head_manifest(repo, "v1-20261128").ratelimit.remaining == 99


def test_missing_manifest_head_is_none(stack, repo, nightly):
    assert stack.client(stack.hub).head_manifest(repo, "v1-20000101") is None


def test_exhausted_limit_is_a_pull_limit_error_not_retried(stack, repo, nightly):
    stack.hub_proxy.remaining = 0
    reg = stack.client(stack.hub)
    with pytest.raises(PullLimitExceeded, match="TOOMANYREQUESTS"):
        reg.get_manifest(repo, "v1-20261128")
    assert len(stack.hub_proxy.entries("GET", "/manifests/")) == 1
    assert reg.head_manifest(repo, "v1-20261128").ratelimit.remaining == 0


def test_abuse_429_with_retry_after_is_retried_then_succeeds(stack, repo, nightly):
    stack.hub_proxy.fail(429, 2, method="HEAD", path="/manifests/", headers={"Retry-After": "1"})
    reg = stack.client(stack.hub)
    start = time.monotonic()
    head = reg.head_manifest(repo, "v1-20261128")
    elapsed = time.monotonic() - start
    assert head.digest == nightly.digest
    statuses = [e.status for e in stack.hub_proxy.entries("HEAD", "/manifests/")]
    assert statuses.count(429) == 2 and statuses[-1] == 200
    assert elapsed >= 2.0  # waited the server's Retry-After twice


def test_5xx_burst_is_retried(stack, repo, nightly):
    stack.lan_proxy.fail(503, 2)
    reg = stack.client(stack.lan)
    assert reg.list_tags(repo) == []
    assert [e.status for e in stack.lan_proxy.entries()][:2] == [503, 503]


def test_black_holed_registry_fails_within_timeout(stack, repo):
    stack.lan_proxy.mode = "blackhole"
    reg = Registry(Transport(stack.lan, timeouts=Timeouts(connect=0.5, read=0.7),
                             policy=RetryPolicy(attempts=2, base=0.1)))
    start = time.monotonic()
    with pytest.raises(requests.Timeout, match=r"timed out$"):  # the cause, in words
        reg.head_manifest(repo, "x")
    assert time.monotonic() - start < 3.0


def test_refused_registry_fails_fast(stack, repo):
    stack.lan_proxy.mode = "refuse"
    reg = Registry(Transport(stack.lan, policy=RetryPolicy(attempts=2, base=0.05)))
    start = time.monotonic()
    with pytest.raises(requests.ConnectionError, match=r"connection (reset|refused)$"):  # the cause, in words
        reg.head_manifest(repo, "x")
    assert time.monotonic() - start < 2.0


def test_blob_mount_tags_pagination_and_delete(stack, repo, nightly):
    lan = stack.client(stack.lan)
    images.push(lan, repo, "v1-20261128", nightly)
    other = repo + "-other"
    layer = nightly.layer_digests[0]
    assert lan.head_blob(other, layer) is None
    assert lan.mount_blob(other, layer, repo) is True
    assert lan.head_blob(other, layer) == len(nightly.blobs[layer])
    assert lan.mount_blob(other, "sha256:" + "0" * 64, repo) is False
    for i in range(5):
        lan.put_manifest(repo, f"extra-{i}", nightly.manifest)
    tags = lan.list_tags(repo, page_size=2)
    assert sorted(tags) == sorted(["v1-20261128"] + [f"extra-{i}" for i in range(5)])
    lan.delete_manifest(repo, nightly.digest)
    assert lan.head_manifest(repo, "v1-20261128") is None


def test_index_round_trip(stack, repo):
    amd = images.build([f"{repo}-amd"], 1000, "amd64")
    arm = images.build([f"{repo}-arm"], 1000, "arm64")
    lan = stack.client(stack.lan)
    digest = images.push_index(lan, repo, "multi", {"amd64": amd, "arm64": arm})
    m = lan.get_manifest(repo, "multi")
    assert m.is_index and m.digest == digest
    assert [c.digest for c in m.children()] == [amd.digest, arm.digest]


def test_engine_pull_login_tag_push_through_token_auth(stack, repo, nightly):
    engine = Engine(stack.docker_host)
    ref = f"{stack.hub}/{repo}:v1-20261128"
    engine.login(HUB_CREDS, stack.hub)
    progress = []
    img = engine.pull(ref, source="hub", creds=HUB_CREDS, on_progress=lambda c, t, s: progress.append((c, t)))
    assert f"{stack.hub}/{repo}@{nightly.digest}" in img.repo_digests
    assert progress and progress[-1][0] == progress[-1][1] > 0
    assert engine.local_image(ref).id == img.id
    engine.tag(ref, f"{stack.lan}/{repo}", "copied")
    digest = engine.push(f"{stack.lan}/{repo}", "copied", source="lan")
    assert stack.client(stack.lan).head_manifest(repo, "copied").digest == digest


def test_engine_stream_errors_are_raised(stack, repo):
    engine = Engine(stack.docker_host)
    with pytest.raises(NotFound, match="lan"):
        engine.pull(f"{stack.lan}/{repo}:does-not-exist", source="lan")
    assert isinstance(classify_stream_error("toomanyrequests: You have reached your pull rate limit", "hub"),
                      PullLimitExceeded)
    assert isinstance(classify_stream_error("read tcp: connection reset by peer", "lan"), TransientError)
    assert isinstance(classify_stream_error("no space left on device", "lan"), EngineError)


def test_engine_stall_guard_aborts_a_stalled_pull(stack, repo):
    big = images.build([f"{repo}-big"], 4 << 20)
    images.push(stack.client(stack.lan), repo, "big", big)
    stack.lan_proxy.break_body("stall", after=1 << 20)
    engine = Engine(stack.docker_host)
    start = time.monotonic()
    with pytest.raises(EngineError, match="no progress for 2s"):
        try:
            engine.pull(f"{stack.lan}/{repo}:big", source="lan", stall_timeout=2)
        finally:
            assert time.monotonic() - start < 10
    assert engine.local_image(f"{stack.lan}/{repo}:big") is None
    assert any("stall" in e.fault for e in stack.lan_proxy.entries("GET"))


def test_engine_daemon_missing_is_a_clear_error(tmp_path):
    engine = Engine(f"unix://{tmp_path}/nope.sock")
    with pytest.raises(EngineError, match="Docker daemon not reachable"):
        engine.local_image("x")


def test_docker_build_from_scratch_and_push_to_hub(stack, repo, tmp_path):
    (tmp_path / "payload.txt").write_text("built from scratch by the lanmirror tests\n")
    (tmp_path / "Dockerfile").write_text("FROM scratch\nCOPY payload.txt /payload.txt\n")
    env = {**stack.env(), "DOCKER_BUILDKIT": "0"}
    ref = f"{stack.hub}/{repo}:built"
    subprocess.run(["docker", "build", "-q", "-t", ref, str(tmp_path)], check=True, env=env, capture_output=True)
    engine = Engine(stack.docker_host)
    engine.login(HUB_CREDS, stack.hub)
    digest = engine.push(f"{stack.hub}/{repo}", "built", source="hub", creds=HUB_CREDS)
    assert stack.client(stack.hub).head_manifest(repo, "built").digest == digest


def test_tag_list_follows_link_pagination():
    """Distribution 2.8 never paginates, so a small server plays a registry that does (OCI spec shape)."""
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from urllib.parse import parse_qs, urlparse

    all_tags = [f"t{i:02d}" for i in range(7)]
    seen = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            q = parse_qs(urlparse(self.path).query)
            seen.append(self.path)
            n, last = int(q["n"][0]), q.get("last", [""])[0]
            rest = [t for t in all_tags if t > last]
            page = rest[:n]
            body = json.dumps({"name": "r/x", "tags": page}).encode()
            self.send_response(200)
            if len(rest) > n:
                self.send_header("Link", f'</v2/r/x/tags/list?n={n}&last={page[-1]}>; rel="next"')
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        reg = Registry(Transport(f"127.0.0.1:{srv.server_address[1]}"))
        assert reg.list_tags("r/x", page_size=3) == all_tags
        assert len(seen) == 3
    finally:
        srv.shutdown()


def test_plain_http_allowed_asks_the_daemon_only_when_a_registry_needs_it(stack):
    """The LAN registry is usually plain HTTP and declared in the runner daemon's insecure
    registries; mirror, prune and resolve read that list. Nothing is sent to 192.0.2.10: the test
    daemon merely declares it."""
    from lanmirror.cmd.wiring import plain_http_allowed
    from lanmirror.transport import is_insecure

    class NotAsked(Engine):
        def insecure_registries(self):
            raise AssertionError("the daemon was asked although every registry was covered")

    assert plain_http_allowed([], ["127.0.0.1:5000", "localhost:5001", "docker.io"], NotAsked()) == []
    assert plain_http_allowed(["192.0.2.0/24"], ["192.0.2.10:5000"], NotAsked()) == ["192.0.2.0/24"]
    allowed = plain_http_allowed([], ["192.0.2.10:5000"], Engine())
    assert is_insecure("192.0.2.10:5000", allowed) and not is_insecure("192.0.2.11:5000", allowed)
    # No daemon: the user's list alone, and no error (HTTPS is then used for the rest).
    assert plain_http_allowed(["x:1"], ["192.0.2.10:5000"], Engine("unix:///nonexistent/docker.sock")) == ["x:1"]
