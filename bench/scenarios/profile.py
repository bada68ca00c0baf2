"""Scenario 11 profile: where lanmirror's CPU goes per GiB copied, by py-spy (sampling every thread
from outside the process, so the copy runs at full speed).

Two copies are profiled: the loopback cold mirror (8 x 128 MiB, one stream per blob) and the kernel
WAN (one 1 GiB layer, 25 MB/s per flow, parallel ranges). Each sample's innermost lanmirror-or-
library frame puts it in one category; a separate run under GNU time gives the CPU seconds per GiB
that the shares are applied to. The rows show seconds of CPU per GiB by category."""

from __future__ import annotations

import collections
import linecache
import os
import shutil
import subprocess
from pathlib import Path

from harness import LANMIRROR, REPO, ROOT, Bench, images, tag, timed_cpu, with_extra_layer
from tests.stack import HUB_CREDS

# What the innermost frame's source line does (C calls such as sha256's update show up as the Python
# line that makes them), then which library the frame is in. First match wins.
BY_LINE: list[tuple[str, tuple[str, ...]]] = [
    ("sha256", (".update(", "hexdigest(", ".copy()")),
    ("socket receive", ("recv_into(", "recv(", ".read1(", "readinto(", "_safe_read(", ".read(")),
    ("socket send", ("sendall(", ".send(")),
    ("buffer copies", ("b\"\".join", "bytes(", "[:", "+= ")),
]
BY_FILE: list[tuple[str, tuple[str, ...]]] = [
    ("thread hand-offs", ("threading.py", "queue.py", "concurrent/futures")),
    ("requests / urllib3 / http.client", ("requests/", "urllib3/", "http/client.py", "socket.py", "ssl.py")),
    ("start-up and imports", ("importlib", "<frozen")),
    ("lanmirror's own code", ("lanmirror/",)),
]


def _line(frame: str) -> str:
    """The source line of a py-spy frame "function (path:line)"."""
    inner = frame[frame.rfind("(") + 1:].rstrip(")")
    path, _, number = inner.rpartition(":")
    return linecache.getline(path, int(number)) if number.isdigit() else ""


RATE = 250  # py-spy samples per second


def categorise(stack: list[str]) -> str:
    """`stack` innermost first: the innermost frame's line, else the innermost frame's library."""
    if stack:
        text = _line(stack[0])
        for name, needles in BY_LINE:
            if any(n in text for n in needles):
                return name
    for frame in stack:
        for name, needles in BY_FILE:
            if any(n in frame for n in needles):
                return name
    return "other"


def profile(cmd: list[str], env: dict[str, str], out: Path, *flags: str) -> tuple[collections.Counter[str],
                                                                                collections.Counter[str]]:
    """Samples by category, and by innermost frame (for the write-up)."""
    spy = shutil.which("py-spy") or str(Path(LANMIRROR).parent / "py-spy")
    subprocess.run([spy, "record", "--format", "raw", "--rate", str(RATE), *flags, "--output", str(out), "--", *cmd],
                   env=env, check=True, capture_output=True)
    counts: collections.Counter[str] = collections.Counter()
    leaves: collections.Counter[str] = collections.Counter()
    for line in out.read_text().splitlines():
        frames, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        stack = list(reversed(frames.split(";")[1:]))  # the first entry is the process / thread name
        counts[categorise(stack)] += int(n)
        if stack:
            leaves[f"{stack[0]}  {_line(stack[0]).strip()[:60]}"] += int(n)
    return counts, leaves


def run(b: Bench) -> None:
    if not (shutil.which("py-spy") or os.access(Path(LANMIRROR).parent / "py-spy", os.X_OK)):
        b.say("profile: py-spy is not installed (./dev bench installs the bench extra); skipped")
        return
    from wan import ShapedHub

    a = b.args
    s = b.stack
    t_cold = tag(0, "prof")
    b.say(f"profile: publishing {a.layers} x {a.layer_mb} MiB and one {a.wan_big_mb} MiB layer ...")
    cold = b.publish([f"prof-{i}" for i in range(a.layers)], a.layer_mb << 20, t_cold)
    t_wan = tag(0, "profwan")
    blob, diff = images.layer("prof-big", a.wan_big_mb << 20)
    big = with_extra_layer(images.build([], 0), blob, diff)
    images.push(s.client(b.hub_direct, HUB_CREDS), REPO, t_wan, big)
    hub = ShapedHub(s.root, s.hub_registry.root / "data").start()
    try:
        hub.shape(a.wan_conn_mbps, None)
        cases = [
            ("11 profile: loopback cold mirror", cold,
             [LANMIRROR, "mirror", "--repo", REPO, "--tag", t_cold, "--source-registry", b.hub_direct,
              "--lan-registry", b.lan_direct, *a.profile_flags.split()]),
            (f"11 profile: kernel WAN {a.wan_conn_mbps:g} MB/s per flow", big,
             [LANMIRROR, "mirror", "--repo", REPO, "--tag", t_wan, "--source-registry", hub.address,
              "--insecure-registry", hub.address, "--lan-registry", b.lan_direct, *a.profile_flags.split()]),
        ]
        for label, img, cmd in cases:
            total = sum(len(x) for x in img.blobs.values())
            s.lan_registry.wipe()
            b.say(f"{label}: CPU under GNU time")
            timed = timed_cpu(cmd, b.env)
            per_gib = timed.cpu / (total / (1 << 30))
            s.lan_registry.wipe()
            b.say(f"{label}: py-spy")
            raw = ROOT / "bench" / "results" / f"profile-{'wan' if 'WAN' in label else 'loopback'}.txt"
            raw.parent.mkdir(parents=True, exist_ok=True)
            counts, leaves = profile(cmd, b.env, raw, *a.profile_spy.split())
            for leaf, n in leaves.most_common(12):
                print(f"    {n:6d}  {leaf}", flush=True)
            samples = sum(counts.values()) or 1
            head = b.row(label, "lanmirror (all)")
            head.seconds = [round(timed.seconds, 3)]
            head.cpu_per_gib = round(per_gib, 2)
            head.note = (f"{'FAILED ' if timed.rc else ''}{total / 1e6 / timed.seconds:.0f} MB/s; kernel "
                         f"{timed.system / (total / (1 << 30)):.2f} s/GiB of it; {samples} samples")
            for name, n in counts.most_common():
                r = b.row(label, f"  {name}"[:24])
                r.cpu_per_gib = round(per_gib * n / samples, 2)
                r.note = f"{n / samples:.0%} of samples: {name}"
    finally:
        hub.stop()
