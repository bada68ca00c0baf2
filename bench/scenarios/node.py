"""Scenario 10n the node mirror: four daemons on one host pull one new image at once through
`lanmirror serve`, whose LAN is the kernel-shaped registry (25 MB/s per flow)."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

from harness import REPO, Bench, tag, with_extra_layer
from tests.stack import HUB_CREDS, images

DAEMONS = 4


def run(b: Bench) -> None:
    """10n. Four Engine 20.10 daemons, each in a network namespace whose only way out is the node
    mirror (their own fallback to Docker Hub is refused), pull one new image at once; then, their
    stores emptied, again from the warm node cache. Beside them: one daemon's direct pull of the
    LAN copy (what each of the four would do without the mirror), and a pull from an unshaped
    registry on loopback (extraction-bound). The mirror's LAN bytes and peak RSS go in the notes."""
    from tests.stack.node import MirroredDaemon, NodeMirror
    from wan import ADDRESS, ShapedHub

    from lanmirror.daemon import Engine

    a = b.args
    s = b.stack
    t = tag(0, "fnode")
    blob, diff = images.layer("fnode-big", a.wan_big_mb << 20)
    img = with_extra_layer(images.build([], 0), blob, diff)
    images.push(s.client(b.hub_direct, HUB_CREDS), REPO, t, img)
    images.push(s.client(b.lan_direct), REPO, t, img)  # the unshaped registry on loopback
    total = sum(len(x) for x in img.blobs.values())
    hub = ShapedHub(s.root, s.hub_registry.root / "data").start()
    mirror = NodeMirror(s, s.root / "node-cache", [REPO], "--insecure-registry", ADDRESS, lans=(hub.address,))
    first = f"10n a new image, one daemon's pull, LAN {a.wan_conn_mbps:g} MB/s per flow, {a.wan_big_mb} MiB layer"
    scenario = f"10n the other {DAEMONS - 1} daemons on the host, at once"
    warm = "10n one daemon, the image from the warm node cache"
    daemons: list[MirroredDaemon] = []
    try:
        hub.shape(a.wan_conn_mbps, None)
        mirror.start()
        for i in range(DAEMONS):
            daemons.append(MirroredDaemon(s.root / f"node-d{i}", mirror).__enter__())

        b.say(f"{first}: docker pull of the LAN copy")
        r = b.row(first, "docker pull of the LAN copy")
        started = time.monotonic()
        Engine(s.docker_host, timeout=900).api.pull(f"{hub.address}/{REPO}", tag=t)
        r.seconds.append(round(time.monotonic() - started, 3))
        r.mbps = round(total / 1e6 / r.median, 1)
        r.note = (f"without the mirror each daemon reads the image: {DAEMONS}x = {DAEMONS * total / 1e9:.2f} GB "
                  "from the LAN")

        b.say(f"{first}: lanmirror serve, cold")
        r = b.row(first, "lanmirror")
        r.seconds = pull_all(daemons[:1], t)
        fills = re.findall(r"read once from upstream \((.*?)\) in ([0-9.]+)s", mirror.text())
        big = max(fills, key=lambda f: float(f[1])) if fills else ("?", "?")
        r.note = f"through a cold node mirror: its read of the layer {big[1]} s ({big[0]}), then the extraction"

        b.say(f"{scenario}: the other {DAEMONS - 1} daemons at once")
        r = b.row(scenario, "lanmirror")
        r.seconds = pull_all(daemons[1:], t)
        lan = upstream_bytes(mirror.url, "lan")
        r.note = (f"the other {DAEMONS - 1} at once from the cache (their extractions share the cores); LAN bytes "
                  f"read for all {DAEMONS}: {lan / total:.2f}x the image")

        b.say(f"{warm}: a pull from a registry on loopback")
        empty(s.docker_host, REPO)
        r = b.row(warm, "docker pull from a registry on loopback (extraction-bound)")
        started = time.monotonic()
        Engine(s.docker_host, timeout=900).api.pull(f"{b.lan_direct}/{REPO}", tag=t)
        r.seconds.append(round(time.monotonic() - started, 3))

        b.say(f"{warm}: lanmirror serve")
        for d in daemons:
            empty(d.host)
        r = b.row(warm, "lanmirror")
        started = time.monotonic()
        Engine(daemons[0].host, timeout=900).api.pull(REPO, tag=t)
        r.seconds.append(round(time.monotonic() - started, 3))
        lan_after = upstream_bytes(mirror.url, "lan")
        r.note = (f"one daemon, the blob from the cache (sendfile); LAN bytes read in this round "
                  f"{(lan_after - lan) / total:.2f}x; the mirror's peak RSS {peak_rss(mirror) / 1e6:.0f} MB after "
                  f"serving {(DAEMONS + 1) * total / 1e9:.1f} GB")
    finally:
        for d in daemons:
            d.__exit__()
        if mirror.proc is not None:
            mirror.stop()
        hub.stop()
    four_clients_of_a_big_image(b)


