"""The node mirror on the test stack: `lanmirror serve` as a process of its own, and Docker daemons
that pull Docker Hub images through it (`--registry-mirror`).

Each such daemon runs in a network namespace of its own where only the mirror's port answers (the
Namespace forwards it), with a hosts file (bound over /etc/hosts in a mount namespace of its own)
that maps Docker Hub's names to a loopback address nothing listens on: the daemon's own
fallback to registry-1.docker.io, when the mirror fails, is refused on the spot and never leaves
the machine."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import requests

from tests.helpers import LANMIRROR
from tests.stack import HUB_PASSWORD, HUB_USER, Stack
from tests.stack.daemons import Dockerd, free_port, require, wait_for
from tests.stack.engine26 import ChrootDockerd
from tests.stack.shapes import Namespace
from tests.stack.tls import TlsRegistry, make_pki

NOWHERE = "127.0.0.9"  # where Docker Hub's names lead in a daemon's namespace
HUB_NAMES = ("registry-1.docker.io", "index.docker.io", "auth.docker.io", "registry.docker.io",
             "production.cloudflare.docker.com", "docker.io")


class NodeMirror:
    def __init__(self, stack: Stack, cache: Path, repos: list[str], *extra: str, lans: tuple[str, ...] = (),
                 hub_password: str = HUB_PASSWORD, port: int | None = None, image: str | None = None) -> None:
        self.stack = stack
        self.cache = cache
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = cache.parent / f"serve-{self.port}.log"
        lan_args = [a for lan in (lans or (stack.lan,)) for a in ("--lan-registry", lan)]
        serve = ["serve", "--listen", f"127.0.0.1:{self.port}", "--cache-dir", "/cache" if image else str(cache),
                 *[a for r in repos for a in ("--repo", r)], "--hub-registry", stack.hub, *lan_args,
                 # The replicas in the order given (tests name which one breaks); spread is tested apart.
                 *([] if "--lan-select" in extra else ["--lan-select", "ordered"]), *extra]
        self.env = {**os.environ, "DOCKERHUB_USERNAME": HUB_USER, "DOCKERHUB_TOKEN": hub_password,
                    "LANMIRROR_CACHE": str(cache.parent / "lanmirror-cache")}
        self.env.pop("DOCKER_HOST", None)
        self.cmd = [LANMIRROR, *serve]
        if image:
            # The container form (examples/systemd/lanmirror-serve-container.service) on the stack's
            # own daemon: host network, the cache a volume owned by the image's user (10001).
            cache.mkdir(parents=True, exist_ok=True)
            os.chown(cache, 10001, 10001)
            self.env["DOCKER_HOST"] = stack.docker_host
            self.cmd = ["docker", "run", "--rm", "--name", f"lmserve-{self.port}", "--network", "host",
                        "-e", "DOCKERHUB_USERNAME", "-e", "DOCKERHUB_TOKEN", "-v", f"{cache}:/cache", image, *serve]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> NodeMirror:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self._out = open(self.log, "ab")  # noqa: SIM115  (open while the process runs)
        self.proc = subprocess.Popen(self.cmd, env=self.env, stdout=self._out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.text()
            try:
                if requests.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise AssertionError(f"lanmirror serve did not get ready:\n{self.text()}")

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        self._out.close()
        return code


class HubNamed:
    """A network namespace where Docker Hub's names are ours: its hosts file (bound over /etc/hosts
    in a mount namespace of its own, for whatever runs under `prefix`) maps them to 127.0.0.9. Nothing
    listens there, so a fallback is refused at once; with `hub_data`, a Hub does
    (HubInNamespace), with a certificate from a CA in `ca` that only what is told to trust it does.
    `ports`: the ports of 127.0.0.1 that answer in the namespace."""

    def __init__(self, root: Path, ports: list[int], hub_data: Path | None = None) -> None:
        self.ns = Namespace(ports)
        self.root = root
        self.hub_data = hub_data
        self.hub: HubInNamespace | None = None
        self.hosts_text = "127.0.0.1 localhost\n" + "".join(f"{NOWHERE} {name}\n" for name in HUB_NAMES)
        self.prefix: list[str] = []

    @property
    def ca(self) -> Path:
        assert self.hub is not None
        return self.hub.pki / "ca.crt"

    def __enter__(self) -> HubNamed:
        self.ns.__enter__()
        hosts = Path("/etc/netns") / self.ns.name / "hosts"
        hosts.parent.mkdir(parents=True, exist_ok=True)
        hosts.write_text(self.hosts_text)
        if self.hub_data is not None:
            self.hub = HubInNamespace(self.root, self.ns.name, self.hub_data).start()
        # The namespace's network, and a mount namespace of its own where only /etc/hosts differs:
        # `ip netns exec` would also mount a fresh /sys, where dockerd finds no cgroup (whether it
        # does depends on the host's mounts; seen failing in the bench, which starts no chroot).
        self.prefix = ["nsenter", f"--net=/run/netns/{self.ns.name}", "unshare", "--mount", "--propagation",
                       "private", "sh", "-c", f'mount --bind {hosts} /etc/hosts && exec "$@"', "sh"]
        return self

    def __exit__(self, *exc: object) -> None:
        if self.hub is not None:
            self.hub.stop()
        self.ns.__exit__()
        shutil.rmtree(Path("/etc/netns") / self.ns.name, ignore_errors=True)


class MirroredDaemon:
    """A Docker daemon in a namespace of its own (HubNamed), the node mirror its registry mirror:
    Engine 20.10 (classic store, `--registry-mirror`) or Engine 26.1 from the chroot (containerd
    store, `registry-mirrors` in its daemon.json, the Hub's names in the chroot's own hosts file).
    With `hub_data`, the daemon's own fallback finds a Hub at registry-1.docker.io, whose CA it
    trusts through SSL_CERT_FILE (for Docker Hub, Go's system roots: certs.d is not read)."""

    def __init__(self, root: Path, mirror: NodeMirror, engine: str = "20.10-classic", ports: tuple[int, ...] = (),
                 hub_data: Path | None = None, download_attempts: int | None = None) -> None:
        self.named = HubNamed(root, [mirror.port, *ports], hub_data)  # `ports`: more that answer (a LAN)
        self.ns = self.named.ns
        self.root = root
        self.mirror = mirror
        self.engine = engine
        self.download_attempts = download_attempts  # the daemon's --max-download-attempts (default 5)
        self.dockerd: Dockerd | ChrootDockerd | None = None

    @property
    def hub(self) -> HubInNamespace | None:
        return self.named.hub

    def __enter__(self) -> MirroredDaemon:
        named = self.named.__enter__()
        env = {"SSL_CERT_FILE": str(named.ca)} if named.hub else {}
        attempts = self.download_attempts
        if self.engine == "26.1-containerd":
            files = {}
            if named.hub is not None:
                files["/etc/lmt-hub-ca.pem"] = named.ca.read_bytes()
                env["SSL_CERT_FILE"] = "/etc/lmt-hub-ca.pem"
            config = {"max-download-attempts": attempts} if attempts else {}
            self.dockerd = ChrootDockerd(self.root / "engine", prefix=named.prefix, mirrors=[self.mirror.url],
                                         hosts=named.hosts_text, config=config, files=files, extra_env=env).start()
        else:
            self.dockerd = Dockerd(self.root, prefix=named.prefix, mirrors=[self.mirror.url], extra_env=env,
                                   extra_args=["--max-download-attempts", str(attempts)] if attempts else []).start()
        return self

    @property
    def host(self) -> str:
        assert self.dockerd is not None
        return self.dockerd.host

    def __exit__(self, *exc: object) -> None:
        if self.dockerd is not None:
            self.dockerd.stop()
        self.named.__exit__()


class HubInNamespace(TlsRegistry):
    """Docker Hub's own name inside a namespace: Distribution on 127.0.0.9:443 with a certificate for
    registry-1.docker.io from a fresh CA, serving the test Hub's storage (read only, no login). Where
    a daemon falls back from its mirror by itself, it lands here; the access log says what it read."""

    def __init__(self, root: Path, netns: str, hub_data: Path) -> None:
        (root / "hub-pki").mkdir(parents=True, exist_ok=True)
        super().__init__(root, "hub-in-namespace", make_pki(root / "hub-pki", dns="registry-1.docker.io"))
        self.address = f"{NOWHERE}:443"
        self.netns = netns
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "data").symlink_to(hub_data)

    def start(self) -> HubInNamespace:
        self._write_config()
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(["nsenter", f"--net=/run/netns/{self.netns}", require("docker-registry"),
                                          "serve", str(self.config)], stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        wait_for(self._up, "the Hub in the namespace", 30, self.proc, self.log)
        return self

    def _up(self) -> bool:
        probe = subprocess.run(["nsenter", f"--net=/run/netns/{self.netns}", "curl", "-s", "-o", "/dev/null",
                                "-w", "%{http_code}", "--cacert", str(self.pki / "ca.crt"), "--resolve",
                                f"registry-1.docker.io:443:{NOWHERE}", "https://registry-1.docker.io/v2/"],
                               capture_output=True, text=True, timeout=10)
        return probe.stdout == "200"

    def blob_gets(self) -> list[str]:
        """The digests of the blobs the daemon fetched here (whole or by range)."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return re.findall(r'"GET /v2/[^ ]+/blobs/(sha256:[0-9a-f]{64}) HTTP/[0-9.]+" 20[06]', text)
