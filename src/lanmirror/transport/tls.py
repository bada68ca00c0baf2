"""TLS the way Docker does it: the system CAs plus the certificates in
`/etc/docker/certs.d/<host[:port]>/` (`*.crt` are CAs; `client.cert` with `client.key` give mutual
TLS), and Docker's insecure rule: an insecure registry (loopback, the daemon's
insecure-registries, --insecure-registry) is tried over HTTPS without verification first, then
plain HTTP, and the answer is kept for the run. Any other registry is HTTPS, verified, only."""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import ssl
import tempfile
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import requests
from requests.utils import DEFAULT_CA_BUNDLE_PATH
from urllib3.exceptions import InsecureRequestWarning

log = logging.getLogger("lanmirror.transport")

CERTS_ENV = "LANMIRROR_CERTS_DIR"
DEFAULT_CERTS_DIR = "/etc/docker/certs.d"

# Unverified HTTPS is chosen on purpose, for insecure registries only (Docker's rule).
warnings.filterwarnings("ignore", category=InsecureRequestWarning)


def certs_dir(explicit: str | Path | None = None) -> Path:
    """--certs-dir, else $LANMIRROR_CERTS_DIR, else Docker's own folder."""
    return Path(explicit or os.environ.get(CERTS_ENV) or DEFAULT_CERTS_DIR)


@dataclass(frozen=True)
class TlsFiles:
    """What certs.d holds for one registry host[:port]."""

    folder: Path
    cas: tuple[Path, ...]
    client: tuple[str, str] | None  # (certificate, key) for mutual TLS

    def describe(self) -> str:
        what = ", ".join(p.name for p in self.cas) if self.cas else "system CAs"
        return what + (" + client certificate" if self.client else "")


def tls_files(host: str, folder_root: str | Path | None = None) -> TlsFiles:
    folder = certs_dir(folder_root) / host
    cas: tuple[Path, ...] = ()
    client = None
    if folder.is_dir():
        cas = tuple(sorted(folder.glob("*.crt")))
        cert, key = folder / "client.cert", folder / "client.key"
        if cert.is_file() and key.is_file():
            client = (str(cert), str(key))
    return TlsFiles(folder, cas, client)


_bundles: dict[tuple[Path, ...], str] = {}
_bundle_lock = threading.Lock()


def ca_bundle(cas: tuple[Path, ...]) -> str | bool:
    """The system CAs plus `cas`, as one file for requests' `verify` (True: the system CAs only)."""
    if not cas:
        return True
    with _bundle_lock:
        if cas not in _bundles:
            system = ssl.get_default_verify_paths().cafile or DEFAULT_CA_BUNDLE_PATH
            parts = [Path(system).read_text()] if system and Path(system).is_file() else []
            parts += [p.read_text() for p in cas]
            fd, path = tempfile.mkstemp(prefix="lanmirror-ca-", suffix=".pem")
            with os.fdopen(fd, "w") as fh:
                fh.write("\n".join(parts))
            atexit.register(_remove, path)  # one run's file: a persistent runner must not collect them
            _bundles[cas] = path
        return _bundles[cas]


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


_schemes: dict[str, str] = {}
_scheme_lock = threading.Lock()


def insecure_scheme(session: requests.Session, host: str, timeout: tuple[float, float]) -> str:
    """For an insecure registry: "https" if it answers HTTPS (unverified), else "http". Asked once
    per host and run; a TLS handshake against a plain-HTTP port fails fast and costs one round trip."""
    with _scheme_lock:
        known = _schemes.get(host)
    if known:
        return known
    try:
        session.get(f"https://{host}/v2/", verify=False, timeout=timeout, allow_redirects=False).close()
        scheme = "https"
    except requests.exceptions.SSLError:
        scheme = "http"
    except (requests.ConnectionError, requests.Timeout):
        return "http"  # refused or silent on either scheme: let the real request report it, decide later
    with _scheme_lock:
        _schemes[host] = scheme
    log.debug("%s: insecure registry answers %s", host, scheme)
    return scheme
