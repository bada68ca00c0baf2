"""LAN registries over TLS, Docker's way: the CA in certs.d, mutual TLS with a client certificate,
and the insecure rule (HTTPS without verification first, then plain HTTP) for loopback."""

import datetime as dt
import ipaddress
import json

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from lanmirror.remote.registry import Registry
from lanmirror.transport import Transport
from tests.helpers import publish, run_cli, tag_for
from tests.stack.daemons import Registry as Distribution

pytestmark = pytest.mark.integration
BASE = "b"


def _cert(subject, issuer_key, issuer_name, key, *, ca=False, ip=None):
    now = dt.datetime.now(dt.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
               .not_valid_after(now + dt.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ip:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]),
                                        critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write(path, cert=None, key=None):
    if cert is not None:
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if key is not None:
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    root = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lanmirror test CA")])
    ca = _cert(ca_name, ca_key, ca_name, ca_key, ca=True)
    out = {"root": root}
    for name, ip in (("server", "127.0.0.1"), ("client", None)):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _cert(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]), ca_key, ca_name, key, ip=ip)
        _write(root / f"{name}.crt", cert=cert)
        _write(root / f"{name}.key", key=key)
    _write(root / "ca.crt", cert=ca)
    return out


class TlsRegistry(Distribution):
    def __init__(self, root, name, pki_dir, *, client_ca=False):
        super().__init__(root, name)
        self.pki = pki_dir
        self.client_ca = client_ca

    def _write_config(self):
        super()._write_config()
        tls = (f"  tls:\n    certificate: {self.pki / 'server.crt'}\n    key: {self.pki / 'server.key'}\n"
               + (f"    clientcas:\n      - {self.pki / 'ca.crt'}\n" if self.client_ca else ""))
        text = self.config.read_text().replace("  headers:\n", tls + "  headers:\n")
        self.config.write_text(text)

    def start(self):
        self.root.mkdir(parents=True, exist_ok=True)
        self._write_config()
        import subprocess

        from tests.stack.daemons import require, wait_for
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([require("docker-registry"), "serve", str(self.config)], stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)

        def up():
            try:
                requests.get(f"https://{self.address}/v2/", verify=str(self.pki / "ca.crt"), timeout=2,
                             cert=(str(self.pki / "client.crt"), str(self.pki / "client.key")))
                return True
            except requests.RequestException:
                return False

        wait_for(up, f"registry {self.name}", 30, self.proc, self.log)
        return self


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


def test_mirror_and_resolve_against_a_tls_lan_on_loopback(stack, repo, tls_lan, pki, certs_d):
    """Loopback is insecure by Docker's rule: HTTPS without verification first. Before this, lanmirror
    spoke plain HTTP to the TLS port (HTTP 400) and resolve silently fell back to the Hub."""
    install(certs_d, tls_lan.address, pki["root"])
    img = publish(stack, repo, BASE, 1, hub=True)
    env = {"LANMIRROR_CERTS_DIR": str(certs_d)}
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
