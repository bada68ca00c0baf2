"""Scenario 5 fleet: concurrent resolvers on one LAN registry."""

from __future__ import annotations

import concurrent.futures as cf
import statistics
import time

from harness import BASE, REPO, Bench, tag
from tests.stack import HUB_CREDS, images


def run(b: Bench) -> None:
    """N resolvers at once against one LAN registry. They run as threads of this process, each
    with its own sessions and daemon client: N Python interpreters on a 2-core machine would
    measure interpreter start-up and CPU starvation, not the registry."""
    from lanmirror.cmd.wiring import Clients
    from lanmirror.ops.resolve import ResolveOptions, resolve

    s = b.stack
    n = b.args.fleet
    b.say(f"fleet: {n} concurrent resolvers")
    t = tag(2)
    if s.client(b.lan_direct).head_manifest(REPO, t) is None:  # when run without the resolve scenario
        img = images.build([f"res-{i}" for i in range(4)], b.args.resolve_mb << 20)
        images.push(s.client(b.hub_direct, HUB_CREDS), REPO, t, img)
        images.push(s.client(b.lan_direct), REPO, t, img)
    s.clear_faults()

    def one(_: int) -> tuple[float, str]:
        start = time.monotonic()
        res = resolve(ResolveOptions(repo=REPO, base_tags=[BASE], lan_registries=[s.lan], hub_registry=s.hub,
                                     pull=False), Clients(docker_host=s.docker_host), on_event=lambda _m: None)
        return time.monotonic() - start, f"{res.image}@{res.digest}"

    with cf.ThreadPoolExecutor(n) as pool:
        runs = list(pool.map(one, range(n)))
    r = b.row(f"5 fleet: {n} concurrent resolvers", "lanmirror")
    lat = sorted(sec for sec, _ in runs)
    r.seconds = [round(x, 3) for x in lat]
    p95 = lat[max(0, round(0.95 * len(lat)) - 1)]
    r.requests = len(s.lan_proxy.entries()) + len(s.hub_proxy.entries())
    r.note = (f"p50 {statistics.median(lat):.2f}s p95 {p95:.2f}s; {len({img for _, img in runs})} distinct "
              f"image(s); LAN {len(s.lan_proxy.entries())} req, Hub {len(s.hub_proxy.entries())} req, "
              f"counted Hub GETs {s.hub_proxy.counted_gets()}")
