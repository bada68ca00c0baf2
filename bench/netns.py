"""LAN registries "on other hosts" for the benchmarks: each in a network namespace of its own, on a
veth pair this bench creates (10.210.N.0/24, never routed anywhere), with the egress of its replies
capped by the kernel (htb; this kernel has no tbf or netem). No Python sits in the data path."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import requests


def sh(*cmd: str, stdin: str | None = None) -> None:
    proc = subprocess.run(cmd, input=stdin, text=True, capture_output=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:6])} failed: {proc.stderr.strip()[:500]}")


def add_namespace(ns: str, host_if: str, ns_if: str, net: str) -> None:
    """Namespace `ns` joined to this one by a veth pair: NET.1 on `host_if` here, NET.2 on `ns_if`
    inside, both up, and loopback up inside."""
    sh("ip", "netns", "add", ns)
    sh("ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if)
    sh("ip", "link", "set", ns_if, "netns", ns)
    sh("ip", "addr", "add", f"{net}.1/24", "dev", host_if)
    sh("ip", "link", "set", host_if, "up")
    for cmd in (["ip", "addr", "add", f"{net}.2/24", "dev", ns_if], ["ip", "link", "set", ns_if, "up"],
                ["ip", "link", "set", "lo", "up"]):
        sh("ip", "netns", "exec", ns, *cmd)


def serve_registry(ns: str, config: Path, address: str, log: Path | None = None) -> subprocess.Popen[bytes]:
    """`docker-registry serve CONFIG` inside `ns`, once `http://ADDRESS/v2/` answers 200."""
    registry = shutil.which("docker-registry") or "docker-registry"
    with open(log or "/dev/null", "ab") as out:
        proc = subprocess.Popen(["ip", "netns", "exec", ns, registry, "serve", str(config)], stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://{address}/v2/", timeout=1).status_code == 200:
                return proc
        except requests.RequestException:
            time.sleep(0.1)
    proc.terminate()
    raise RuntimeError(f"the registry in {ns} did not start")


def remove_namespace(ns: str, host_if: str, proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.terminate()
        proc.wait(10)
    subprocess.run(["ip", "netns", "del", ns], capture_output=True)  # takes its veth end along
    subprocess.run(["ip", "link", "del", host_if], capture_output=True)


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
        add_namespace(self.ns, self.host_if, self.ns_if, f"10.210.{self.index}")
        # the replica's NIC: every reply leaves through one htb class at the cap
        for cmd in (["tc", "qdisc", "add", "dev", self.ns_if, "root", "handle", "1:", "htb", "default", "10"],
                    ["tc", "class", "add", "dev", self.ns_if, "parent", "1:", "classid", "1:10", "htb", "rate",
                     f"{self.egress_mbit}mbit", "ceil", f"{self.egress_mbit}mbit"]):
            sh("ip", "netns", "exec", self.ns, *cmd)
        config = self.root / "config.yml"
        config.write_text(f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: "
                          f"{self.root / 'data'}\nhttp:\n  addr: {self.address}\n")
        self.proc = serve_registry(self.ns, config, self.address)
        return self

    def stop(self) -> None:
        remove_namespace(self.ns, self.host_if, self.proc)
