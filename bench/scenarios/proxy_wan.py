"""Scenario 7p proxy WAN: latency and a 307 to a CDN through the Python proxy."""

from __future__ import annotations

from harness import REPO, Bench, tag, timed_rss, with_extra_layer
from tests.stack import HUB_CREDS, images


def run(b: Bench) -> None:
    """Labelled as what it is: the Python fault proxy as the WAN (it tops out near 100 MB/s),
    kept only for what the kernel cannot do here: added latency and a 307 to a CDN host."""
    from tests.stack import FaultProxy

    a = b.args
    s = b.stack
    t = tag(0, "wanp")
    b.say("proxy WAN: publishing 4 x 16 MiB + one 64 MiB layer ...")
    img = images.build(["wanp-small-0", "wanp-small-1", "wanp-small-2", "wanp-small-3"], 16 << 20)
    big_blob, big_diff = images.layer("wanp-big", 64 << 20)
    img = with_extra_layer(img, big_blob, big_diff)
    images.push(s.client(b.hub_direct, HUB_CREDS), REPO, t, img)
    total = sum(len(b) for b in img.blobs.values())
    cdn = FaultProxy(b.hub_direct, "cdn").start()
    src, dst = f"{s.hub}/{REPO}:{t}", f"{b.lan_direct}/{REPO}:{t}"
    label = f"7p proxy WAN (Python): {a.wan_rtt_ms:g} ms + 307 to a CDN"
    try:
        for name, cmd in b.mirror_tools(t, source=s.hub).items():
            if (name.startswith("docker") and not a.wan_docker) or not b.wanted_tool(name):
                continue
            b.say(f"{label}: {name}")
            r = b.row(label, name)
            s.lan_registry.wipe()
            s.clear_faults()
            cdn.clear()
            b.forget_local(src, dst)
            for p in (s.hub_proxy, cdn):
                p.conn_rate, p.latency = a.wan_conn_mbps * 1e6, a.wan_rtt_ms / 1e3
            s.hub_proxy.cdn = cdn
            run = timed_rss(cmd, b.env)
            r.seconds.append(round(run.seconds, 3))
            r.rss_mb = round(run.rss_mb, 1)
            r.bytes = s.hub_proxy.bytes_out() + cdn.bytes_out(pattern="/cdn/")
            r.requests = len(s.hub_proxy.entries()) + len(cdn.entries())
            r.mbps = round(total / 1e6 / r.median, 1)
            r.note = ("" if run.rc == 0 else f"FAILED exit {run.rc} ") + \
                f"CDN saw Authorization {cdn.cdn_saw_authorization}x"
    finally:
        s.clear_faults()
        cdn.stop()
