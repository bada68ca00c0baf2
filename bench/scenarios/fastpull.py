"""Scenario 10 fast pull: the job's pull into an empty store."""

from __future__ import annotations

import concurrent.futures as cf
import statistics
import subprocess
import sys
import time

from harness import (
    DOCKER_PULL_PHASES,
    LANMIRROR,
    REPO,
    Bench,
    Row,
    docker_download_seconds,
    pull_download_seconds,
    tag,
    timed_cpu,
    with_extra_layer,
)
from tests.stack import HUB_CREDS, images


def run(b: Bench) -> None:
    """10. The job's pull, the hot path: an empty image store pulls the nightly. The download and
    extraction phases are reported apart (the daemon downloads a layer whole before extracting it,
    and extraction on these two cores is a fixed cost no transport changes).
      a. kernel WAN, 25 MB/s per flow, one 1 GiB layer: curl 1 stream and N ranges (the ceiling),
         docker pull, lanmirror resolve --pull-via daemon (today), lanmirror resolve (the endpoint)
      b. loopback LAN, the same image: --pull-via daemon against the endpoint (auto)
      c. R LAN replicas in network namespaces, each capped at --replica-mbit: the endpoint reading
         from all of them against the endpoint reading from one
      (f, docker outside of docker, is scenario `dood`)"""
    from netns import NetnsRegistry
    from wan import ShapedHub

    from lanmirror.cmd.wiring import Clients

    a = b.args
    s = b.stack
    t = tag(0, "fpull")
    blob, diff = images.layer("fpull-big", a.wan_big_mb << 20)
    img = with_extra_layer(images.build([], 0), blob, diff)
    images.push(s.client(b.hub_direct, HUB_CREDS), REPO, t, img)
    total = sum(len(b) for b in img.blobs.values())
    digest = img.layer_digests[-1]

    def resolve(hub: str, *extra: str) -> list[str]:
        return [LANMIRROR, "resolve", "--repo", REPO, "--base-tag", "fpull", "--hub-registry", hub, "--json",
                "--insecure-registry", hub, "--no-verify", *extra]

    def measure(label: str, name: str, cmd: list[str], ref: str, ceiling: float | None = None) -> Row:
        r = b.row(label, name)
        for _ in range(a.wan_repeat):
            b.forget_local(ref)
            b.docker("image", "prune", "-af")  # every job starts from an empty image store
            run = timed_cpu(cmd, b.env)
            r.seconds.append(round(run.seconds, 3))
            r.rss_mb = max(r.rss_mb or 0.0, round(run.rss_mb, 1))
            download = pull_download_seconds(run.out) if name.startswith("lanmirror") else None
            if name == "docker pull":
                download = docker_download_seconds(run.out)
            if run.rc != 0:
                r.note = f"FAILED exit {run.rc}: {run.out.strip().splitlines()[-1][:80] if run.out else ''}"
                continue
            moved = len(blob) if name.startswith("curl") else total
            r.mbps = round(moved / 1e6 / r.median, 1)
            if download:
                r.note = (f"download {download:.1f} s ({moved / 1e6 / download:.0f} MB/s"
                          + (f", {moved / 1e6 / download / ceiling:.0%} of the ceiling" if ceiling else "")
                          + f"), extract {max(0.0, run.seconds - download):.1f} s")
            if name.startswith("lanmirror"):
                r.note += f"; CPU {run.cpu / (total / 2**30):.1f} s/GiB"
        return r

    hub = ShapedHub(s.root, s.hub_registry.root / "data").start()
    try:
        hub.shape(a.wan_conn_mbps, None)
        label = f"10a pull: kernel WAN {a.wan_conn_mbps:g} MB/s per flow, {a.wan_big_mb} MiB layer"
        blob_url = f"http://{hub.address}/v2/{REPO}/blobs/{digest}"
        ceiling: float | None = None
        for n in (1, a.ceiling_flows):
            if n == 1 and not b.wanted_tool("curl"):
                continue  # the ceiling (N ranges) stays: the other rows are read as a fraction of it
            part = -(-len(blob) // n)
            spans = [(i * part, min(len(blob), (i + 1) * part) - 1) for i in range(n)]
            cmd = ["bash", "-c", " & ".join(f"curl -sf -o /dev/null -r {lo}-{hi} {blob_url}" for lo, hi in spans)
                   + " & wait"]
            b.say(f"{label}: curl x{n}")
            row = measure(label, f"curl, {n} stream(s)" + (" (ceiling)" if n > 1 else ""), cmd, "none")
            ceiling = row.mbps if n > 1 else ceiling
        ref = f"{hub.address}/{REPO}:{t}"
        tools = [("docker pull", [sys.executable, "-c", DOCKER_PULL_PHASES, f"{hub.address}/{REPO}@{img.digest}"]),
                 ("lanmirror, --pull-via daemon", resolve(hub.address, "--pull-via", "daemon")),
                 ("lanmirror (endpoint)", resolve(hub.address))]
        for name, cmd in tools:
            if b.wanted_tool(name):
                b.say(f"{label}: {name}")
                measure(label, name, cmd, ref, ceiling)
    finally:
        hub.stop()

    # b. loopback LAN
    label = f"10b pull: loopback LAN, {a.wan_big_mb} MiB layer"
    subprocess.run([LANMIRROR, "mirror", "--repo", REPO, "--tag", t, "--source-registry", b.hub_direct,
                    "--lan-registry", b.lan_direct], env=b.env, check=True, capture_output=True)
    ref = f"{b.hub_direct}/{REPO}:{t}"
    for name, extra in (("lanmirror, --pull-via daemon", ["--pull-via", "daemon"]),
                        ("lanmirror (auto)", [])):
        if not b.wanted_tool(name):
            continue
        b.say(f"{label}: {name}")
        measure(label, name, resolve(b.hub_direct, "--lan-registry", b.lan_direct, *extra), ref)

    # c. replicas; d. 16 runners at once over the same 4 replicas
    label = f"10c pull: LAN replicas, {a.replica_mbit} Mbit/s each, {a.wan_big_mb} MiB layer"
    regs = [NetnsRegistry(s.root / "fast-replicas", i + 1, a.replica_mbit).start() for i in range(4)]
    try:
        with Clients(insecure=["10.210.0.0/16"], daemon=False) as clients:
            for reg in regs:
                images.push(clients.registry(reg.address), REPO, t, img)
        for count in (1, 4):
            lans = [x for reg in regs[:count] for x in ("--lan-registry", reg.address)]
            cmd = resolve(b.hub_direct, *lans, "--insecure-registry", "10.210.0.0/16", "--pull-via", "ranges")
            b.say(f"{label}: {count} replica(s)")
            measure(label, f"lanmirror, {count} replica(s)", cmd, ref)
        concurrent_readers(b, regs)
    finally:
        for reg in regs:
            reg.stop()
    big_image_on_the_endpoint(b)


def concurrent_readers(b: Bench, regs: list) -> None:
    """10d. 16 runners at once over 4 replicas. One machine has one daemon, so each runner is
    the endpoint's reader (BlobSources) reading the nightly's blobs, as scenario 9's readers
    are: each from its rendezvous replica alone (today's spread), against each from every
    replica (its rendezvous replica first). p50 and p95 of the runners' times."""
    from lanmirror.cmd.wiring import Clients
    from lanmirror.ops.resolve.spread import rendezvous
    from lanmirror.retry import RetryPolicy
    from lanmirror.serve import BlobSources, Source

    a = b.args
    readers = 16
    img = images.build([f"fp-rep-{i}" for i in range(4)], 96 << 20)  # over the 64 MiB range threshold
    t0 = tag(0, "fprep")
    label = f"10d pull: {readers} runners over 4 replicas, {a.replica_mbit} Mbit/s each"
    with Clients(insecure=["10.210.0.0/16"], daemon=False) as clients:
        for reg in regs:
            images.push(clients.registry(reg.address), REPO, t0, img)
        addresses = [r.address for r in regs]
        for mode in ("rendezvous replica only (today)", "every replica (endpoint)"):
            def read(n: int, mode: str = mode) -> float:
                order = rendezvous(f"runner-{n:02d}", addresses)
                chosen = order if mode.startswith("every") else order[:1]
                feed = BlobSources([Source("lan", clients.registry(r), REPO) for r in chosen],
                                   RetryPolicy(attempts=3, base=0.1, cap=0.5))
                started = time.monotonic()
                for digest, blob in img.blobs.items():
                    for _ in feed.read(digest, len(blob)):
                        pass
                return time.monotonic() - started

            b.say(f"{label}: {mode}")
            with cf.ThreadPoolExecutor(readers) as pool:
                times = sorted(pool.map(read, range(readers)))
            row = b.row(label, mode)
            row.seconds = [round(x, 3) for x in times]
            p95 = times[min(len(times) - 1, int(0.95 * len(times)))]
            row.note = f"p50 {statistics.median(times):.2f} s, p95 {p95:.2f} s, max {times[-1]:.2f} s"


def big_image_on_the_endpoint(b: Bench) -> None:
    """10e. Peak RSS and CPU per GiB of the endpoint path for a 4 GB image (8 x 512 MiB) from the
    kernel WAN (25 MB/s per flow)."""
    from wan import ShapedHub

    a = b.args
    s = b.stack
    t = tag(0, "fpbig")
    img = images.build([f"fpbig-{i}" for i in range(8)], 512 << 20)
    images.push(s.client(b.hub_direct, HUB_CREDS), REPO, t, img)
    total = sum(len(b) for b in img.blobs.values())
    label = "10e pull: 4 GB image (8 x 512 MiB), kernel WAN 25 MB/s per flow"
    hub = ShapedHub(s.root, s.hub_registry.root / "data").start()
    try:
        hub.shape(a.wan_conn_mbps, None)
        b.forget_local(f"{hub.address}/{REPO}:{t}")
        b.docker("image", "prune", "-af")
        cmd = [LANMIRROR, "resolve", "--repo", REPO, "--base-tag", "fpbig", "--hub-registry", hub.address, "--json",
               "--insecure-registry", hub.address, "--no-verify"]
        b.say(label)
        run = timed_cpu(cmd, b.env)
        r = b.row(label, "lanmirror (endpoint)")
        r.seconds = [round(run.seconds, 3)]
        r.rss_mb = round(run.rss_mb, 1)
        r.mbps = round(total / 1e6 / run.seconds, 1)
        download = pull_download_seconds(run.out)
        r.note = (f"{'FAILED ' if run.rc else ''}CPU {run.cpu / (total / 2**30):.1f} s/GiB"
                  + (f", download {download:.1f} s ({total / 1e6 / download:.0f} MB/s)" if download else ""))
        b.docker("image", "prune", "-af")
    finally:
        hub.stop()
