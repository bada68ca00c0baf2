"""Auth flows of the transport against the real token server and the token-auth "Hub"."""

import time

import pytest

from lanmirror.authn import Credentials
from lanmirror.errors import AuthError
from lanmirror.remote.registry import Registry
from lanmirror.transport import Timeouts, Transport, is_insecure
from tests.stack import HUB_CREDS, images

pytestmark = pytest.mark.integration


@pytest.fixture
def pushed(stack, repo):
    img = images.build([f"{repo}-a"], 2048)
    images.push(stack.hub_client(), repo, "t1", img)
    stack.clear_faults()
    return img


def test_ping_learns_bearer_challenge(stack):
    t = Transport(stack.hub)
    resp = t.ping()
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer realm=")


def test_anonymous_token_for_pull(stack, repo, pushed):
    reg = Registry(Transport(stack.hub))
    head = reg.head_manifest(repo, "t1")
    assert head is not None and head.digest == pushed.digest
    reqs = stack.tokens.requests
    assert (reqs[-1]["user"], reqs[-1]["scope"], reqs[-1]["grant"]) == ("", f"repository:{repo}:pull", "anonymous")


def test_credentials_token_for_push(stack, repo):
    reg = Registry(Transport(stack.hub, credentials=HUB_CREDS))
    images.push(reg, repo, "t2", images.build([f"{repo}-b"], 1024))
    assert any(r["user"] == "ci-bot" and r["scope"].endswith(":pull,push") for r in stack.tokens.requests)


def test_anonymous_push_is_refused_clearly(stack, repo):
    reg = Registry(Transport(stack.hub))
    with pytest.raises(AuthError, match="unauthorized"):
        images.push(reg, repo, "t3", images.build([f"{repo}-c"], 1024))


def test_wrong_password_fails_at_once_without_retry(stack, repo, pushed):
    before = len(stack.token_proxy.entries())
    reg = Registry(Transport(stack.hub, credentials=Credentials("ci-bot", "wrong-password")))
    with pytest.raises(AuthError) as info:
        reg.head_manifest(repo, "t1")
    assert "authentication failed for user 'ci-bot'" in str(info.value)
    assert "wrong-password" not in str(info.value)
    assert len(stack.token_proxy.entries()) - before == 1


def test_credentials_repr_hides_password():
    assert "s3cret" not in repr(Credentials("u", "s3cret"))


def test_black_holed_token_endpoint_fails_within_deadline(stack, repo, pushed):
    stack.token_proxy.mode = "blackhole"
    reg = Registry(Transport(stack.hub, timeouts=Timeouts(connect=0.5, read=0.5)))
    start = time.monotonic()
    with pytest.raises(Exception, match="token endpoint"):
        reg.head_manifest(repo, "t1", deadline=2.0)
    assert time.monotonic() - start < 5


def test_credentials_from_docker_config(stack, tmp_path, monkeypatch):
    import base64
    import json

    from lanmirror.authn import credentials_from_docker_config

    cfg = {"auths": {stack.hub: {"auth": base64.b64encode(b"ci-bot:from-config").decode()}}}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    creds = credentials_from_docker_config(stack.hub)
    assert (creds.username, creds.password) == ("ci-bot", "from-config") and "config.json" in creds.source
    assert credentials_from_docker_config("other.example:5000") is None


@pytest.mark.parametrize(
    ("registry", "insecure", "expected"),
    [
        ("127.0.0.1:5000", [], True),
        ("localhost:5000", [], True),
        ("10.0.0.5:5000", [], False),
        ("10.0.0.5:5000", ["10.0.0.5:5000"], True),
        ("10.0.0.5:5000", ["10.0.0.0/8"], True),
        ("10.0.0.5:5000", ["192.168.0.0/16"], False),
        ("registry.lan", ["registry.lan"], True),
        ("docker.io", ["10.0.0.0/8"], False),
    ],
)
def test_plain_http_only_where_allowed(registry, insecure, expected):
    """Docker's rule, decided without a request: an insecure registry's scheme waits for the first
    real request (HTTPS unverified, then HTTP); any other registry is HTTPS only."""
    assert is_insecure(registry, insecure) is expected
    transport = Transport(registry, insecure=is_insecure(registry, insecure))
    assert transport.insecure is expected
    if not expected:
        assert transport.scheme == "https"  # no request is needed to know that


def test_remembered_challenge_saves_the_401_round_trip(stack, repo, pushed):
    Registry(Transport(stack.hub)).head_manifest(repo, "t1")
    stack.clear_faults()
    head = Registry(Transport(stack.hub)).head_manifest(repo, "t1")  # a new process would do the same
    assert head.digest == pushed.digest
    assert [e.status for e in stack.hub_proxy.entries()] == [200]


def test_stale_remembered_challenge_is_relearned(stack, repo, pushed):
    from lanmirror.transport.challenge import load_challenge, save_challenge

    save_challenge(stack.hub, ("bearer", {"realm": "http://127.0.0.1:9/token", "service": "gone"}))
    head = Registry(Transport(stack.hub, timeouts=Timeouts(1, 2))).head_manifest(repo, "t1")
    assert head.digest == pushed.digest
    assert load_challenge(stack.hub)[1]["realm"] == f"http://{stack.token_proxy.address}/token"
