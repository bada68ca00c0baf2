"""The harness every benchmark scenario runs on: the local stack, timed commands (wall time, peak
RSS, CPU), the registries' access logs, result rows, and the side-by-side report (table, JSON, PNG).
A scenario (`bench/scenarios/`) is one function `run(b: Bench)` that adds rows to `b`."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
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
    system: float = 0.0  # of which in the kernel (socket copies, page faults)


def timed_cpu(cmd: list[str], env: dict[str, str]) -> CpuRun:
    """Like `timed_rss`, with the command's CPU seconds too (GNU time: %M %U %S)."""
    with tempfile.NamedTemporaryFile("r") as out_file:
        start = time.monotonic()
        proc = subprocess.run(["/usr/bin/time", "-q", "-f", "%M %U %S", "-o", out_file.name, *cmd], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        seconds = time.monotonic() - start
        fields = (out_file.read().strip().splitlines() or ["0 0 0"])[-1].split()
        rss_kb, user, system = (float(f) for f in fields) if len(fields) == 3 else (0.0, 0.0, 0.0)
        return CpuRun(seconds, proc.returncode, rss_kb / 1024, proc.stdout, user + system, system)


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


def with_extra_layer(img: images.Image, blob: bytes, diff_id: str) -> images.Image:
    """`img` with one more layer appended (the WAN scenario's big layer)."""
    from lanmirror.remote.manifest import DOCKER_MANIFEST, Manifest, sha256_digest

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
        # Every lanmirror resolve and mirror of the run leaves its record here: real records for
        # `lanmirror report` (docs/records.md's sample comes from such a file).
        results = ROOT / "bench" / "results"
        results.mkdir(parents=True, exist_ok=True)
        self.env["LANMIRROR_RECORD_FILE"] = str(results / f"records-{time.strftime('%Y%m%d-%H%M%S')}.jsonl")
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