def four_clients_of_a_big_image(b: Bench) -> None:
    """10n memory: a 4 GB image (8 x 512 MiB) served by a cold mirror to 4 clients at once, each
    reading every blob as a daemon does (HTTP clients that discard the bytes: four extractions of
    4 GB would measure the disks, not the mirror). The mirror's peak RSS is the number."""
    import concurrent.futures as cf

    import requests
    from tests.stack.node import NodeMirror

    s = b.stack
    t = tag(0, "fnmem")
    img = images.build([f"fnmem-{i}" for i in range(8)], 512 << 20)
    images.push(s.client(b.hub_direct, HUB_CREDS), REPO, t, img)
    images.push(s.client(b.lan_direct), REPO, t, img)
    total = sum(len(x) for x in img.blobs.values())
    label = "10n memory: a 4 GB image (8 x 512 MiB) to 4 clients at once, cold mirror, loopback LAN"
    mirror = NodeMirror(s, s.root / "node-cache-mem", [REPO], lans=(b.lan_direct,)).start()
    accept = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"

    def client(_: int) -> int:
        with requests.Session() as http:
            http.get(f"{mirror.url}/v2/{REPO}/manifests/{t}", headers={"Accept": accept}, timeout=60).raise_for_status()
            got = 0
            for digest in img.blobs:
                with http.get(f"{mirror.url}/v2/{REPO}/blobs/{digest}", stream=True, timeout=300) as resp:
                    resp.raise_for_status()
                    for chunk in resp.iter_content(1 << 20):
                        got += len(chunk)
            return got

    try:
        b.say(label)
        started = time.monotonic()
        with cf.ThreadPoolExecutor(4) as pool:
            served = sum(pool.map(client, range(4)))
        r = b.row(label, "lanmirror")
        r.seconds.append(round(time.monotonic() - started, 3))
        r.rss_mb = round(peak_rss(mirror) / 1e6, 1)
        r.mbps = round(served / 1e6 / r.median, 1)
        r.note = (f"the mirror's peak RSS {r.rss_mb:.0f} MB after serving {served / 1e9:.1f} GB "
                  f"({served / total:.2f}x the image) to 4 clients; LAN bytes "
                  f"{upstream_bytes(mirror.url, 'lan') / total:.2f}x the image")
    finally:
        mirror.stop()


def pull_all(daemons: list, t: str) -> list[float]:
    from lanmirror.daemon import Engine

    seconds: list[float] = [0.0] * len(daemons)

    def one(i: int) -> None:
        started = time.monotonic()
        Engine(daemons[i].host, timeout=900).api.pull(REPO, tag=t)
        seconds[i] = round(time.monotonic() - started, 3)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(daemons))]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return sorted(seconds)


def empty(host: str, repo: str = "") -> None:
    import docker

    api = docker.APIClient(base_url=host, version="auto")
    for image in api.images():
        names = (image.get("RepoTags") or []) + (image.get("RepoDigests") or [])
        if not repo or any(repo in n for n in names):
            api.remove_image(image["Id"], force=True)


def upstream_bytes(url: str, kind: str) -> int:
    import requests

    text = requests.get(f"{url}/metrics", timeout=10).text
    return sum(int(float(v)) for v in re.findall(
        rf'^lanmirror_node_upstream_bytes_total{{kind="{kind}",[^}}]*}} (\S+)$', text, re.M))


def peak_rss(mirror) -> int:
    status = Path(f"/proc/{mirror.proc.pid}/status").read_text()
    found = re.search(r"VmHWM:\s+(\d+) kB", status)
    return int(found.group(1)) * 1024 if found else 0
