"""The second engine: Debian 13's Docker (Engine 26.1) with the containerd image store, run from a
debootstrapped chroot beside the host's 20.10.

The cached root filesystem is hard-linked into a folder of this session's own (a second test run
at the same time gets its own mounts, data root and socket), the way fleets on Engine 25-29 run it:
`features.containerd-snapshotter: true`. It shares the host's network, so it reaches the
registries on 127.0.0.1 like the 20.10 engine does."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

from .daemons import StackError, stop_dockerd, wait_for_dockerd
from .debian import debootstrap

SUITE = "trixie"


class ChrootDockerd:
    name = "26-containerd"

    def __init__(self, root: Path, insecure: list[str] | None = None, prefix: list[str] | None = None,
                 mirrors: list[str] | None = None, hosts: str | None = None,
                 config: dict[str, object] | None = None, files: dict[str, bytes] | None = None,
                 extra_env: dict[str, str] | None = None) -> None:
        self.root = root
        self.config = dict(config or {})  # more daemon.json keys
        self.files = dict(files or {})  # more files in the chroot, by absolute path inside it
        self.extra_env = dict(extra_env or {})
        self.prefix = list(prefix or [])  # e.g. `ip netns exec NS`: a daemon in a job's network namespace
        self.mirrors = list(mirrors or [])  # registry-mirrors: Docker Hub pulls go there first
        self.hosts = hosts  # the chroot's own /etc/hosts (a netns's hosts file does not reach into it)
        self.insecure = [a for cidr in (insecure or []) for a in ("--insecure-registry", cidr)]
        self.rootfs = root / "rootfs"
        self.socket = self.rootfs / "run" / "lmt-docker.sock"
        self.host = f"unix://{self.socket}"
        self.log = root / "dockerd.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._mounted: list[Path] = []

    def start(self) -> ChrootDockerd:
        # cosign, oras and buildx: the real signing and artifact clients the referrers tests use.
        packages = ["docker.io", "docker-cli", "ca-certificates", "cosign", "oras", "docker-buildx"]
        tag = hashlib.sha256(" ".join(packages).encode()).hexdigest()[:8]  # a new list builds a new cache
        cached = debootstrap(SUITE, packages, f"{SUITE}-docker-{tag}")
        shutil.rmtree(self.root, ignore_errors=True)
        self.root.mkdir(parents=True)
        # Hard links: a second of work instead of copying 500 MB; nothing in it is written in place.
        copy = subprocess.run(["cp", "-al", str(cached), str(self.rootfs)], capture_output=True, text=True)
        if copy.returncode != 0:
            subprocess.run(["cp", "-a", str(cached), str(self.rootfs)], check=True)
        daemon_json = self.rootfs / "etc" / "docker" / "daemon.json"
        daemon_json.parent.mkdir(parents=True, exist_ok=True)
        daemon_json.unlink(missing_ok=True)  # never write through a hard link into the cache
        config: dict[str, object] = {"features": {"containerd-snapshotter": True}}
        if self.mirrors:
            config["registry-mirrors"] = self.mirrors
        config.update(self.config)
        daemon_json.write_text(json.dumps(config))
        if self.hosts is not None:
            etc_hosts = self.rootfs / "etc" / "hosts"
            etc_hosts.unlink(missing_ok=True)  # a hard link into the cache: replaced, never written through
            etc_hosts.write_text(self.hosts)
        for inside, data in self.files.items():
            path = self.rootfs / inside.lstrip("/")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.unlink(missing_ok=True)  # never write through a hard link into the cache
            path.write_bytes(data)
        # The root a mount point of its own: runc makes "/" private before it pivots into a container's
        # root, which fails (EINVAL) on a chroot's plain folder. With it, this engine runs containers.
        self._mount(["--bind", str(self.rootfs)], self.rootfs)
        self._mount(["-t", "proc", "proc"], self.rootfs / "proc")
        self._mount(["--rbind", "/sys"], self.rootfs / "sys")
        self._mount(["--rbind", "/dev"], self.rootfs / "dev")
        cmd = [*self.prefix, "chroot", str(self.rootfs), "/usr/sbin/dockerd", "-H", "unix:///run/lmt-docker.sock",
               "--data-root", "/var/lib/lmt-docker", "--exec-root", "/run/lmt-docker",
               "--pidfile", "/run/lmt-docker.pid", "--bridge=none", "--iptables=false", "--ip6tables=false",
               "--ip-masq=false", "--userland-proxy=false", "--log-level=warn",
               "--insecure-registry", "192.0.2.10:5000", *self.insecure]
        env = {k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}
        env["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin"
        env.update(self.extra_env)
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        wait_for_dockerd(self.host, "dockerd 26 (chroot)", self.proc, self.log)
        import docker

        driver = docker.APIClient(base_url=self.host, version="auto").info().get("DriverStatus") or []
        if ["driver-type", "io.containerd.snapshotter.v1"] not in [list(p) for p in driver]:
            self.stop()
            raise StackError(f"the second engine is not on the containerd image store: {driver}")
        return self

    def tool(self, *args: str, env: dict[str, str] | None = None, timeout: float = 180
             ) -> subprocess.CompletedProcess[str]:
        """Run one of the chroot's programs (cosign, oras, docker buildx); it shares the host's
        network, so it reaches the stack's registries on 127.0.0.1."""
        full = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", **(env or {})}
        return subprocess.run(["chroot", str(self.rootfs), *args], env=full, capture_output=True, text=True,
                              timeout=timeout)

    def _mount(self, args: list[str], target: Path) -> None:
        target.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", *args, str(target)], check=True, capture_output=True)
        self._mounted.append(target)

    def stop(self) -> None:
        # Whatever containerd left mounted under the rootfs, then our own mounts, deepest first.
        stop_dockerd(self.proc, f"{self.rootfs}/")
        for target in reversed(self._mounted):
            subprocess.run(["umount", "-R", "-l", str(target)], check=False, capture_output=True)
        self._mounted.clear()
        if not any(str(self.rootfs) in line for line in Path("/proc/mounts").read_text().splitlines()):
            shutil.rmtree(self.root, ignore_errors=True)
