"""A WAN made by the kernel, for the benchmarks: the "Hub" (Distribution over the Hub registry's
own storage) in a network namespace, on a veth pair this bench creates (10.210.200.0/24, never
routed anywhere), its replies shaped by htb.

Per-TCP-flow caps without `fq` or `tbf` (this kernel has neither): 256 htb classes, each at the
per-flow rate, picked by the low 8 bits of the client's port (`u32 match ip dport N 0x00ff`), under
one parent class that is the link cap. Two connections whose ports share the low 8 bits share a
class; the curl ceiling, measured in the same run, is subject to the same chance. Resets are the
kernel's too (`ss -K` inside the namespace). No Python sits in the data path."""

from __future__ import annotations

import subprocess
import tempfile
import threading
from pathlib import Path

from netns import add_namespace, remove_namespace, serve_registry, sh

NS, HOST_IF, NS_IF = "lmw", "lmwh", "lmwn"
NET = "10.210.200"
ADDRESS = f"{NET}.2:5000"
UNCAPPED_MBIT = 40_000  # "no link cap": far above what two cores can move


def in_ns(*cmd: str) -> None:
    sh("ip", "netns", "exec", NS, *cmd)


class ShapedHub:
    """Distribution at 10.210.200.2:5000 in namespace `lmw`, serving `storage` (read-only use)."""

    def __init__(self, root: Path, storage: Path) -> None:
        self.root = root / "shaped-hub"
        self.storage = storage
        self.address = ADDRESS
        self.log = self.root / "registry.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ShapedHub:
        self.stop()
        self.root.mkdir(parents=True, exist_ok=True)
        add_namespace(NS, HOST_IF, NS_IF, NET)
        config = self.root / "config.yml"
        config.write_text("version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: false\n"
                          f"storage:\n  filesystem:\n    rootdirectory: {self.storage}\n"
                          "  cache:\n    blobdescriptor: inmemory\n"
                          f"http:\n  addr: {self.address}\n")
        self.proc = serve_registry(NS, config, self.address, self.log)
        return self

    def shape(self, per_flow_mbps: float, link_mbps: float | None) -> None:
        """Replies: at most `per_flow_mbps` MB/s per TCP flow, `link_mbps` MB/s for all of them."""
        subprocess.run(["ip", "netns", "exec", NS, "tc", "qdisc", "del", "dev", NS_IF, "root"], capture_output=True)
        flow = f"{per_flow_mbps * 8:g}mbit"
        link_mbit = link_mbps * 8 if link_mbps else UNCAPPED_MBIT
        link = f"{link_mbit:g}mbit"
        # A leaf with tokens of its own never asks its parent: the leaves' assured rates must fit in
        # the link, and they borrow up to the per-flow ceiling, so that a link cap binds.
        assured = f"{max(1.0, min(per_flow_mbps * 8, link_mbit / 256)):g}mbit"
        lines = [f"qdisc add dev {NS_IF} root handle 1: htb default 1",
                 f"class add dev {NS_IF} parent 1: classid 1:1 htb rate {link} ceil {link} burst 256k cburst 256k"]
        for n in range(256):
            classid = f"1:{0x100 + n:x}"
            lines.append(f"class add dev {NS_IF} parent 1:1 classid {classid} htb rate {assured} ceil {flow} "
                         "burst 64k cburst 64k")
            lines.append(f"filter add dev {NS_IF} parent 1: protocol ip prio 1 u32 match ip dport {n} 0x00ff "
                         f"flowid {classid}")
        with tempfile.NamedTemporaryFile("w", suffix=".tc") as batch:
            batch.write("\n".join(lines) + "\n")
            batch.flush()
            in_ns("tc", "-batch", batch.name)

    def bytes_sent(self) -> int:
        """Bytes that left the namespace towards the host (the host end's receive counter)."""
        return int(Path(f"/sys/class/net/{HOST_IF}/statistics/rx_bytes").read_text())

    def reset_after(self, nbytes: int) -> threading.Event:
        """Once `nbytes` more have been sent, reset every connection of the registry (kernel RST).
        Set the returned event when the run is over: a watcher must never reset the next run."""
        start = self.bytes_sent()
        done = threading.Event()

        def watch() -> None:
            while not done.wait(0.005):
                if self.bytes_sent() - start >= nbytes:
                    subprocess.run(["ip", "netns", "exec", NS, "ss", "-K", "-t", "src", f"{NET}.2", "sport", "=",
                                    ":5000"], capture_output=True)
                    return

        threading.Thread(target=watch, daemon=True).start()
        return done

    def stop(self) -> None:
        remove_namespace(NS, HOST_IF, self.proc)
