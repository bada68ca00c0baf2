"""Scenario 7a-7d kernel WAN: one big layer from a shaped "Hub" in a network namespace."""

from __future__ import annotations

from harness import REPO, AccessLog, Bench, tag, timed_cpu, with_extra_layer
from tests.stack import HUB_CREDS, images


def run(b: Bench) -> None:
    """The WAN, shaped by the kernel: the Hub's storage served by Distribution in a network
    namespace, every TCP flow of its replies capped by htb (bench/wan.py), nothing in Python on
    the data path. One image of one big layer. Each scenario first measures its ceiling in the
    same run: one curl stream, and N parallel curl ranges of the same blob; every tool is then
    reported as a fraction of the N-flow ceiling."""
    from wan import ShapedHub

    a = b.args
    s = b.stack
    t = tag(0, "kwan")
    size = a.wan_big_mb << 20
    b.say(f"kernel WAN: publishing one {a.wan_big_mb} MiB layer ...")
    blob, diff = images.layer("kwan-big", size)
    img = with_extra_layer(images.build([], 0), blob, diff)
    images.push(s.client(b.hub_direct, HUB_CREDS), REPO, t, img)
    total = sum(len(b) for b in img.blobs.values())
    digest = img.layer_digests[-1]
    hub = ShapedHub(s.root, s.hub_registry.root / "data").start()
    hub_log = AccessLog(hub.log)
    blob_url = f"http://{hub.address}/v2/{REPO}/blobs/{digest}"
    dst = f"{b.lan_direct}/{REPO}:{t}"
    tools = {**b.mirror_tools(t, source=hub.address)}
    tools["lanmirror"] += ["--insecure-registry", hub.address]

    def curl(n: int) -> list[str]:
        part = -(-len(blob) // n)
        ranges = [(i * part, min(len(blob), (i + 1) * part) - 1) for i in range(n)]
        return ["bash", "-c", " & ".join(f"curl -sf -o /dev/null -r {lo}-{hi} {blob_url}" for lo, hi in ranges)
                + " & wait"]

    scenarios = [(f"7a kernel WAN: {a.wan_conn_mbps:g} MB/s per flow", a.wan_conn_mbps, None, None),
                 (f"7b kernel WAN: {a.wan_conn_mbps:g} MB/s per flow, {a.wan_link_mbps:g} MB/s link",
                  a.wan_conn_mbps, a.wan_link_mbps, None),
                 (f"7c kernel WAN: {a.wan_fast_mbps:g} MB/s per flow", a.wan_fast_mbps, None, None),
                 (f"7d kernel WAN: {a.wan_conn_mbps:g} MB/s per flow, reset at 80%", a.wan_conn_mbps, None, 0.8)]
    try:
        for label, flow, link, reset_at in scenarios:
            hub.shape(flow, link)
            ceiling: float | None = None
            runs: list[tuple[str, list[str]]] = []
            if reset_at is None:
                runs += [("curl, 1 stream", curl(1)), (f"curl, {a.ceiling_flows} ranges (ceiling)",
                                                       curl(a.ceiling_flows))]
            runs += [(name, cmd) for name, cmd in tools.items()
                     if b.wanted_tool(name) and (a.wan_docker or not name.startswith("docker"))]
            for name, cmd in runs:
                b.say(f"{label}: {name} x{a.wan_repeat}")
                r = b.row(label, name)
                for _ in range(a.wan_repeat):
                    if not name.startswith("curl"):
                        s.lan_registry.wipe()
                        b.forget_local(f"{hub.address}/{REPO}:{t}", dst)
                    hub_log.mark()
                    watcher = hub.reset_after(int(len(blob) * reset_at)) if reset_at else None
                    run = timed_cpu(cmd, b.env)
                    if watcher is not None:
                        watcher.set()
                    r.seconds.append(round(run.seconds, 3))
                    r.cpu_per_gib = round(run.cpu / (total / (1 << 30)), 2)
                    r.rss_mb = max(r.rss_mb or 0.0, round(run.rss_mb, 1))
                    r.requests, r.bytes = hub_log.since()
                    ok = run.rc == 0 and (name.startswith("curl") or
                                          s.client(b.lan_direct).head_manifest(REPO, t) is not None)
                    if not ok:
                        r.note = f"FAILED exit {run.rc}: {run.out.strip().splitlines()[-1][:80] if run.out else ''}"
                moved = len(blob) if name.startswith("curl") else total
                r.mbps = round(moved / 1e6 / r.median, 1)
                if "(ceiling)" in name:
                    ceiling = r.mbps
                if ceiling:
                    r.of_ceiling = round(r.mbps / ceiling, 3)
                if reset_at and r.bytes is not None:
                    r.note = (r.note + " " if r.note else "") + f"re-read {max(0, r.bytes - total) / 1e6:.1f} MB"
    finally:
        hub.stop()
