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

Mirror timings go straight to the registries (no Python proxy on the data path, as in real life);
bytes and requests come from the registries' own access logs. Resolve scenarios go through the
fault proxy, which injects the faults and counts requests. Results: a table on stdout, and JSON +
PNG under bench/results/ (ignored by git).
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import datetime as dt
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from tests.stack import HUB_CREDS, Stack, images  # noqa: E402

BIN = Path(sys.executable).parent
LANMIRROR = str(BIN / "lanmirror")
BASH_BASELINE = str(ROOT / "bench" / "baseline" / "original_resolve.sh")
REPO = "bench/sgl-dev"
BASE = "v0.5.5-rocm700-mi30x"
TODAY = dt.datetime.now(dt.timezone.utc).date()
LOG_RE = re.compile(r'"(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[\d.]+" (?P<status>\d+) (?P<bytes>\d+)')


def tag(days_ago: int, base: str = BASE) -> str:
    return f"{base}-{TODAY - dt.timedelta(days=days_ago):%Y%m%d}"


@dataclass
class Row:
    scenario: str
    tool: str
    seconds: list[float] = field(default_factory=list)
    bytes: int | None = None
    requests: int | None = None
    rss_mb: float | None = None
    mbps: float | None = None  # image bytes / median seconds
    of_ceiling: float | None = None  # mbps / the N-flow curl ceiling of the same scenario
    cpu_per_gib: float | None = None  # the command's CPU seconds (user + system) per GiB moved, median run
    note: str = ""

    @property
    def min(self) -> float:
        return min(self.seconds) if self.seconds else float("nan")

    @property
    def median(self) -> float:
        return statistics.median(self.seconds) if self.seconds else float("nan")


@dataclass
class Run:
    seconds: float
    rc: int
    rss_mb: float
    out: str


