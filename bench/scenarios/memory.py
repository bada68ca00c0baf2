"""Scenario 6 memory: peak RSS of one mirror of a --memory-gb image."""

from __future__ import annotations

from harness import LANMIRROR, REPO, Bench, tag
from tests.stack import images


def run(b: Bench) -> None:
    """Peak RSS of one mirror of a --memory-gb image over the kernel WAN (25 MB/s per flow), so
    that parallel ranges, their reorder window and the uploads are all in play: memory must
    stay bounded by --ranges x --range-chunk-mb plus a constant, whatever the image size."""
    from wan import ShapedHub

    gb = b.args.memory_gb
    layers = max(1, int(gb * 2))
    b.say(f"memory: building and publishing a {gb} GB image ({layers} x 512 MiB) ...")
    t = tag(0, "mem")
    # 512 MiB layers: the point is that RSS does not grow with blob or image size.
    b.publish([f"mem-{i}" for i in range(layers)], 512 << 20, t)
    images.layer.cache_clear()
    hub = ShapedHub(b.stack.root, b.stack.hub_registry.root / "data").start()
    try:
        hub.shape(b.args.wan_conn_mbps, None)
        b.stack.lan_registry.wipe()
        cmd = [LANMIRROR, "mirror", "--repo", REPO, "--tag", t, "--source-registry", hub.address,
               "--insecure-registry", hub.address, "--lan-registry", b.lan_direct]
        r = b.row(f"6 memory: {gb} GB image, kernel WAN {b.args.wan_conn_mbps:g} MB/s per flow",
                     "lanmirror")
        b.measure(r, cmd)
        r.mbps = round(gb * (1 << 30) / 1e6 / r.median, 1)
        r.note = (r.note + " " if r.note else "") + "bound: --ranges x --range-chunk-mb buffered + interpreter"
    finally:
        hub.stop()
