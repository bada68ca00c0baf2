"""Scenario 1 cold mirror and 3 no-op mirror."""

from __future__ import annotations

import subprocess
import sys

from harness import REPO, ROOT, Bench, tag


def run(b: Bench) -> None:
    a = b.args
    size = a.layer_mb << 20
    b.say(f"building and publishing {a.layers} x {a.layer_mb} MiB ...")
    t0 = tag(0)
    b.publish([f"cold-{i}" for i in range(a.layers)], size, t0)
    tools = b.mirror_tools(t0)
    src, dst = f"{b.hub_direct}/{REPO}:{t0}", f"{b.lan_direct}/{REPO}:{t0}"
    # The floor: bytes piped from one registry to the other by curl, nothing else.
    cold = {**tools, "raw curl GET|PUT pipe": [sys.executable, str(ROOT / "bench" / "baseline" / "raw_pipe.py"),
                                              b.hub_direct, b.lan_direct, REPO, t0],
            # What the resumable chunked upload costs: the same copy with one streamed PUT per blob.
            "lanmirror, one PUT/blob": [*tools["lanmirror"], "--upload-chunk-mb", "0"]}
    for name, cmd in cold.items():
        repeat = a.docker_repeat if name.startswith("docker") else a.repeat
        if not repeat or not b.wanted_tool(name):
            continue

        def fresh(docker: bool = name.startswith("docker")) -> None:
            b.stack.lan_registry.wipe()
            if docker:
                b.forget_local(src, dst)

        b.say(f"cold mirror: {name} x{repeat}")
        b.measure(b.row("1 cold mirror", name), cmd, fresh, repeat)
    # The docker run above re-compressed the layers (another digest): put the Hub's bytes back.
    b.stack.lan_registry.wipe()
    subprocess.run(tools["lanmirror"], env=b.env, check=True, capture_output=True)
    for name in ("lanmirror", "skopeo copy"):
        b.say(f"no-op mirror: {name}")
        b.measure(b.row("3 no-op mirror", name), tools[name], None, a.repeat)