def timed(cmd: list[str], env: dict[str, str], timeout: float = 900) -> Run:
    """Wall time of one command, with a timeout (for baselines that can hang for minutes)."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)  # the whole group: a hung `docker manifest inspect` holds the pipe open
        out, _ = proc.communicate()
        return Run(time.monotonic() - start, -9, 0.0, out + f"\n[killed after {timeout:g}s]")
    return Run(time.monotonic() - start, proc.returncode, 0.0, out)


def timed_rss(cmd: list[str], env: dict[str, str]) -> Run:
    """Like `timed`, with the command's own peak RSS. Measured by GNU time, which forks the command
    itself: a child forked straight from this (large) process would report our pages as its own."""
    with tempfile.NamedTemporaryFile("r") as rss_file:
        start = time.monotonic()
        proc = subprocess.run(["/usr/bin/time", "-q", "-f", "%M", "-o", rss_file.name, *cmd], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        seconds = time.monotonic() - start
        text = rss_file.read().strip().splitlines()
        rss_kb = float(text[-1]) if text and text[-1].isdigit() else 0.0
        return Run(seconds, proc.returncode, rss_kb / 1024, proc.stdout)


@dataclass
class CpuRun(Run):
    cpu: float = 0.0  # user + system seconds of the command and its children


def timed_cpu(cmd: list[str], env: dict[str, str]) -> CpuRun:
    """Like `timed_rss`, with the command's CPU seconds too (GNU time: %M %U %S)."""
    with tempfile.NamedTemporaryFile("r") as out_file:
        start = time.monotonic()
        proc = subprocess.run(["/usr/bin/time", "-q", "-f", "%M %U %S", "-o", out_file.name, *cmd], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        seconds = time.monotonic() - start
        fields = (out_file.read().strip().splitlines() or ["0 0 0"])[-1].split()
        rss_kb, user, system = (float(f) for f in fields) if len(fields) == 3 else (0.0, 0.0, 0.0)
        return CpuRun(seconds, proc.returncode, rss_kb / 1024, proc.stdout, user + system)


def pull_download_seconds(out: str) -> float | None:
    """From `resolve --json`: the pulled attempt's download phase."""
    try:
        start = out.index("{\n")
        data = json.loads(out[start:])
    except ValueError:
        return None
    pulled = [a for a in data.get("attempts", []) if str(a.get("result", "")).startswith("pulled")]
    return pulled[-1].get("download_seconds") if pulled else None


# docker pull through docker-py, printing when the last layer finished downloading: the same
# phases the daemon reports to `docker pull`.
DOCKER_PULL_PHASES = """
import os, sys, time, docker
api = docker.APIClient(base_url=os.environ["DOCKER_HOST"], version="auto")
start, done = time.monotonic(), None
for msg in api.pull(sys.argv[1], stream=True, decode=True):
    if msg.get("error"):
        sys.exit(msg["error"])
    if msg.get("status") in ("Download complete", "Verifying Checksum"):
        done = time.monotonic()
print(f"download_seconds={done - start if done else 0:.3f}")
"""


def docker_download_seconds(out: str) -> float | None:
    match = re.search(r"download_seconds=([\d.]+)", out)
    return float(match.group(1)) if match and float(match.group(1)) > 0 else None


class AccessLog:
    """Requests and bytes served, read from a registry's access log since `mark()`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def mark(self) -> None:
        self.offset = self.path.stat().st_size

    def since(self) -> tuple[int, int]:
        with open(self.path, encoding="utf-8", errors="replace") as fh:
            fh.seek(self.offset)
            lines = [m for m in map(LOG_RE.search, fh) if m]
        blob_bytes = sum(int(m["bytes"]) for m in lines if m["method"] == "GET" and "/blobs/" in m["path"])
        return len(lines), blob_bytes


def _with_extra_layer(img: images.Image, blob: bytes, diff_id: str) -> images.Image:
    """`img` with one more layer appended (the WAN scenario's big layer)."""
    from lanmirror.remote.registry import DOCKER_MANIFEST, Manifest, sha256_digest

    manifest = json.loads(img.manifest.body)
    config = json.loads(img.blobs[manifest["config"]["digest"]])
    config["rootfs"]["diff_ids"].append(diff_id)
    config_bytes = json.dumps(config, sort_keys=True).encode()
    blobs = {d: b for d, b in img.blobs.items() if d != manifest["config"]["digest"]}
    blobs[sha256_digest(blob)] = blob
    blobs[sha256_digest(config_bytes)] = config_bytes
    manifest["config"].update(size=len(config_bytes), digest=sha256_digest(config_bytes))
    manifest["layers"].append({"mediaType": images.LAYER_TYPE, "size": len(blob), "digest": sha256_digest(blob)})
    body = json.dumps(manifest, indent=3).encode()
    return images.Image(Manifest(body, DOCKER_MANIFEST, sha256_digest(body)), blobs)


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.rows: list[Row] = []
        from wan import ADDRESS

        self.stack = Stack.create(insecure=[ADDRESS], with_engine26=False).start()
        self.env = {**self.stack.env(), "DOCKER_CONFIG": str(self.stack.root / "docker-config")}
        Path(self.env["DOCKER_CONFIG"]).mkdir(exist_ok=True)
        self.hub_direct = self.stack.hub_registry.address
        self.lan_direct = self.stack.lan_registry.address
        self.hub_log = AccessLog(self.stack.hub_registry.log)
        self.lan_log = AccessLog(self.stack.lan_registry.log)

    def close(self) -> None:
        self.stack.stop()

    def say(self, msg: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)

    def row(self, scenario: str, tool: str) -> Row:
        r = Row(scenario, tool)
        self.rows.append(r)
        return r

    # -- setup helpers ------------------------------------------------------------------------

    def publish(self, seeds: list[str], size: int, tag_: str, repo: str = REPO, lan: bool = False) -> images.Image:
        img = images.build(seeds, size)
        images.push(self.stack.client(self.hub_direct, HUB_CREDS), repo, tag_, img)
        if lan:
            images.push(self.stack.client(self.lan_direct), repo, tag_, img)
        return img

    def docker(self, *args: str) -> None:
        subprocess.run(["docker", *args], env=self.env, check=False, capture_output=True)

    def forget_local(self, *refs: str) -> None:
        for ref in refs:
            self.docker("rmi", "-f", ref)
        self.docker("image", "prune", "-f")

    def mirror_tools(self, tag_: str, source: str | None = None) -> dict[str, list[str]]:
        """The same copy by each tool, from `source` (default: the Hub registry itself) to the LAN."""
        source = source or self.hub_direct
        src, dst = f"{source}/{REPO}:{tag_}", f"{self.lan_direct}/{REPO}:{tag_}"
        return {
            "lanmirror": [LANMIRROR, "mirror", "--repo", REPO, "--tag", tag_, "--source-registry", source,
                          "--lan-registry", self.lan_direct],
            "skopeo copy": ["skopeo", "copy", "-q", "--src-tls-verify=false", "--dest-tls-verify=false",
                            f"docker://{src}", f"docker://{dst}"],
            "docker pull+tag+push": ["bash", "-c", f"docker pull -q {src} >/dev/null && docker tag {src} {dst} && "
                                                   f"docker push -q {dst} >/dev/null"],
        }

    def wanted_tool(self, name: str) -> bool:
        return not self.args.tools or any(name.startswith(t) for t in self.args.tools.split(","))

    def measure(self, row: Row, cmd: list[str], before=None, repeat: int = 1) -> None:
        cpus: list[float] = []
        for _ in range(repeat):
            if before:
                before()
            self.hub_log.mark()
            self.lan_log.mark()
            run = timed_cpu(cmd, self.env)
            if run.rc != 0:
                row.note = f"exit {run.rc}: {run.out.strip().splitlines()[-1][:120] if run.out.strip() else ''}"
            row.seconds.append(round(run.seconds, 3))
            hub_reqs, hub_bytes = self.hub_log.since()
            lan_reqs, _ = self.lan_log.since()
            row.bytes, row.requests = hub_bytes, hub_reqs + lan_reqs
            if hub_bytes:
                cpus.append(run.cpu / (hub_bytes / (1 << 30)))
            row.rss_mb = max(row.rss_mb or 0.0, round(run.rss_mb, 1))
        if cpus:
            row.cpu_per_gib = round(statistics.median(cpus), 2)

    # -- scenarios ------------------------------------------------------------------------------

    def cold_and_noop(self) -> None:
        a = self.args
        size = a.layer_mb << 20
        self.say(f"building and publishing {a.layers} x {a.layer_mb} MiB ...")
        t0 = tag(0)
        self.publish([f"cold-{i}" for i in range(a.layers)], size, t0)
        tools = self.mirror_tools(t0)
        src, dst = f"{self.hub_direct}/{REPO}:{t0}", f"{self.lan_direct}/{REPO}:{t0}"
        # The floor: bytes piped from one registry to the other by curl, nothing else.
        cold = {**tools, "raw curl GET|PUT pipe": [sys.executable, str(ROOT / "bench" / "baseline" / "raw_pipe.py"),
                                                  self.hub_direct, self.lan_direct, REPO, t0],
                # What the resumable chunked upload costs: the same copy with one streamed PUT per blob.
                "lanmirror, one PUT/blob": [*tools["lanmirror"], "--upload-chunk-mb", "0"]}
        for name, cmd in cold.items():
            repeat = a.docker_repeat if name.startswith("docker") else a.repeat
            if not repeat or not self.wanted_tool(name):
                continue

            def fresh(docker: bool = name.startswith("docker")) -> None:
                self.stack.lan_registry.wipe()
                if docker:
                    self.forget_local(src, dst)

            self.say(f"cold mirror: {name} x{repeat}")
            self.measure(self.row("1 cold mirror", name), cmd, fresh, repeat)
        # The docker run above re-compressed the layers (another digest): put the Hub's bytes back.
        self.stack.lan_registry.wipe()
        subprocess.run(tools["lanmirror"], env=self.env, check=True, capture_output=True)
        for name in ("lanmirror", "skopeo copy"):
            self.say(f"no-op mirror: {name}")
            self.measure(self.row("3 no-op mirror", name), tools[name], None, a.repeat)

    def fanout(self) -> None:
        """One mirror into three LAN registries against three single-target mirrors: Hub bytes and time."""
        a = self.args
        size = a.layer_mb << 20
        t0 = tag(0, "fan")
        self.say(f"fan-out: publishing {a.layers} x {a.layer_mb} MiB ...")
        image = self.publish([f"fan-{i}" for i in range(a.layers)], size, t0)
        image_bytes = sum(len(b) for b in image.blobs.values())
        s = self.stack
        targets = [s.lan_registry, s.lan2_registry, s.lan3_registry]
        base = [LANMIRROR, "mirror", "--repo", REPO, "--tag", t0, "--source-registry", self.hub_direct]

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
            for where, source, log in (("loopback Hub", self.hub_direct, self.hub_log),
                                       (f"kernel WAN {a.wan_conn_mbps:g} MB/s per flow", hub.address,
                                        AccessLog(hub.log))):
                for name, cmds in runs.items():
                    row = self.row(f"8 fan-out to 3 LANs, {where}", name)
                    for _ in range(a.repeat):
                        wipe()
                        log.mark()
                        started = time.monotonic()
                        for cmd in cmds:
                            cmd = [source if c == self.hub_direct else c for c in cmd] + \
                                (["--insecure-registry", hub.address] if source == hub.address else [])
                            run = timed(cmd, self.env)
                            if run.rc != 0:
                                row.note = f"exit {run.rc}"
                        row.seconds.append(round(time.monotonic() - started, 3))
                        row.requests, row.bytes = log.since()
                    row.mbps = round(image_bytes / 1e6 / row.median, 1)
                    row.note = (row.note + "; " if row.note else "") + \
                        f"Hub bytes {row.bytes / image_bytes:.2f}x the image"
                    self.say(f"fan-out ({where}): {name}")
        finally:
            hub.stop()
        wipe()

    def replicas(self) -> None:
        """R = 1, 2, 4 LAN replicas, each in its own network namespace with its egress capped by the
        kernel, and 16 readers spread over them by rendezvous hashing, reading one nightly's blobs
        with lanmirror's registry client (one daemon would coalesce identical pulls)."""
        from lanmirror.cmd.wiring import Clients
        from lanmirror.ops.resolve.spread import rendezvous

        sys.path.insert(0, str(ROOT / "bench"))
        from netns import NetnsRegistry

        a = self.args
        readers, cap = 16, a.replica_mbit
        img = images.build([f"rep-{i}" for i in range(4)], a.replica_layer_mb << 20)
        t0 = tag(0, "rep")
        image_bytes = sum(len(b) for b in img.blobs.values())
        for count in (1, 2, 4):
            self.say(f"replicas: {count} x {cap} Mbit/s egress, {readers} readers of {image_bytes >> 20} MiB")
            regs = [NetnsRegistry(self.stack.root / "replicas", i + 1, cap).start() for i in range(count)]
            try:
                with Clients(insecure=["10.210.0.0/16"], daemon=False) as clients:
                    for reg in regs:
                        images.push(clients.registry(reg.address), REPO, t0, img)

                    addresses = [r.address for r in regs]

                    def read(n: int, addresses: list[str] = addresses) -> str:
                        address = rendezvous(f"runner-{n:02d}", addresses)[0]
                        registry = clients.registry(address)
                        for digest in img.blobs:
                            registry.read_blob(REPO, digest)
                        return address

                    started = time.monotonic()
                    with cf.ThreadPoolExecutor(readers) as pool:
                        chosen = list(pool.map(read, range(readers)))
                    seconds = time.monotonic() - started
                row = self.row(f"9 replicas: {readers} readers, {cap} Mbit/s each", f"lanmirror, R={count}")
                row.seconds = [round(seconds, 3)]
                row.bytes = readers * image_bytes
                split = sorted(chosen.count(r.address) for r in regs)
                row.note = f"{readers * image_bytes / seconds / 1e6:.0f} MB/s in all; readers per replica {split}"
            finally:
                for reg in regs:
                    reg.stop()

    def incremental(self) -> None:
        a = self.args
        size = a.layer_mb << 20
        shared = [f"cold-{i}" for i in range(a.layers - 1)]
        t1, t0 = tag(1, "inc"), tag(0, "inc")
        self.say("incremental: publishing yesterday's and today's image ...")
        yesterday = self.publish([*shared, "inc-y"], size, t1)
        today = self.publish([*shared, "inc-t"], size, t0)
        src, dst = f"{self.hub_direct}/{REPO}:{t0}", f"{self.lan_direct}/{REPO}:{t0}"
        new_layer = len(today.blobs[today.layer_digests[-1]])

        lan = self.stack.client(self.lan_direct)
        self.stack.lan_registry.wipe()
        images.push(lan, REPO, t1, yesterday)
        fresh = [d for d in today.blobs if d not in yesterday.blobs]

        def yesterday_on_lan() -> None:
            """Back to 'only yesterday on the LAN': drop today's tag and the blobs only it brought."""
            head = lan.head_manifest(REPO, t0)
            if head is not None:
                lan.delete_manifest(REPO, head.digest)
            for digest in fresh:
                lan.transport.request("DELETE", f"/v2/{REPO}/blobs/{digest}").close()
            self.forget_local(src, dst)

        for name, cmd in self.mirror_tools(t0).items():
            repeat = a.docker_repeat if name.startswith("docker") else a.repeat
            if not repeat:
                continue
            self.say(f"incremental: {name} x{repeat}")
            r = self.row("2 incremental nightly", name)
            self.measure(r, cmd, yesterday_on_lan, repeat)
            r.note = (r.note + f" new layer {new_layer / 1e6:.0f} MB").strip()

    def resolve(self) -> None:
        a = self.args
        s = self.stack
        self.say("resolve: publishing a small nightly ...")
        days = 2
        t = tag(days)
        img = images.build([f"res-{i}" for i in range(4)], a.resolve_mb << 20)
        images.push(s.client(self.hub_direct, HUB_CREDS), REPO, t, img)
        images.push(s.client(self.lan_direct), REPO, t, img)
        canonical = f"{s.hub}/{REPO}:{t}"
        lm = [LANMIRROR, "resolve", "--repo", REPO, "--base-tag", BASE, "--hub-registry", s.hub,
              "--lan-registry", s.lan]
        bash_env = {**self.env, "REPO": REPO, "LOCAL_DOCKER_REGISTRY": s.lan, "HUB": s.hub}

        def clean() -> None:
            # Every nightly of REPO this host holds: the mirror scenarios' docker pull+tag+push leaves
            # today's under the canonical name, and a cached newer tag would turn every row into a hit.
            listed = subprocess.run(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}"], env=self.env,
                                    capture_output=True, text=True, check=False).stdout.split()
            names = {f"{host}/{REPO}" for host in (s.hub, s.lan, self.hub_direct, self.lan_direct)}
            held = [r for r in listed if r.rsplit(":", 1)[0] in names]
            self.forget_local(canonical, f"{s.lan}/{REPO}:{t}", f"{s.lan}/{REPO}@{img.digest}",
                              f"{s.hub}/{REPO}@{img.digest}", *held)
            s.clear_faults()

        def proxied(row: Row, cmd: list[str], env: dict[str, str], before=None, repeat: int = a.repeat,
                    timeout: float = 900) -> None:
            for _ in range(repeat):
                if before:
                    before()
                run = timed(cmd, env, timeout)
                row.seconds.append(round(run.seconds, 3))
                last = run.out.strip().splitlines()[-1] if run.out.strip() else ""
                row.note = f"→ {last[-60:]}" if run.rc == 0 else f"exit {run.rc}: {last[-80:]}"
                row.requests = sum(len(p.entries()) for p in (s.hub_proxy, s.lan_proxy))
                row.bytes = s.hub_proxy.bytes_out() + s.lan_proxy.bytes_out()
                hub_gets = s.hub_proxy.counted_gets()
                row.note += f"; counted Hub GETs {hub_gets}"

        # a. cache hit: pull once, then resolve from the cache
        clean()
        self.docker("pull", "-q", f"{s.lan}/{REPO}:{t}")
        self.docker("tag", f"{s.lan}/{REPO}:{t}", canonical)
        self.say("resolve: cache hit")
        proxied(self.row("4a resolve: cache hit", "lanmirror"), lm, self.env, s.clear_faults)
        proxied(self.row("4a resolve: cache hit", "original bash"), ["bash", BASH_BASELINE, BASE], bash_env,
                s.clear_faults)
        # b. LAN hit with pull, and the bare docker pull it performs
        self.say("resolve: LAN hit with pull")
        proxied(self.row("4b resolve: LAN hit + pull", "lanmirror"), lm, self.env, clean)
        proxied(self.row("4b resolve: LAN hit + pull", "original bash"), ["bash", BASH_BASELINE, BASE], bash_env, clean)
        proxied(self.row("4b resolve: LAN hit + pull", "bare docker pull"),
                ["docker", "pull", "-q", f"{s.lan}/{REPO}@{img.digest}"], self.env, clean)
        # c/d. LAN refused / black-holed → Hub (decision only)
        for fault, label in (("refuse", "4c resolve: LAN refused → Hub"),
                             ("blackhole", "4d resolve: LAN black-holed → Hub")):
            def broken(f: str = fault) -> None:
                clean()
                s.lan_proxy.mode = f

            self.say(f"resolve: {label}")
            proxied(self.row(label, "lanmirror"), [*lm, "--no-pull", "--no-daemon-probe"], self.env, broken)
            proxied(self.row(label, "original bash"), ["bash", BASH_BASELINE, BASE], {**bash_env, "FIND_ONLY": "1"},
                    broken, repeat=1 if fault == "blackhole" else a.repeat, timeout=a.bash_cap)
        # f/g. A LAN that is alive but slow, and one that stalls after 1 MiB: the throughput floor hands
        # the pull to the Hub after its window (defaults: 5 MB/s over 30 s); the original has no bound.
        def paced() -> None:
            clean()
            s.lan_proxy.conn_rate = 200_000

        def stalls() -> None:
            clean()
            s.lan_proxy.break_body("stall", after=1 << 20, count=100)

        for label, before in (("4f resolve: LAN alive at 200 KB/s per conn", paced),
                              ("4g resolve: LAN stalls after 1 MiB", stalls)):
            self.say(f"resolve: {label}")
            proxied(self.row(label, "lanmirror"), lm, self.env, before, repeat=1)
            proxied(self.row(label, "original bash"), ["bash", BASH_BASELINE, BASE], bash_env, before, repeat=1,
                    timeout=a.bash_cap)
        # e. Hub 429 with Retry-After: 1, twice (no LAN)
        def throttled() -> None:
            clean()
            s.hub_proxy.fail(429, 2, path="/manifests/", headers={"Retry-After": "1"})

        self.say("resolve: Hub 429 x2")
        label = "4e resolve: Hub 429 (Retry-After 1) x2"
        lm_hub = [LANMIRROR, "resolve", "--repo", REPO, "--base-tag", BASE, "--hub-registry", s.hub, "--no-pull"]
        proxied(self.row(label, "lanmirror"), lm_hub, {k: v for k, v in self.env.items()}, throttled)
        proxied(self.row(label, "original bash"), ["bash", BASH_BASELINE, BASE],
                {**bash_env, "LOCAL_DOCKER_REGISTRY": "127.0.0.1:9", "FIND_ONLY": "1"}, throttled)
        clean()

    def fleet(self) -> None:
        """N resolvers at once against one LAN registry. They run as threads of this process, each
        with its own sessions and daemon client: N Python interpreters on a 2-core machine would
        measure interpreter start-up and CPU starvation, not the registry."""
        from lanmirror.cmd.wiring import Clients
        from lanmirror.ops.resolve import ResolveOptions, resolve

        s = self.stack
        n = self.args.fleet
        self.say(f"fleet: {n} concurrent resolvers")
        t = tag(2)
        if s.client(self.lan_direct).head_manifest(REPO, t) is None:  # when run without the resolve scenario
            img = images.build([f"res-{i}" for i in range(4)], self.args.resolve_mb << 20)
            images.push(s.client(self.hub_direct, HUB_CREDS), REPO, t, img)
            images.push(s.client(self.lan_direct), REPO, t, img)
        s.clear_faults()

        def one(_: int) -> tuple[float, str]:
            start = time.monotonic()
            res = resolve(ResolveOptions(repo=REPO, base_tags=[BASE], lan_registries=[s.lan], hub_registry=s.hub,
                                         pull=False), Clients(docker_host=s.docker_host), on_event=lambda _m: None)
            return time.monotonic() - start, f"{res.image}@{res.digest}"

        with cf.ThreadPoolExecutor(n) as pool:
            runs = list(pool.map(one, range(n)))
        r = self.row(f"5 fleet: {n} concurrent resolvers", "lanmirror")
        lat = sorted(sec for sec, _ in runs)
        r.seconds = [round(x, 3) for x in lat]
        p95 = lat[max(0, round(0.95 * len(lat)) - 1)]
        r.requests = len(s.lan_proxy.entries()) + len(s.hub_proxy.entries())
        r.note = (f"p50 {statistics.median(lat):.2f}s p95 {p95:.2f}s; {len({img for _, img in runs})} distinct "
                  f"image(s); LAN {len(s.lan_proxy.entries())} req, Hub {len(s.hub_proxy.entries())} req, "
                  f"counted Hub GETs {s.hub_proxy.counted_gets()}")

    def wan(self) -> None:
        """The WAN, shaped by the kernel: the Hub's storage served by Distribution in a network
        namespace, every TCP flow of its replies capped by htb (bench/wan.py), nothing in Python on
        the data path. One image of one big layer. Each scenario first measures its ceiling in the
        same run: one curl stream, and N parallel curl ranges of the same blob; every tool is then
        reported as a fraction of the N-flow ceiling."""
        from wan import ShapedHub

        a = self.args
        s = self.stack
        t = tag(0, "kwan")
        size = a.wan_big_mb << 20
        self.say(f"kernel WAN: publishing one {a.wan_big_mb} MiB layer ...")
        blob, diff = images.layer("kwan-big", size)
        img = _with_extra_layer(images.build([], 0), blob, diff)
        images.push(s.client(self.hub_direct, HUB_CREDS), REPO, t, img)
        total = sum(len(b) for b in img.blobs.values())
        digest = img.layer_digests[-1]
        hub = ShapedHub(s.root, s.hub_registry.root / "data").start()
        hub_log = AccessLog(hub.log)
        blob_url = f"http://{hub.address}/v2/{REPO}/blobs/{digest}"
        dst = f"{self.lan_direct}/{REPO}:{t}"
        tools = {**self.mirror_tools(t, source=hub.address)}
        tools["lanmirror"] += ["--insecure-registry", hub.address]

        def curl(n: int) -> list[str]:
            part = -(-len(blob) // n)
            ranges = [(i * part, min(len(blob), (i + 1) * part) - 1) for i in range(n)]
            return ["bash", "-c", " & ".join(f"curl -sf -o /dev/null -r {lo}-{hi} {blob_url}" for lo, hi in ranges)
                    + " & wait"]

        scenarios = [(f"7a kernel WAN: {a.wan_conn_mbps:g} MB/s per flow", a.wan_conn_mbps, None, None),
                     (f"7b kernel WAN: {a.wan_conn_mbps:g} MB/s per flow, {a.wan_link_mbps:g} MB/s link",
                      a.wan_conn_mbps, a.wan_link_mbps, None),
                     (f"7c kernel WAN: {a.wan_fast_mbps:g} MB/s per flow", a.wan_fast_mbps, None, None),
                     (f"7d kernel WAN: {a.wan_conn_mbps:g} MB/s per flow, reset at 80%", a.wan_conn_mbps, None, 0.8)]
        try:
            for label, flow, link, reset_at in scenarios:
                hub.shape(flow, link)
                ceiling: float | None = None
                runs: list[tuple[str, list[str]]] = []
                if reset_at is None:
                    runs += [("curl, 1 stream", curl(1)), (f"curl, {a.ceiling_flows} ranges (ceiling)",
                                                           curl(a.ceiling_flows))]
                runs += [(name, cmd) for name, cmd in tools.items()
                         if self.wanted_tool(name) and (a.wan_docker or not name.startswith("docker"))]
                for name, cmd in runs:
                    self.say(f"{label}: {name} x{a.wan_repeat}")
                    r = self.row(label, name)
                    for _ in range(a.wan_repeat):
                        if not name.startswith("curl"):
                            s.lan_registry.wipe()
                            self.forget_local(f"{hub.address}/{REPO}:{t}", dst)
                        hub_log.mark()
                        watcher = hub.reset_after(int(len(blob) * reset_at)) if reset_at else None
                        run = timed_cpu(cmd, self.env)
                        if watcher is not None:
                            watcher.set()
                        r.seconds.append(round(run.seconds, 3))
                        r.cpu_per_gib = round(run.cpu / (total / (1 << 30)), 2)
                        r.rss_mb = max(r.rss_mb or 0.0, round(run.rss_mb, 1))
                        r.requests, r.bytes = hub_log.since()
                        ok = run.rc == 0 and (name.startswith("curl") or
                                              s.client(self.lan_direct).head_manifest(REPO, t) is not None)
                        if not ok:
                            r.note = f"FAILED exit {run.rc}: {run.out.strip().splitlines()[-1][:80] if run.out else ''}"
                    moved = len(blob) if name.startswith("curl") else total
                    r.mbps = round(moved / 1e6 / r.median, 1)
                    if "(ceiling)" in name:
                        ceiling = r.mbps
                    if ceiling:
                        r.of_ceiling = round(r.mbps / ceiling, 3)
                    if reset_at and r.bytes is not None:
                        r.note = (r.note + " " if r.note else "") + f"re-read {max(0, r.bytes - total) / 1e6:.1f} MB"
        finally:
            hub.stop()

    def fastpull(self) -> None:
        """10. The job's pull, the hot path: an empty image store pulls the nightly. The download and
        extraction phases are reported apart (the daemon downloads a layer whole before extracting it,
        and extraction on these two cores is a fixed cost no transport changes).
          a. kernel WAN, 25 MB/s per flow, one 1 GiB layer: curl 1 stream and N ranges (the ceiling),
             docker pull, lanmirror resolve --pull-via daemon (today), lanmirror resolve (the endpoint)
          b. loopback LAN, the same image: --pull-via daemon against the endpoint (auto)
          c. R LAN replicas in network namespaces, each capped at --replica-mbit: the endpoint reading
             from all of them against the endpoint reading from one"""
        from netns import NetnsRegistry
        from wan import ShapedHub

        from lanmirror.cmd.wiring import Clients

        a = self.args
        s = self.stack
        t = tag(0, "fpull")
        blob, diff = images.layer("fpull-big", a.wan_big_mb << 20)
        img = _with_extra_layer(images.build([], 0), blob, diff)
        images.push(s.client(self.hub_direct, HUB_CREDS), REPO, t, img)
        total = sum(len(b) for b in img.blobs.values())
        digest = img.layer_digests[-1]

        def resolve(hub: str, *extra: str) -> list[str]:
            return [LANMIRROR, "resolve", "--repo", REPO, "--base-tag", "fpull", "--hub-registry", hub, "--json",
                    "--insecure-registry", hub, "--no-verify", *extra]

        def measure(label: str, name: str, cmd: list[str], ref: str, ceiling: float | None = None) -> Row:
            r = self.row(label, name)
            for _ in range(a.wan_repeat):
                self.forget_local(ref)
                self.docker("image", "prune", "-af")  # every job starts from an empty image store
                run = timed_cpu(cmd, self.env)
                r.seconds.append(round(run.seconds, 3))
                r.rss_mb = max(r.rss_mb or 0.0, round(run.rss_mb, 1))
                download = pull_download_seconds(run.out) if name.startswith("lanmirror") else None
                if name == "docker pull":
                    download = docker_download_seconds(run.out)
                if run.rc != 0:
                    r.note = f"FAILED exit {run.rc}: {run.out.strip().splitlines()[-1][:80] if run.out else ''}"
                    continue
                moved = len(blob) if name.startswith("curl") else total
                r.mbps = round(moved / 1e6 / r.median, 1)
                if download:
                    r.note = (f"download {download:.1f} s ({moved / 1e6 / download:.0f} MB/s"
                              + (f", {moved / 1e6 / download / ceiling:.0%} of the ceiling" if ceiling else "")
                              + f"), extract {max(0.0, run.seconds - download):.1f} s")
                if name.startswith("lanmirror"):
                    r.note += f"; CPU {run.cpu / (total / 2**30):.1f} s/GiB"
            return r

        hub = ShapedHub(s.root, s.hub_registry.root / "data").start()
        try:
            hub.shape(a.wan_conn_mbps, None)
            label = f"10a pull: kernel WAN {a.wan_conn_mbps:g} MB/s per flow, {a.wan_big_mb} MiB layer"
            blob_url = f"http://{hub.address}/v2/{REPO}/blobs/{digest}"
            ceiling: float | None = None
            for n in (1, a.ceiling_flows):
                part = -(-len(blob) // n)
                spans = [(i * part, min(len(blob), (i + 1) * part) - 1) for i in range(n)]
                cmd = ["bash", "-c", " & ".join(f"curl -sf -o /dev/null -r {lo}-{hi} {blob_url}" for lo, hi in spans)
                       + " & wait"]
                self.say(f"{label}: curl x{n}")
                row = measure(label, f"curl, {n} stream(s)" + (" (ceiling)" if n > 1 else ""), cmd, "none")
                ceiling = row.mbps if n > 1 else ceiling
            ref = f"{hub.address}/{REPO}:{t}"
            tools = [("docker pull", [sys.executable, "-c", DOCKER_PULL_PHASES, f"{hub.address}/{REPO}@{img.digest}"]),
                     ("lanmirror, --pull-via daemon", resolve(hub.address, "--pull-via", "daemon")),
                     ("lanmirror (endpoint)", resolve(hub.address))]
            for name, cmd in tools:
                self.say(f"{label}: {name}")
                measure(label, name, cmd, ref, ceiling)
        finally:
            hub.stop()

        # b. loopback LAN
        label = f"10b pull: loopback LAN, {a.wan_big_mb} MiB layer"
        subprocess.run([LANMIRROR, "mirror", "--repo", REPO, "--tag", t, "--source-registry", self.hub_direct,
                        "--lan-registry", self.lan_direct], env=self.env, check=True, capture_output=True)
        ref = f"{self.hub_direct}/{REPO}:{t}"
        for name, extra in (("lanmirror, --pull-via daemon", ["--pull-via", "daemon"]),
                            ("lanmirror (auto)", [])):
            self.say(f"{label}: {name}")
            measure(label, name, resolve(self.hub_direct, "--lan-registry", self.lan_direct, *extra), ref)

        # c. replicas; d. 16 runners at once over the same 4 replicas
        label = f"10c pull: LAN replicas, {a.replica_mbit} Mbit/s each, {a.wan_big_mb} MiB layer"
        regs = [NetnsRegistry(s.root / "fast-replicas", i + 1, a.replica_mbit).start() for i in range(4)]
        try:
            with Clients(insecure=["10.210.0.0/16"], daemon=False) as clients:
                for reg in regs:
                    images.push(clients.registry(reg.address), REPO, t, img)
            for count in (1, 4):
                lans = [x for reg in regs[:count] for x in ("--lan-registry", reg.address)]
                cmd = resolve(self.hub_direct, *lans, "--insecure-registry", "10.210.0.0/16", "--pull-via", "ranges")
                self.say(f"{label}: {count} replica(s)")
                measure(label, f"lanmirror, {count} replica(s)", cmd, ref)
            self.concurrent_readers(regs)
        finally:
            for reg in regs:
                reg.stop()
        self.big_image_on_the_endpoint()

    def concurrent_readers(self, regs: list) -> None:
        """10d. 16 runners at once over 4 replicas. One machine has one daemon, so each runner is
        the endpoint's reader (BlobSources) reading the nightly's blobs, as scenario 9's readers
        are: each from its rendezvous replica alone (today's spread), against each from every
        replica (its rendezvous replica first). p50 and p95 of the runners' times."""
        from lanmirror.cmd.wiring import Clients
        from lanmirror.ops.resolve.spread import rendezvous
        from lanmirror.retry import RetryPolicy
        from lanmirror.serve import BlobSources, Source

        a = self.args
        readers = 16
        img = images.build([f"fp-rep-{i}" for i in range(4)], 96 << 20)  # over the 64 MiB range threshold
        t0 = tag(0, "fprep")
        label = f"10d pull: {readers} runners over 4 replicas, {a.replica_mbit} Mbit/s each"
        with Clients(insecure=["10.210.0.0/16"], daemon=False) as clients:
            for reg in regs:
                images.push(clients.registry(reg.address), REPO, t0, img)
            addresses = [r.address for r in regs]
            for mode in ("rendezvous replica only (today)", "every replica (endpoint)"):
                def read(n: int, mode: str = mode) -> float:
                    order = rendezvous(f"runner-{n:02d}", addresses)
                    chosen = order if mode.startswith("every") else order[:1]
                    feed = BlobSources([Source("lan", clients.registry(r), REPO) for r in chosen],
                                       RetryPolicy(attempts=3, base=0.1, cap=0.5))
                    started = time.monotonic()
                    for digest, blob in img.blobs.items():
                        for _ in feed.read(digest, len(blob)):
                            pass
                    return time.monotonic() - started

                self.say(f"{label}: {mode}")
                with cf.ThreadPoolExecutor(readers) as pool:
                    times = sorted(pool.map(read, range(readers)))
                row = self.row(label, mode)
                row.seconds = [round(x, 3) for x in times]
                p95 = times[min(len(times) - 1, int(0.95 * len(times)))]
                row.note = f"p50 {statistics.median(times):.2f} s, p95 {p95:.2f} s, max {times[-1]:.2f} s"

    def big_image_on_the_endpoint(self) -> None:
        """10e. Peak RSS and CPU per GiB of the endpoint path for a 4 GB image (8 x 512 MiB) from the
        kernel WAN (25 MB/s per flow)."""
        from wan import ShapedHub

        a = self.args
        s = self.stack
        t = tag(0, "fpbig")
        img = images.build([f"fpbig-{i}" for i in range(8)], 512 << 20)
        images.push(s.client(self.hub_direct, HUB_CREDS), REPO, t, img)
        total = sum(len(b) for b in img.blobs.values())
        label = "10e pull: 4 GB image (8 x 512 MiB), kernel WAN 25 MB/s per flow"
        hub = ShapedHub(s.root, s.hub_registry.root / "data").start()
        try:
            hub.shape(a.wan_conn_mbps, None)
            self.forget_local(f"{hub.address}/{REPO}:{t}")
            self.docker("image", "prune", "-af")
            cmd = [LANMIRROR, "resolve", "--repo", REPO, "--base-tag", "fpbig", "--hub-registry", hub.address, "--json",
                   "--insecure-registry", hub.address, "--no-verify"]
            self.say(label)
            run = timed_cpu(cmd, self.env)
            r = self.row(label, "lanmirror (endpoint)")
            r.seconds = [round(run.seconds, 3)]
            r.rss_mb = round(run.rss_mb, 1)
            r.mbps = round(total / 1e6 / run.seconds, 1)
            download = pull_download_seconds(run.out)
            r.note = (f"{'FAILED ' if run.rc else ''}CPU {run.cpu / (total / 2**30):.1f} s/GiB"
                      + (f", download {download:.1f} s ({total / 1e6 / download:.0f} MB/s)" if download else ""))
            self.docker("image", "prune", "-af")
        finally:
            hub.stop()

    def wan_proxy(self) -> None:
        """Labelled as what it is: the Python fault proxy as the WAN (it tops out near 100 MB/s),
        kept only for what the kernel cannot do here: added latency and a 307 to a CDN host."""
        from tests.stack import FaultProxy

        a = self.args
        s = self.stack
        t = tag(0, "wanp")
        self.say("proxy WAN: publishing 4 x 16 MiB + one 64 MiB layer ...")
        img = images.build(["wanp-small-0", "wanp-small-1", "wanp-small-2", "wanp-small-3"], 16 << 20)
        big_blob, big_diff = images.layer("wanp-big", 64 << 20)
        img = _with_extra_layer(img, big_blob, big_diff)
        images.push(s.client(self.hub_direct, HUB_CREDS), REPO, t, img)
        total = sum(len(b) for b in img.blobs.values())
        cdn = FaultProxy(self.hub_direct, "cdn").start()
        src, dst = f"{s.hub}/{REPO}:{t}", f"{self.lan_direct}/{REPO}:{t}"
        label = f"7p proxy WAN (Python): {a.wan_rtt_ms:g} ms + 307 to a CDN"
        try:
            for name, cmd in self.mirror_tools(t, source=s.hub).items():
                if (name.startswith("docker") and not a.wan_docker) or not self.wanted_tool(name):
                    continue
                self.say(f"{label}: {name}")
                r = self.row(label, name)
                s.lan_registry.wipe()
                s.clear_faults()
                cdn.clear()
                self.forget_local(src, dst)
                for p in (s.hub_proxy, cdn):
                    p.conn_rate, p.latency = a.wan_conn_mbps * 1e6, a.wan_rtt_ms / 1e3
                s.hub_proxy.cdn = cdn
                run = timed_rss(cmd, self.env)
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

    def memory(self) -> None:
        """Peak RSS of one mirror of a --memory-gb image over the kernel WAN (25 MB/s per flow), so
        that parallel ranges, their reorder window and the uploads are all in play: memory must
        stay bounded by --ranges x --range-chunk-mb plus a constant, whatever the image size."""
        from wan import ShapedHub

        gb = self.args.memory_gb
        layers = max(1, int(gb * 2))
        self.say(f"memory: building and publishing a {gb} GB image ({layers} x 512 MiB) ...")
        t = tag(0, "mem")
        # 512 MiB layers: the point is that RSS does not grow with blob or image size.
        self.publish([f"mem-{i}" for i in range(layers)], 512 << 20, t)
        images.layer.cache_clear()
        hub = ShapedHub(self.stack.root, self.stack.hub_registry.root / "data").start()
        try:
            hub.shape(self.args.wan_conn_mbps, None)
            self.stack.lan_registry.wipe()
            cmd = [LANMIRROR, "mirror", "--repo", REPO, "--tag", t, "--source-registry", hub.address,
                   "--insecure-registry", hub.address, "--lan-registry", self.lan_direct]
            r = self.row(f"6 memory: {gb} GB image, kernel WAN {self.args.wan_conn_mbps:g} MB/s per flow",
                         "lanmirror")
            self.measure(r, cmd)
            r.mbps = round(gb * (1 << 30) / 1e6 / r.median, 1)
            r.note = (r.note + " " if r.note else "") + "bound: 16 ranges x 2 MiB buffered + interpreter"
        finally:
            hub.stop()

    # -- report -------------------------------------------------------------------------------

    def report(self) -> None:
        out = ROOT / "bench" / "results"
        out.mkdir(parents=True, exist_ok=True)
        baseline = {r.scenario: r.median for r in self.rows if r.tool == "lanmirror"}
        header = f"{'scenario':44} {'tool':24} {'runs':>4} {'min s':>8} {'median s':>9} {'ratio':>7} " \
                 f"{'MB/s':>7} {'of ceil':>7} {'MB moved':>9} {'reqs':>5} {'RSS MB':>7} {'CPU/GiB':>7}  note"
        lines = [header, "-" * len(header)]
        for r in self.rows:
            lm = baseline.get(r.scenario)
            ratio = "1x" if r.tool == "lanmirror" else f"{r.median / lm:6.2f}x" if lm else ""
            mb = f"{r.bytes / 1e6:9.1f}" if r.bytes is not None else " " * 9
            reqs = f"{r.requests:5d}" if r.requests is not None else " " * 5
            rss = f"{r.rss_mb:7.0f}" if r.rss_mb else " " * 7
            rate = f"{r.mbps:7.1f}" if r.mbps is not None else " " * 7
            frac = f"{r.of_ceiling:7.0%}" if r.of_ceiling is not None else " " * 7
            cpu = f"{r.cpu_per_gib:7.2f}" if r.cpu_per_gib is not None else " " * 7
            lines.append(f"{r.scenario[:44]:44} {r.tool[:24]:24} {len(r.seconds):4d} {r.min:8.2f} {r.median:9.2f} "
                         f"{ratio:>7} {rate} {frac} {mb} {reqs} {rss} {cpu}  {r.note}")
        text = "\n".join(lines)
        print("\n" + text)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        data = {"args": vars(self.args), "date": stamp,
                "rows": [{**asdict(r), "min": r.min, "median": r.median,
                          "ratio_to_lanmirror": (r.median / baseline[r.scenario]) if baseline.get(r.scenario) else None}
                         for r in self.rows]}
        (out / f"bench-{stamp}.json").write_text(json.dumps(data, indent=2))
        (out / f"bench-{stamp}.txt").write_text(text + "\n")
        png = out / f"bench-{stamp}.png"
        if chart(self.rows, png):
            print(f"\nwrote {out}/bench-{stamp}.json, .txt and .png")
        else:
            print(f"\nwrote {out}/bench-{stamp}.json and .txt (install pillow for the PNG chart)")


def chart(rows: list[Row], path: Path) -> bool:
    """A horizontal bar chart of median seconds per scenario and tool (log-free, labelled)."""
    try:
        from PIL import Image, ImageDraw, ImageFont
    except ImportError:
        return False
    rows = [r for r in rows if r.seconds and not r.scenario.startswith("5 ")]
    if not rows:
        return False
    width, bar_h, left = 1100, 22, 470
    height = 40 + bar_h * len(rows) + 10 * len({r.scenario for r in rows})
    img = Image.new("RGB", (width, height), "white")
    d = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    colours = {"lanmirror": (40, 120, 200), "skopeo copy": (230, 140, 40), "docker pull+tag+push": (170, 60, 60),
               "original bash": (120, 120, 120), "bare docker pull": (90, 160, 90),
               "raw curl GET|PUT pipe": (60, 60, 60)}
    d.text((10, 10), "median seconds per scenario (shorter is better)", fill="black", font=font)
    y = 35
    last = None
    top = max(r.median for r in rows) or 1
    for r in rows:
        if r.scenario != last:
            y += 10
            last = r.scenario
        w = int((width - left - 90) * r.median / top)
        d.text((10, y + 5), f"{r.scenario[:44]} | {r.tool}", fill="black", font=font)
        d.rectangle([left, y + 2, left + max(w, 1), y + bar_h - 4], fill=colours.get(r.tool, (100, 100, 200)))
        d.text((left + max(w, 1) + 6, y + 5), f"{r.median:.2f}s", fill="black", font=font)
        y += bar_h
    img.save(path)
    return True


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
    p.add_argument("--only", help="comma-separated scenarios: "
                                  "cold,incremental,fanout,replicas,resolve,fleet,wan,wanproxy,fastpull,memory")
    p.add_argument("--tools", help="cold and WAN scenarios: only the tools whose name starts with one of these "
                                   "(comma-separated), e.g. lanmirror; for quick iterations, not for reports")
    args = p.parse_args()
    if not shutil.which("skopeo"):
        print("skopeo not found: run ./dev bench, which installs it", file=sys.stderr)
        return 2
    wanted = set((args.only or "cold,incremental,fanout,replicas,resolve,fleet,wan,wanproxy,fastpull,memory")
                 .split(","))
    bench = Bench(args)
    started = time.monotonic()
    try:
        if "cold" in wanted:
            bench.cold_and_noop()
        if "incremental" in wanted:
            bench.incremental()
        if "fanout" in wanted:
            bench.fanout()
        if "replicas" in wanted:
            bench.replicas()
        if "resolve" in wanted:
            bench.resolve()
        if "fleet" in wanted:
            bench.fleet()
        if "wan" in wanted:
            bench.wan()
        if "wanproxy" in wanted:
            bench.wan_proxy()
        if "fastpull" in wanted:
            bench.fastpull()
        if "memory" in wanted and args.memory_gb:
            bench.memory()
    finally:
        bench.report()
        bench.close()
    print(f"total {time.monotonic() - started:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
