"""Scenario 9 replicas: readers spread over R LAN replicas."""

from __future__ import annotations

import concurrent.futures as cf
import time

from harness import REPO, Bench, tag
from tests.stack import images


def run(b: Bench) -> None:
    """R = 1, 2, 4 LAN replicas, each in its own network namespace with its egress capped by the
    kernel, and 16 readers spread over them by rendezvous hashing, reading one nightly's blobs
    with lanmirror's registry client (one daemon would coalesce identical pulls)."""
    from netns import NetnsRegistry

    from lanmirror.cmd.wiring import Clients
    from lanmirror.ops.resolve.spread import rendezvous

    a = b.args
    readers, cap = 16, a.replica_mbit
    img = images.build([f"rep-{i}" for i in range(4)], a.replica_layer_mb << 20)
    t0 = tag(0, "rep")
    image_bytes = sum(len(b) for b in img.blobs.values())
    for count in (1, 2, 4):
        b.say(f"replicas: {count} x {cap} Mbit/s egress, {readers} readers of {image_bytes >> 20} MiB")
        regs = [NetnsRegistry(b.stack.root / "replicas", i + 1, cap).start() for i in range(count)]
        try:
            with Clients(insecure=["10.210.0.0/16"], daemon=False) as clients:
                for reg in regs:
                    images.push(clients.registry(reg.address), REPO, t0, img)

                addresses = [r.address for r in regs]

                def read(n: int, addresses: list[str] = addresses) -> str:
                    address = rendezvous(f"runner-{n:02d}", addresses)[0]
                    registry = clients.registry(address)
                    for digest in img.blobs:
                        registry.read_blob(REPO, digest)
                    return address

                started = time.monotonic()
                with cf.ThreadPoolExecutor(readers) as pool:
                    chosen = list(pool.map(read, range(readers)))
                seconds = time.monotonic() - started
            row = b.row(f"9 replicas: {readers} readers, {cap} Mbit/s each", f"lanmirror, R={count}")
            row.seconds = [round(seconds, 3)]
            row.bytes = readers * image_bytes
            split = sorted(chosen.count(r.address) for r in regs)
            row.note = f"{readers * image_bytes / seconds / 1e6:.0f} MB/s in all; readers per replica {split}"
        finally:
            for reg in regs:
                reg.stop()
