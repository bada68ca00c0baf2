"""Scenario 8 fan-out: one mirror into three LAN registries."""

from __future__ import annotations

import time

from harness import LANMIRROR, REPO, AccessLog, Bench, tag, timed


def run(b: Bench) -> None:
    """One mirror into three LAN registries against three single-target mirrors: Hub bytes and time."""
    a = b.args
    size = a.layer_mb << 20
    t0 = tag(0, "fan")
    b.say(f"fan-out: publishing {a.layers} x {a.layer_mb} MiB ...")
    image = b.publish([f"fan-{i}" for i in range(a.layers)], size, t0)
    image_bytes = sum(len(b) for b in image.blobs.values())
    s = b.stack
    targets = [s.lan_registry, s.lan2_registry, s.lan3_registry]
    base = [LANMIRROR, "mirror", "--repo", REPO, "--tag", t0, "--source-registry", b.hub_direct]

    def wipe() -> None:
        for reg in targets:
            reg.wipe()

    every = [a for r in targets for a in ("--lan-registry", r.address)]
    runs = {"lanmirror, 3 targets in one run": [[*base, *every]],
            "lanmirror, 3 single-target runs": [[*base, "--lan-registry", r.address] for r in targets]}
    from wan import ShapedHub

    # Twice: from the Hub on loopback, and from the same storage behind the kernel-shaped WAN.
    hub = ShapedHub(s.root, s.hub_registry.root / "data").start()
    try:
        hub.shape(a.wan_conn_mbps, None)
        for where, source, log in (("loopback Hub", b.hub_direct, b.hub_log),
                                   (f"kernel WAN {a.wan_conn_mbps:g} MB/s per flow", hub.address,
                                    AccessLog(hub.log))):
            for name, cmds in runs.items():
                row = b.row(f"8 fan-out to 3 LANs, {where}", name)
                for _ in range(a.repeat):
                    wipe()
                    log.mark()
                    started = time.monotonic()
                    for cmd in cmds:
                        cmd = [source if c == b.hub_direct else c for c in cmd] + \
                            (["--insecure-registry", hub.address] if source == hub.address else [])
                        run = timed(cmd, b.env)
                        if run.rc != 0:
                            row.note = f"exit {run.rc}"
                    row.seconds.append(round(time.monotonic() - started, 3))
                    row.requests, row.bytes = log.since()
                row.mbps = round(image_bytes / 1e6 / row.median, 1)
                row.note = (row.note + "; " if row.note else "") + \
                    f"Hub bytes {row.bytes / image_bytes:.2f}x the image"
                b.say(f"fan-out ({where}): {name}")
    finally:
        hub.stop()
    wipe()
