"""Benchmarks: lanmirror side by side with the baselines a user would otherwise pick, in one run.

    ./dev bench [--layers 8 --layer-mb 128 --repeat 3 --docker-repeat 2 --memory-gb 0]

Scenarios (on the same local stack as the tests):
  1. cold mirror        Hub → empty LAN: lanmirror | skopeo copy | docker pull+tag+push | raw curl pipe
  2. incremental        1 of N layers new, yesterday's image on the LAN: same three tools
  3. no-op mirror       the tag is already there: lanmirror | skopeo
  4. resolve            cache hit; LAN hit with pull; LAN refused → Hub; LAN black-holed → Hub;
                        Hub 429 with Retry-After: 1 twice: lanmirror | the original bash | bare docker pull
  5. fleet              32 concurrent resolvers on one LAN registry: p50 / p95
  6. memory (optional)  peak RSS of one mirror of a --memory-gb image
  7. kernel WAN         one 1 GiB layer from a "Hub" in a network namespace, each TCP flow capped by htb
                        (bench/wan.py): (a) 25 MB/s per flow; (b) + a 100 MB/s link cap; (c) 100 MB/s
                        per flow; (d) a kernel reset at 80%. Ceiling measured in the same run (1 and N
                        curl ranges): lanmirror | skopeo | docker pull+tag+push, as a fraction of it
     proxy WAN (7p)     the Python proxy as the WAN, only for latency + a 307 to a CDN (labelled)
  8. fan-out            one mirror into 3 LAN registries vs 3 single-target mirrors: Hub bytes and time
  9. replicas           R = 1, 2, 4 LAN replicas in network namespaces, egress capped by htb, 16 readers
                        spread by rendezvous hashing: aggregate time (should fall as 1/R)
 10. fast pull          the job's pull into an empty store, download and extraction apart: kernel WAN
                        (curl ceiling | docker pull | resolve --pull-via daemon | resolve via the endpoint),
                        loopback LAN (daemon | endpoint), 1 vs 4 LAN replicas through the endpoint
 10f dood            docker outside of docker, on both engines: the job in its own network namespace, the
                        LAN (kernel WAN, 25 MB/s per flow) only the daemon's: docker pull | resolve through a
                        helper container on the daemon's host
 10n node             the node mirror (`lanmirror serve`): 4 daemons on one host pull one new image through
                        it (cold, then warm) | their own docker pull of the LAN copy | a loopback registry;
                        LAN bytes; peak RSS, also while a 4 GB image goes to 4 clients at once
 11. profile          py-spy over a loopback cold mirror and a kernel-WAN copy: CPU per GiB by category
                        (sha256, socket in/out, requests/urllib3, thread hand-offs, lanmirror, start-up)

Mirror timings go straight to the registries (no Python proxy on the data path, as in real life);
bytes and requests come from the registries' own access logs. Resolve scenarios go through the
fault proxy, which injects the faults and counts requests. Each scenario is a module of
bench/scenarios/ over the shared harness (bench/harness.py). Results: a table on stdout, and JSON +
PNG under bench/results/ (ignored by git).
"""

from __future__ import annotations

import argparse
import importlib
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Bench

# In report order; each name is a module of bench/scenarios/.
ORDER = ("cold", "incremental", "fanout", "replicas", "resolve", "fleet", "kernel_wan", "proxy_wan", "fastpull",
         "dood", "node", "memory", "profile", "report")
ALIASES = {"wan": "kernel_wan", "wanproxy": "proxy_wan"}  # the names earlier runs and docs used


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--layers", type=int, default=8)
    p.add_argument("--layer-mb", type=int, default=128)
    p.add_argument("--resolve-mb", type=int, default=16, help="layer size of the resolve scenarios' image")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--docker-repeat", type=int, default=2)
    p.add_argument("--fleet", type=int, default=32)
    p.add_argument("--bash-cap", type=float, default=150.0, help="cap on one run of the original bash (black-hole)")
    p.add_argument("--memory-gb", type=int, default=0, help="also mirror an image of this many GB and report RSS")
    p.add_argument("--wan-big-mb", type=int, default=1024, help="kernel WAN: size of the one layer (MiB)")
    p.add_argument("--wan-conn-mbps", type=float, default=25.0, help="WAN: MB/s per TCP flow")
    p.add_argument("--wan-fast-mbps", type=float, default=100.0, help="kernel WAN 7c: MB/s per flow (a good CDN)")
    p.add_argument("--wan-link-mbps", type=float, default=100.0, help="kernel WAN 7b: MB/s for the whole link")
    p.add_argument("--ceiling-flows", type=int, default=8, help="kernel WAN: parallel curl ranges of the ceiling")
    p.add_argument("--wan-rtt-ms", type=float, default=40.0, help="proxy WAN 7p: latency added to every request")
    p.add_argument("--wan-repeat", type=int, default=1)
    p.add_argument("--wan-docker", type=int, default=1, help="WAN: include docker pull+tag+push (1) or not (0)")
    p.add_argument("--replica-mbit", type=int, default=400, help="replicas: each replica's egress cap, Mbit/s")
    p.add_argument("--replica-layer-mb", type=int, default=16, help="replicas: layer size (4 layers)")
    p.add_argument("--report-log-kb", type=int, default=256, help="report: size of each job log (KB)")
    p.add_argument("--only", help=f"comma-separated scenarios: {','.join(ORDER)} (all by default; memory "
                                  "needs --memory-gb)")
    p.add_argument("--profile-flags", default="", metavar="FLAGS",
                   help="profile: extra mirror flags for both profiled copies, e.g. '--range-below-mbps 0'")
    p.add_argument("--profile-spy", default="--gil", metavar="FLAGS",
                   help="profile: py-spy record flags (default --gil: only samples holding the GIL, i.e. Python "
                        "work; '' counts every running thread, C calls that release the GIL included)")
    p.add_argument("--tools", help="cold, WAN and fast-pull scenarios: only the tools whose name starts with one of "
                                   "these (comma-separated), e.g. lanmirror; for quick iterations and A/B runs, "
                                   "not for reports")
    args = p.parse_args()
    if not shutil.which("skopeo"):
        print("skopeo not found: run ./dev bench, which installs it", file=sys.stderr)
        return 2
    wanted = {ALIASES.get(w, w) for w in (args.only or ",".join(ORDER)).split(",")}
    unknown = wanted - set(ORDER)
    if unknown:
        p.error(f"unknown scenario(s) {', '.join(sorted(unknown))}: choose from {', '.join(ORDER)}")
    bench = Bench(args)
    started = time.monotonic()
    try:
        for name in ORDER:
            if name in wanted and (name != "memory" or args.memory_gb):
                importlib.import_module(f"scenarios.{name}").run(bench)
    finally:
        bench.report()
        bench.close()
    print(f"total {time.monotonic() - started:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
