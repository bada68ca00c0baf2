"""The node mirror on the test stack: `lanmirror serve` as a process of its own, and Docker daemons
that pull Docker Hub images through it (`--registry-mirror`).

Each such daemon runs in a network namespace of its own where only the mirror's port answers (the
Namespace forwards it), with a hosts file (bound over /etc/hosts in a mount namespace of its own)
that maps Docker Hub's names to a loopback address nothing listens on: the daemon's own
fallback to registry-1.docker.io, when the mirror fails, is refused on the spot and never leaves
the machine."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import requests

from tests.helpers import LANMIRROR
from tests.stack import HUB_PASSWORD, HUB_USER, Stack
from tests.stack.daemons import Dockerd, free_port
from tests.stack.engine26 import ChrootDockerd
from tests.stack.shapes import Namespace

HUB_NAMES = ("registry-1.docker.io", "index.docker.io", "auth.docker.io", "registry.docker.io",
             "production.cloudflare.docker.com", "docker.io")


class NodeMirror:
    def __init__(self, stack: Stack, cache: Path, repos: list[str], *extra: str, lans: tuple[str, ...] = (),
                 hub_password: str = HUB_PASSWORD, port: int | None = None) -> None:
        self.stack = stack
        self.cache = cache
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = cache.parent / f"serve-{self.port}.log"
        lan_args = [a for lan in (lans or (stack.lan,)) for a in ("--lan-registry", lan)]
        self.cmd = [LANMIRROR, "serve", "--listen", f"127.0.0.1:{self.port}", "--cache-dir", str(cache),
                    *[a for r in repos for a in ("--repo", r)], "--hub-registry", stack.hub, *lan_args,
                    # The replicas in the order given (tests name which one breaks); spread is tested apart.
                    *([] if "--lan-select" in extra else ["--lan-select", "ordered"]), *extra]
        self.env = {**os.environ, "DOCKERHUB_USERNAME": HUB_USER, "DOCKERHUB_TOKEN": hub_password,
                    "LANMIRROR_CACHE": str(cache.parent / "lanmirror-cache")}
        self.env.pop("DOCKER_HOST", None)
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


class MirroredDaemon:
    """A Docker daemon in a namespace of its own, the node mirror its registry mirror: Engine 20.10
    (classic store, `--registry-mirror`) or Engine 26.1 from the chroot (containerd store,
    `registry-mirrors` in its daemon.json, the Hub's names in the chroot's own hosts file)."""

    def __init__(self, root: Path, mirror: NodeMirror, engine: str = "20.10-classic", ports: tuple[int, ...] = ()
                 ) -> None:
        self.ns = Namespace([mirror.port, *ports])  # `ports`: more of 127.0.0.1 that answer in it (a LAN)
        self.root = root
        self.mirror = mirror
        self.engine = engine
        self.dockerd: Dockerd | ChrootDockerd | None = None

    def __enter__(self) -> MirroredDaemon:
        self.ns.__enter__()
        hosts = Path("/etc/netns") / self.ns.name / "hosts"
        hosts.parent.mkdir(parents=True, exist_ok=True)
        # 127.0.0.9: a loopback address nothing listens on, so a fallback is refused at once.
        text = "127.0.0.1 localhost\n" + "".join(f"127.0.0.9 {name}\n" for name in HUB_NAMES)
        hosts.write_text(text)
        # The namespace's network, and a mount namespace of its own where only /etc/hosts differs:
        # `ip netns exec` would also mount a fresh /sys, where dockerd finds no cgroup (whether it
        # does depends on the host's mounts; seen failing in the bench, which starts no chroot).
        prefix = ["nsenter", f"--net=/run/netns/{self.ns.name}", "unshare", "--mount", "--propagation", "private",
                  "sh", "-c", f'mount --bind {hosts} /etc/hosts && exec "$@"', "sh"]
        if self.engine == "26.1-containerd":
            self.dockerd = ChrootDockerd(self.root, prefix=prefix, mirrors=[self.mirror.url], hosts=text).start()
        else:
            self.dockerd = Dockerd(self.root, prefix=prefix, mirrors=[self.mirror.url]).start()
        return self

    @property
    def host(self) -> str:
        assert self.dockerd is not None
        return self.dockerd.host

    def __exit__(self, *exc: object) -> None:
        if self.dockerd is not None:
            self.dockerd.stop()
        self.ns.__exit__()
        shutil.rmtree(Path("/etc/netns") / self.ns.name, ignore_errors=True)
