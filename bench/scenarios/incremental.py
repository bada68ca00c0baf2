"""Scenario 2 incremental nightly."""

from __future__ import annotations

from harness import REPO, Bench, tag
from tests.stack import images


def run(b: Bench) -> None:
    a = b.args
    size = a.layer_mb << 20
    shared = [f"cold-{i}" for i in range(a.layers - 1)]
    t1, t0 = tag(1, "inc"), tag(0, "inc")
    b.say("incremental: publishing yesterday's and today's image ...")
    yesterday = b.publish([*shared, "inc-y"], size, t1)
    today = b.publish([*shared, "inc-t"], size, t0)
    src, dst = f"{b.hub_direct}/{REPO}:{t0}", f"{b.lan_direct}/{REPO}:{t0}"
    new_layer = len(today.blobs[today.layer_digests[-1]])

    lan = b.stack.client(b.lan_direct)
    b.stack.lan_registry.wipe()
    images.push(lan, REPO, t1, yesterday)
    fresh = [d for d in today.blobs if d not in yesterday.blobs]

    def yesterday_on_lan() -> None:
        """Back to 'only yesterday on the LAN': drop today's tag and the blobs only it brought."""
        head = lan.head_manifest(REPO, t0)
        if head is not None:
            lan.delete_manifest(REPO, head.digest)
        for digest in fresh:
            lan.transport.request("DELETE", f"/v2/{REPO}/blobs/{digest}").close()
        b.forget_local(src, dst)

    for name, cmd in b.mirror_tools(t0).items():
        repeat = a.docker_repeat if name.startswith("docker") else a.repeat
        if not repeat:
            continue
        b.say(f"incremental: {name} x{repeat}")
        r = b.row("2 incremental nightly", name)
        b.measure(r, cmd, yesterday_on_lan, repeat)
        r.note = (r.note + f" new layer {new_layer / 1e6:.0f} MB").strip()
