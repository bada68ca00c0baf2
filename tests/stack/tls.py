"""LAN registries the way fleets run them: TLS with a private CA (optionally demanding a client
certificate) and htpasswd logins. The CA and certificates are made here, per test session."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .daemons import Registry


def _cert(subject: x509.Name, issuer_key: ec.EllipticCurvePrivateKey, issuer_name: x509.Name,
          key: ec.EllipticCurvePrivateKey, *, ca: bool = False, ip: str | None = None,
          dns: str | None = None) -> x509.Certificate:
    now = dt.datetime.now(dt.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
               .not_valid_after(now + dt.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    names: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address(ip))] if ip else []
    names += [x509.DNSName(dns)] if dns else []
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write(path: Path, cert: x509.Certificate | None = None, key: ec.EllipticCurvePrivateKey | None = None) -> None:
    if cert is not None:
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if key is not None:
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))


def make_pki(root: Path, dns: str | None = None) -> Path:
    """ca.crt, server.crt/key (for 127.0.0.1, and `dns` if given) and client.crt/key, all from one
    fresh CA."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lanmirror test CA")])
    ca = _cert(ca_name, ca_key, ca_name, ca_key, ca=True)
    for name, ip in (("server", "127.0.0.1"), ("client", None)):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _cert(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]), ca_key, ca_name, key, ip=ip,
                     dns=dns if ip else None)
        _write(root / f"{name}.crt", cert=cert)
        _write(root / f"{name}.key", key=key)
    _write(root / "ca.crt", cert=ca)
    return root


def write_htpasswd(path: Path, users: dict[str, str]) -> Path:
    import bcrypt

    path.write_text("".join(f"{u}:{bcrypt.hashpw(p.encode(), bcrypt.gensalt(rounds=5)).decode()}\n"
                            for u, p in users.items()))
    return path


class TlsRegistry(Registry):
    """Distribution on HTTPS with a certificate from `pki_dir`'s CA; `client_ca` demands a client
    certificate from that CA, `htpasswd` a basic-auth login."""

    def __init__(self, root: Path, name: str, pki_dir: Path, *, client_ca: bool = False,
                 htpasswd: Path | None = None) -> None:
        super().__init__(root, name)
        self.pki = pki_dir
        self.client_ca = client_ca
        self.htpasswd = htpasswd

    def _write_config(self) -> None:
        super()._write_config()
        tls = (f"  tls:\n    certificate: {self.pki / 'server.crt'}\n    key: {self.pki / 'server.key'}\n"
               + (f"    clientcas:\n      - {self.pki / 'ca.crt'}\n" if self.client_ca else ""))
        text = self.config.read_text().replace("  headers:\n", tls + "  headers:\n")
        if self.htpasswd:
            text += f"auth:\n  htpasswd:\n    realm: lanmirror-test\n    path: {self.htpasswd}\n"
        self.config.write_text(text)

    def _up(self) -> bool:
        try:
            requests.get(f"https://{self.address}/v2/", verify=str(self.pki / "ca.crt"), timeout=2,
                         cert=(str(self.pki / "client.crt"), str(self.pki / "client.key")))
            return True
        except requests.RequestException:
            return False

    def access_log(self) -> list[str]:
        """The registry's access-log lines (one per request, with its status)."""
        return [line for line in self.log.read_text(errors="replace").splitlines() if '" ' in line and "HTTP/" in line]
