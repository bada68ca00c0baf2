"""`./dev demo`: the main job on an embedded default, on the local stack.

Starts dockerd, a token-auth "Docker Hub", two LAN registries and the fault proxies; publishes
a synthetic nightly to the "Hub"; mirrors it to the LAN with `lanmirror mirror`; resolves it with
`lanmirror resolve` (which pulls it from the LAN), then again (a cache hit); prints what crossed
each proxy, and the fleet report over the runs' records.

`--keep` leaves the stack running afterwards (until Ctrl-C) and prints what to point `doctor`,
`resolve`, `report` and `docker` at, also written to a file to `source`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.stack import Stack, images

REPO = "rocm/sgl-dev"
BASE = "v0.5.5-rocm700-mi30x"


def run(cmd: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    print(f"\n$ {' '.join(cmd)}", flush=True)
    start = time.monotonic()
    proc = subprocess.run(cmd, env=env, text=True, capture_output=True)
    sys.stdout.write(proc.stderr)
    sys.stdout.write(proc.stdout)
    print(f"[exit {proc.returncode} in {time.monotonic() - start:.2f}s]", flush=True)
    return proc


def keep(stack: Stack, env: dict[str, str], root: Path) -> None:
    """Print how to use the running stack, write it to ROOT/env.sh, and wait for Ctrl-C."""
    lm = Path(sys.executable).with_name("lanmirror")
    exports = {"DOCKER_HOST": env["DOCKER_HOST"], "DOCKER_CONFIG": env["DOCKER_CONFIG"],
               "LANMIRROR_RECORD_FILE": env["LANMIRROR_RECORD_FILE"], "LANMIRROR_HUB_REGISTRY": stack.hub,
               "LANMIRROR_LAN_REGISTRY": stack.lan, "PATH": f"{lm.parent}:{os.environ.get('PATH', '')}"}
    script = root / "env.sh"
    script.write_text("".join(f"export {k}={shlex.quote(v)}\n" for k, v in exports.items()))
    print(f"""
The stack is still running (until Ctrl-C here). In another shell:

  source {script}
  # DOCKER_HOST={exports['DOCKER_HOST']}   (this demo's own dockerd 20.10)
  # the "Docker Hub":  {stack.hub}   (token auth; anonymous pulls allowed)
  # the LAN registry:  {stack.lan}   (plain HTTP); a second one: {stack.lan2}
  lanmirror doctor
  lanmirror resolve --repo {REPO} --base-tag {BASE}
  lanmirror report --records "$LANMIRROR_RECORD_FILE"
  docker images --digests
""", flush=True)
    stop = {"now": False}

    def ask_stop(signum: int, frame: object) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, ask_stop)
    signal.signal(signal.SIGINT, ask_stop)
    while not stop["now"]:
        signal.pause()
    print("stopping the stack ...", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="./dev demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", action="store_true",
                        help="leave the stack running afterwards (until Ctrl-C) and print how to use it")
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="lanmirror-demo-"))
    print(f"starting the local stack under {root} ...", flush=True)
    stack = Stack.create(root, with_engine26=False).start()
    try:
        env = {**stack.env(), "DOCKER_CONFIG": str(root / "docker-config"),
               "LANMIRROR_RECORD_FILE": str(root / "records.jsonl")}
        today = dt.datetime.now(dt.timezone.utc).date()
        tag = f"{BASE}-{today:%Y%m%d}"
        image = images.build([f"demo-{i}" for i in range(4)], 2 << 20)
        images.push(stack.hub_client(), REPO, tag, image)
        print(f"published {REPO}:{tag} ({image.digest}) to the local Hub at {stack.hub}")
        stack.clear_faults()
        lm = str(Path(sys.executable).with_name("lanmirror"))
        mirror = run([lm, "mirror", "--repo", REPO, "--tag", tag, "--source-registry", stack.hub,
                      "--lan-registry", stack.lan], env)
        resolve = run([lm, "resolve", "--repo", REPO, "--base-tag", BASE, "--hub-registry", stack.hub,
                       "--lan-registry", stack.lan], env)
        print("\nrequests seen by the proxies:")
        for proxy in (stack.hub_proxy, stack.lan_proxy):
            entries = proxy.entries()
            print(f"  {proxy.name:4} {len(entries):3} requests, {proxy.bytes_out() / 1e6:7.1f} MB of blobs served, "
                  f"{proxy.counted_gets()} counted manifest GETs")
        # The second resolve finds the image in the runner's cache; the report reads both runs' records.
        again = run([lm, "resolve", "--repo", REPO, "--base-tag", BASE, "--hub-registry", stack.hub,
                     "--lan-registry", stack.lan], env)
        report = run([lm, "report", "--records", env["LANMIRROR_RECORD_FILE"]], env)
        code = max(mirror.returncode, resolve.returncode, again.returncode, report.returncode)
        if args.keep:
            keep(stack, env, root)
        return code
    finally:
        stack.stop()
        os.sync()


if __name__ == "__main__":
    raise SystemExit(main())
