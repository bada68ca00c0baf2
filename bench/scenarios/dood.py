"""Scenario 10f docker outside of docker: the job's pull in the fleet's own runner shape."""

from __future__ import annotations

import sys

from harness import (
    DOCKER_PULL_PHASES,
    LANMIRROR,
    REPO,
    Bench,
    docker_download_seconds,
    pull_download_seconds,
    tag,
    timed_cpu,
    with_extra_layer,
)
from tests.stack import HUB_CREDS, images


def run(b: Bench) -> None:
    """10f. The fleet's own shape: the job drives the host's daemon through its socket from a network
    namespace of its own, where the LAN (here the kernel-shaped registry, 25 MB/s per flow) is out
    of reach. Engine 20.10 is the bench's daemon; Engine 26 (containerd store) runs from the tests'
    chroot for this scenario. lanmirror's image is built offline into each, as a fleet would have
    it on the host or on the LAN."""
    from tests.stack import lmimage
    from tests.stack.engine26 import ChrootDockerd
    from tests.stack.shapes import Namespace
    from wan import ADDRESS, ShapedHub

    import lanmirror
    from lanmirror.ops.resolve.onhost import HELPER_REPO, helper_tag

    a = b.args
    s = b.stack
    t = tag(0, "fdood")
    blob, diff = images.layer("fdood-big", a.wan_big_mb << 20)
    img = with_extra_layer(images.build([], 0), blob, diff)
    images.push(s.client(b.hub_direct, HUB_CREDS), REPO, t, img)
    total = sum(len(x) for x in img.blobs.values())
    helper = f"{HELPER_REPO}:{helper_tag()}"
    d26 = ChrootDockerd(s.root / "d26-bench", insecure=[ADDRESS]).start()
    hub = ShapedHub(s.root, s.hub_registry.root / "data").start()
    try:
        hub.shape(a.wan_conn_mbps, None)
        first = {**b.env, "DOCKER_HOST": s.docker_host}
        lmimage.build(first, helper, lanmirror.__version__)
        lmimage.copy(helper, first, {**b.env, "DOCKER_HOST": d26.host})
        for engine, host in (("Engine 20.10 classic", s.docker_host), ("Engine 26.1 containerd", d26.host)):
            env = {**b.env, "DOCKER_HOST": host}
            label = (f"10f pull: docker outside of docker, {engine}, LAN {a.wan_conn_mbps:g} MB/s per flow, "
                     f"{a.wan_big_mb} MiB layer")
            with Namespace([]) as ns:
                tools = [("docker pull of the LAN copy",
                          [sys.executable, "-c", DOCKER_PULL_PHASES, f"{hub.address}/{REPO}@{img.digest}"]),
                         ("lanmirror (endpoint on the daemon's host)",
                          [*ns.prefix, LANMIRROR, "resolve", "--repo", REPO, "--base-tag", "fdood", "--lan-registry",
                           hub.address, "--insecure-registry", hub.address, "--hub-registry", "127.0.0.1:9",
                           "--no-verify", "--json"])]
                for name, cmd in tools:
                    b.say(f"{label}: {name}")
                    r = b.row(label, name)
                    for _ in range(a.wan_repeat):
                        empty_store(host, keep=helper)  # every job starts from an empty image store
                        run = timed_cpu(cmd, env)
                        r.seconds.append(round(run.seconds, 3))
                        if run.rc != 0:
                            r.note = f"FAILED exit {run.rc}: {run.out.strip().splitlines()[-1][:80] if run.out else ''}"
                            continue
                        r.mbps = round(total / 1e6 / r.median, 1)
                        download = (docker_download_seconds(run.out) if name.startswith("docker")
                                    else pull_download_seconds(run.out))
                        r.note = (f"download {download:.1f} s, extract {max(0.0, run.seconds - download):.1f} s"
                                  if download else "")
                        if name.startswith("lanmirror"):
                            r.note += f"; helper up in {helper_start(run.out)}"
    finally:
        hub.stop()
        d26.stop()


def empty_store(host: str, keep: str) -> None:
    """Every image of the bench's nightly repository gone (the helper image and its base stay)."""
    import docker

    api = docker.APIClient(base_url=host, version="auto")
    for image in api.images():
        names = (image.get("RepoTags") or []) + (image.get("RepoDigests") or [])
        if any(REPO in n for n in names) and not any(n.startswith(keep) for n in names):
            api.remove_image(image["Id"], force=True)


def helper_start(out: str) -> str:
    """The helper's start time, from the attempts of `resolve --json`."""
    import json

    try:
        data = json.loads(out[out.index("{\n"):])
    except ValueError:
        return "?"
    said = [a["result"] for a in data.get("attempts", []) if a.get("source") == "endpoint-on-host"]
    return said[0].rsplit("up in ", 1)[-1] if said else "? (no helper)"
