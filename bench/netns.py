"""LAN registries "on other hosts" for the benchmarks: each in a network namespace of its own, on a
veth pair this bench creates (10.210.N.0/24, never routed anywhere), with the egress of its replies
capped by the kernel (htb; this kernel has no tbf or netem). No Python sits in the data path."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import requests


def sh(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True)


class NetnsRegistry:
    """CNCF Distribution at 10.210.N.2:5000 inside namespace lmr-N, reached over veth lmh-N."""

    def __init__(self, root: Path, index: int, egress_mbit: int) -> None:
        self.index = index
        self.ns = f"lmr-{index}"
        self.host_if, self.ns_if = f"lmh-{index}", f"lmn-{index}"
        self.address = f"10.210.{index}.2:5000"
        self.root = root / self.ns
        self.egress_mbit = egress_mbit
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> NetnsRegistry:
        self.stop()
        self.root.mkdir(parents=True, exist_ok=True)
        sh("ip", "netns", "add", self.ns)
        sh("ip", "link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if)
        sh("ip", "link", "set", self.ns_if, "netns", self.ns)
        sh("ip", "addr", "add", f"10.210.{self.index}.1/24", "dev", self.host_if)
        sh("ip", "link", "set", self.host_if, "up")
        for cmd in (["ip", "addr", "add", f"10.210.{self.index}.2/24", "dev", self.ns_if],
                    ["ip", "link", "set", self.ns_if, "up"], ["ip", "link", "set", "lo", "up"],
                    # the replica's NIC: every reply leaves through one htb class at the cap
                    ["tc", "qdisc", "add", "dev", self.ns_if, "root", "handle", "1:", "htb", "default", "10"],
                    ["tc", "class", "add", "dev", self.ns_if, "parent", "1:", "classid", "1:10", "htb", "rate",
                     f"{self.egress_mbit}mbit", "ceil", f"{self.egress_mbit}mbit"]):
            sh("ip", "netns", "exec", self.ns, *cmd)
        config = self.root / "config.yml"
        config.write_text(f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: "
                          f"{self.root / 'data'}\nhttp:\n  addr: {self.address}\n")
        registry = shutil.which("docker-registry") or "docker-registry"
        self.proc = subprocess.Popen(["ip", "netns", "exec", self.ns, registry, "serve", str(config)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if requests.get(f"http://{self.address}/v2/", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                time.sleep(0.1)
        raise RuntimeError(f"registry in {self.ns} did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True)  # takes its veth end along
        subprocess.run(["ip", "link", "del", self.host_if], capture_output=True)
