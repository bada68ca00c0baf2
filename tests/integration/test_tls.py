"""LAN registries over TLS, Docker's way: the CA in certs.d, mutual TLS with a client certificate,
and the insecure rule (HTTPS without verification first, then plain HTTP) for loopback."""

import json

import pytest
import requests

from lanmirror.remote.registry import Registry
from lanmirror.transport import Transport
from tests.helpers import publish, run_cli, tag_for
from tests.stack.tls import TlsRegistry, make_pki

pytestmark = pytest.mark.integration
BASE = "b"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return {"root": make_pki(tmp_path_factory.mktemp("pki"))}


@pytest.fixture(scope="module")
def tls_lan(_stack, pki):
    reg = TlsRegistry(_stack.root, "lan-tls", pki["root"]).start()
    yield reg
    reg.stop()


@pytest.fixture(scope="module")
def mtls_lan(_stack, pki):
    reg = TlsRegistry(_stack.root, "lan-mtls", pki["root"], client_ca=True).start()
    yield reg
    reg.stop()


@pytest.fixture
def certs_d(tmp_path, monkeypatch):
    folder = tmp_path / "certs.d"
    folder.mkdir()
    monkeypatch.setenv("LANMIRROR_CERTS_DIR", str(folder))
    return folder


def install(certs_d, address, pki_dir, *, client=False):
    host = certs_d / address
    host.mkdir()
    (host / "ca.crt").write_bytes((pki_dir / "ca.crt").read_bytes())
    if client:
        (host / "client.cert").write_bytes((pki_dir / "client.crt").read_bytes())
        (host / "client.key").write_bytes((pki_dir / "client.key").read_bytes())


def test_mirror_and_resolve_against_a_tls_lan_on_loopback(stack, repo, tls_lan, pki, certs_d, engine):
    """Loopback is insecure by Docker's rule: HTTPS without verification first. Before this, lanmirror
    spoke plain HTTP to the TLS port (HTTP 400) and resolve silently fell back to the Hub."""
    install(certs_d, tls_lan.address, pki["root"])
    img = publish(stack, repo, BASE, 1, hub=True)
    env = {"LANMIRROR_CERTS_DIR": str(certs_d), "DOCKER_HOST": engine}
    proc = run_cli(stack, "mirror", "--repo", repo, "--tag", tag_for(BASE, 1), "--source-registry", stack.hub,
                   "--lan-registry", tls_lan.address, "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["results"][0]["status"] == "copied"
    proc = run_cli(stack, "resolve", "--repo", repo, "--base-tag", BASE, "--hub-registry", stack.hub,
                   "--lan-registry", tls_lan.address, "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout)
    assert (res["source"], res["registry"], res["digest"], res["pulled"]) == ("lan", tls_lan.address, img.digest, True)
    proc = run_cli(stack, "prune", "--repo", repo, "--lan-registry", tls_lan.address, "--keep-days", "1", "--json",
                   env=env)
    assert proc.returncode == 0 and json.loads(proc.stdout)["deleted"] == [tag_for(BASE, 1)], proc.stderr


def test_insecure_means_https_unverified_then_http(stack, tls_lan, certs_d):
    tls = Transport(tls_lan.address)
    assert Registry(tls).head_manifest("nothing/here", "t") is None and tls.scheme == "https"
    assert tls.describe_tls() == "HTTPS, not verified (insecure registry)"
    plain = Transport(stack.lan)
    assert Registry(plain).head_manifest("nothing/here", "t") is None and plain.scheme == "http"


def test_a_secure_registry_is_verified_against_certs_d_and_never_falls_back(tls_lan, pki, certs_d):
    with pytest.raises(requests.exceptions.SSLError):
        Registry(Transport(tls_lan.address, insecure=False)).head_manifest("nothing/here", "t")
    install(certs_d, tls_lan.address, pki["root"])
    verified = Transport(tls_lan.address, insecure=False)
    assert Registry(verified).head_manifest("nothing/here", "t") is None
    assert verified.describe_tls() == "HTTPS verified by ca.crt"


def test_mutual_tls_with_a_client_certificate(mtls_lan, pki, certs_d):
    install(certs_d, mtls_lan.address, pki["root"])
    with pytest.raises(requests.exceptions.ConnectionError):  # the registry wants a client certificate
        Registry(Transport(mtls_lan.address, insecure=False)).head_manifest("nothing/here", "t")
    (certs_d / mtls_lan.address / "client.cert").write_bytes((pki["root"] / "client.crt").read_bytes())
    (certs_d / mtls_lan.address / "client.key").write_bytes((pki["root"] / "client.key").read_bytes())
    transport = Transport(mtls_lan.address, insecure=False)
    assert Registry(transport).head_manifest("nothing/here", "t") is None
    assert transport.describe_tls() == "HTTPS verified by ca.crt + client certificate"


def test_doctor_says_how_each_registry_is_reached(stack, tls_lan, certs_d):
    proc = run_cli(stack, "doctor", "--lan-registry", tls_lan.address, "--lan-registry", stack.lan,
                   "--hub-registry", stack.hub, "--timeout", "2", "--json", "--certs-dir", str(certs_d))
    checks = {c["name"]: c["detail"] for c in json.loads(proc.stdout)["checks"]}
    assert "HTTPS, not verified (insecure registry)" in checks[f"LAN {tls_lan.address} from this process"]
    assert "plain HTTP" in checks[f"LAN {stack.lan} from this process"]
