"""Real daemons for the tests: dockerd with its own data root and socket, and CNCF Distribution.

Nothing here touches a system daemon: every path is under the stack's own temp folder.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import requests


class StackError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check, what: str, timeout: float = 60.0, proc: subprocess.Popen | None = None, log: Path | None = None):
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = log.read_text()[-3000:] if log and log.exists() else ""
            raise StackError(f"{what} exited with {proc.returncode}:\n{tail}")
        try:
            if check():
                return
        except Exception as exc:
            last = exc
        time.sleep(0.1)
    tail = log.read_text()[-3000:] if log and log.exists() else ""
    raise StackError(f"{what} did not come up in {timeout}s ({last}):\n{tail}")


def require(binary: str) -> str:
    path = shutil.which(binary) or (f"/usr/sbin/{binary}" if Path(f"/usr/sbin/{binary}").exists() else None)
    if not path:
        raise StackError(f"{binary} not found: run the README's test command, which installs it")
    return path


def wait_for_dockerd(host: str, what: str, proc: subprocess.Popen, log: Path) -> None:
    import docker

    def up() -> bool:
        return bool(docker.APIClient(base_url=host, version="auto", timeout=5).ping())

    wait_for(up, what, 90, proc, log)


def stop_dockerd(proc: subprocess.Popen | None, mounts_under: str) -> None:
    """SIGTERM (SIGKILL after 30 s), then lazily unmount what containerd left under `mounts_under`,
    deepest first (shim leftovers hold mounts)."""
    if proc and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    script = f"grep -o ' {mounts_under}[^ ]*' /proc/mounts | sort -r | xargs -r -n1 umount -l"
    subprocess.run(["bash", "-c", script], check=False, capture_output=True)


class Dockerd:
    """dockerd with --data-root/--exec-root/socket/pidfile in `root`, no bridge, no iptables."""

    def __init__(self, root: Path, insecure: list[str] | None = None, prefix: list[str] | None = None,
                 mirrors: list[str] | None = None, extra_env: dict[str, str] | None = None,
                 extra_args: list[str] | None = None) -> None:
        self.root = root
        self.extra_env = dict(extra_env or {})  # e.g. SSL_CERT_FILE: the CAs Go trusts for Docker Hub itself
        self.extra_args = list(extra_args or [])
        self.insecure = list(insecure or [])
        self.mirrors = list(mirrors or [])  # --registry-mirror URLs: Docker Hub pulls go there first
        self.prefix = list(prefix or [])  # e.g. `ip netns exec NS`: a daemon in a job's network namespace
        self.socket = root / "docker.sock"
        self.host = f"unix://{self.socket}"
        self.log = root / "dockerd.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> Dockerd:
        # The exec-root holds unix sockets, whose paths must stay under 108 bytes.
        self.root.mkdir(parents=True, exist_ok=True)
        exec_root = Path(f"/tmp/lmx-{os.getpid()}-{abs(hash(str(self.root))) % 10**6}")
        self.exec_root = exec_root
        cmd = [*self.prefix, require("dockerd"), "--data-root", str(self.root / "data"), "--exec-root", str(exec_root),
               "-H", self.host, "--pidfile", str(self.root / "docker.pid"), "--bridge=none", "--iptables=false",
               "--ip-masq=false", "--userland-proxy=false", "--log-level=warn",
               # Declared, never contacted (TEST-NET-1): lets tests read a daemon's insecure list.
               "--insecure-registry", "192.0.2.10:5000",
               *[a for registry in self.insecure for a in ("--insecure-registry", registry)],
               *[a for mirror in self.mirrors for a in ("--registry-mirror", mirror)], *self.extra_args]
        env = {**{k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}, **self.extra_env}
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        wait_for_dockerd(self.host, "dockerd", self.proc, self.log)
        return self

    def stop(self) -> None:
        stop_dockerd(self.proc, f"{self.root}/data")
        shutil.rmtree(getattr(self, "exec_root", self.root / "none"), ignore_errors=True)


class Registry:
    """CNCF Distribution (`docker-registry serve`) on 127.0.0.1, plain HTTP, deletes enabled,
    optionally with Docker-Hub-style token auth."""

    def __init__(self, root: Path, name: str, *, token_realm: str | None = None, token_cert: Path | None = None,
                 service: str = "", issuer: str = "", port: int | None = None,
                 proxy: tuple[str, str, str] | None = None) -> None:
        self.root = root / name
        self.name = name
        self.port = port or free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.log = self.root / "registry.log"
        self.config = self.root / "config.yml"
        self.token = (token_realm, token_cert, service, issuer) if token_realm else None
        self.proxy = proxy  # (remote URL, username, password): a pull-through cache of that registry
        self.proc: subprocess.Popen | None = None

    def _write_config(self) -> None:
        auth = ""
        if self.token:
            realm, cert, service, issuer = self.token
            auth = (f"auth:\n  token:\n    realm: {realm}\n    service: {service}\n    issuer: {issuer}\n"
                    f"    rootcertbundle: {cert}\n")
        self.config.write_text(
            "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\n"
            f"storage:\n  filesystem:\n    rootdirectory: {self.root / 'data'}\n  delete:\n    enabled: true\n"
            "  cache:\n    blobdescriptor: inmemory\n"
            f"http:\n  addr: {self.address}\n  secret: lanmirror-test-{self.name}\n"
            "  headers:\n    X-Content-Type-Options: [nosniff]\n"
            # Non-distributable layers name where they are served; like Docker Hub (which accepts
            # Microsoft's), these registries accept the tests' own loopback URLs.
            "validation:\n  manifests:\n    urls:\n      allow:\n        - '^https?://127\\.0\\.0\\.1(:[0-9]+)?/'\n"
            + auth
            + (f"proxy:\n  remoteurl: {self.proxy[0]}\n  username: {self.proxy[1]}\n  password: {self.proxy[2]}\n"
               if self.proxy else "")
        )

    def start(self) -> Registry:
        self.root.mkdir(parents=True, exist_ok=True)
        self._write_config()
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([require("docker-registry"), "serve", str(self.config)],
                                         stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

        wait_for(self._up, f"registry {self.name}", 30, self.proc, self.log)
        return self

    def _up(self) -> bool:
        return requests.get(f"http://{self.address}/v2/", timeout=2).status_code in (200, 401)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def restart(self) -> None:
        self.stop()
        self.start()

    def wipe(self) -> None:
        """Empty the storage (between tests that need an empty mirror)."""
        self.stop()
        shutil.rmtree(self.root / "data", ignore_errors=True)
        self.start()
