"""The fault matrix: every fault the fleet has seen or could see, driven through the real CLI.

Each row sets a fault up on the stack, runs `lanmirror resolve` or `lanmirror mirror` as a CI job
would, and checks the outcome: the right image, or a non-zero exit whose message names the source
and the cause, within the row's time bound. After every mirror row the LAN must not serve the tag
unless all of its blobs are there.

    python -m tests.faults        # prints the matrix as a table (fault, operation, outcome, seconds, requests)
    tests/test_faults.py          # the same rows as test cases
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tests.helpers import LANMIRROR, forget, publish, run_cli, tag_for
from tests.stack import HUB_PASSWORD, HUB_USER, Stack

BASE = "v0.5.5-rocm700-mi30x"


@dataclass
class Outcome:
    ok: bool
    summary: str
    seconds: float
    requests: int
    detail: str = ""


@dataclass
class Row:
    fault: str
    operation: str
    run: Callable[[Stack, str], Outcome]
    bound: float
    expect: str = ""  # what a correct outcome looks like, for the table
    tags: list[str] = field(default_factory=list)


def _requests(stack: Stack) -> int:
    return sum(len(p.entries()) for p in (stack.hub_proxy, stack.lan_proxy, stack.token_proxy))


def resolve_cli(stack: Stack, repo: str, *extra: str, env: dict[str, str] | None = None,
                lan: str | None = None) -> tuple[subprocess.CompletedProcess[str], float]:
    args = ["resolve", "--repo", repo, "--base-tag", BASE, "--hub-registry", stack.hub, "--stall-timeout", "3",
            "--hub-timeout", "6", "--json", *extra]
    if lan != "":
        args += ["--lan-registry", lan or stack.lan]
    start = time.monotonic()
    proc = run_cli(stack, *args, env=env, timeout=180)
    return proc, time.monotonic() - start


def mirror_cli(stack: Stack, repo: str, tag: str, *extra: str, env: dict[str, str] | None = None
               ) -> tuple[subprocess.CompletedProcess[str], float]:
    start = time.monotonic()
    proc = run_cli(stack, "mirror", "--repo", repo, "--tag", tag, "--source-registry", stack.hub, "--lan-registry",
                   stack.lan, "--json", *extra, env=env, timeout=180)
    return proc, time.monotonic() - start


def expect_image(stack: Stack, proc: subprocess.CompletedProcess[str], seconds: float, digest: str,
                 source: str | None = None) -> Outcome:
    if proc.returncode != 0:
        return Outcome(False, f"exit {proc.returncode}", seconds, _requests(stack), proc.stderr[-600:])
    out = json.loads(proc.stdout)
    ok = out["digest"] == digest and (source is None or out["source"] == source)
    return Outcome(ok, f"image from {out['source']}", seconds, _requests(stack),
                   "" if ok else f"got {out['source']} {out['digest']}, wanted {source} {digest}")


def expect_error(stack: Stack, proc: subprocess.CompletedProcess[str], seconds: float, *needles: str) -> Outcome:
    text = proc.stderr + proc.stdout
    missing = [n for n in needles if n.lower() not in text.lower()]
    ok = proc.returncode not in (0, 2) and not missing
    last = [line for line in proc.stderr.strip().splitlines() if "error" in line.lower()]
    return Outcome(ok, f"exit {proc.returncode}: {(last[-1] if last else '')[:90]}", seconds, _requests(stack),
                   "" if ok else f"missing {missing} in: {text[-600:]}")


def lan_tag_is_whole(stack: Stack, repo: str, tag: str) -> bool:
    """The invariant: a tag on the LAN has every blob (and every child manifest) it references."""
    lan = stack.client(stack.lan_registry.address)
    if lan.head_manifest(repo, tag) is None:
        return True
    top = lan.get_manifest(repo, tag)
    manifests = [lan.get_manifest(repo, c.digest) for c in top.children()] if top.is_index else [top]
    return all(lan.head_blob(repo, b.digest) is not None for m in manifests for b in m.blobs())


# -- rows --------------------------------------------------------------------------------------

def lan_refused(stack: Stack, repo: str) -> Outcome:
    img = publish(stack, repo, BASE, 1, hub=True, lan=True)
    stack.lan_proxy.mode = "refuse"
    return expect_image(stack, *resolve_cli(stack, repo), img.digest, "hub")


def lan_black_holed(stack: Stack, repo: str) -> Outcome:
    img = publish(stack, repo, BASE, 1, hub=True, lan=True)
    stack.lan_proxy.mode = "blackhole"
    return expect_image(stack, *resolve_cli(stack, repo), img.digest, "hub")


def lan_slow(stack: Stack, repo: str) -> Outcome:
    img = publish(stack, repo, BASE, 1, hub=True, lan=True)
    stack.lan_proxy.latency = 2.0
    return expect_image(stack, *resolve_cli(stack, repo, "--no-pull"), img.digest)


def lan_stalled_blob(stack: Stack, repo: str) -> Outcome:
    img = publish(stack, repo, BASE, 1, hub=True, lan=True, size=3 << 20, layers=1)
    stack.lan_proxy.break_body("stall", after=1 << 20)
    return expect_image(stack, *resolve_cli(stack, repo), img.digest, "hub")


def lan_reset_mid_body(stack: Stack, repo: str) -> Outcome:
    img = publish(stack, repo, BASE, 1, hub=True, lan=True, size=3 << 20, layers=1)
    stack.lan_proxy.break_body("reset", after=1 << 20)
    return expect_image(stack, *resolve_cli(stack, repo), img.digest)


def lan_5xx_burst_resolve(stack: Stack, repo: str) -> Outcome:
    img = publish(stack, repo, BASE, 1, hub=True, lan=True)
    stack.lan_proxy.fail(503, 10)
    return expect_image(stack, *resolve_cli(stack, repo, "--no-pull"), img.digest)


def lan_5xx_burst_mirror(stack: Stack, repo: str) -> Outcome:
    img = publish(stack, repo, BASE, 0, layers=3)
    stack.lan_proxy.fail(503, 3)
    proc, secs = mirror_cli(stack, repo, tag_for(BASE, 0))
    return _mirror_ok(stack, repo, tag_for(BASE, 0), proc, secs, img.digest)


def lan_corrupt_blob(stack: Stack, repo: str) -> Outcome:
    """The daemon pulling directly: it refuses the LAN's corrupt blob, and resolve goes to the Hub."""
    img = publish(stack, repo, BASE, 1, hub=True, lan=True, size=1 << 20, layers=1)
    stack.lan_proxy.break_body("corrupt", after=1000, count=100)
    return expect_image(stack, *resolve_cli(stack, repo, "--pull-via", "daemon"), img.digest, "hub")


def lan_corrupt_blob_endpoint(stack: Stack, repo: str) -> Outcome:
    """Through the endpoint: the wrong blob is never completed, the LAN is named and not asked again,
    and the blob comes from the Hub (in the same pull on the classic store)."""
    img = publish(stack, repo, BASE, 1, hub=True, lan=True, size=1 << 20, layers=1)
    stack.lan_proxy.break_body("corrupt", after=1000, count=100)
    proc, secs = resolve_cli(stack, repo, "--pull-via", "ranges")
    out = expect_image(stack, proc, secs, img.digest)
    if out.ok and "served wrong bytes" not in proc.stdout:
        return Outcome(False, "the corrupt LAN was not named", secs, out.requests)
    return out


def source_corrupt_blob_mirror(stack: Stack, repo: str) -> Outcome:
    publish(stack, repo, BASE, 0, layers=1, size=1 << 20)
    stack.hub_proxy.break_body("corrupt", after=1000, count=100)
    proc, secs = mirror_cli(stack, repo, tag_for(BASE, 0))
    out = expect_error(stack, proc, secs, "corrupt data refused")
    if stack.client(stack.lan_registry.address).head_manifest(repo, tag_for(BASE, 0)) is not None:
        return Outcome(False, "tag published from corrupt bytes", secs, out.requests)
    return out


def lan_stale_tag(stack: Stack, repo: str) -> Outcome:
    img = publish(stack, repo, BASE, 1, hub=True)
    publish(stack, repo, BASE, 1, hub=False, lan=True, variant="-stale")
    proc, secs = resolve_cli(stack, repo, "--no-pull")
    out = expect_image(stack, proc, secs, img.digest, "hub")
    if out.ok and "stale mirror" not in proc.stderr:
        return Outcome(False, "no stale-mirror warning", secs, out.requests)
    return out


def lan_restarted_mid_mirror(stack: Stack, repo: str) -> Outcome:
    img = publish(stack, repo, BASE, 0, layers=6, size=4 << 20)
    tag = tag_for(BASE, 0)
    stack.hub_proxy.latency = 0.15  # stretch the copy so the restart lands in the middle of it
    start = time.monotonic()
    proc = subprocess.Popen([LANMIRROR, "mirror", "--repo", repo, "--tag", tag, "--source-registry", stack.hub,
                             "--lan-registry", stack.lan, "--parallel", "2", "--json"], env=stack.env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not stack.lan_proxy.entries("PUT", "/blobs/uploads/"):
        time.sleep(0.02)
    stack.lan_registry.restart()
    out, err = proc.communicate(timeout=120)
    done = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    return _mirror_ok(stack, repo, tag, done, time.monotonic() - start, img.digest)


def _upload_fault(stack: Stack, repo: str, after: int, counter: str) -> Outcome:
    """A 6 MiB layer uploaded in 1 MiB chunks; the third PATCH meets the fault."""
    img = publish(stack, repo, BASE, 0, layers=1, size=6 << 20)
    stack.lan_proxy.break_upload(after=after, method="PATCH", skip=2)
    proc, secs = mirror_cli(stack, repo, tag_for(BASE, 0), "--upload-chunk-mb", "1")
    out = _mirror_ok(stack, repo, tag_for(BASE, 0), proc, secs, img.digest)
    if out.ok:
        result = json.loads(proc.stdout)["results"][0]
        if result[counter] != 1:
            return Outcome(False, f"{counter} = {result[counter]}, expected 1", secs, out.requests)
        out.summary += f", {counter} 1"
    return out


def lan_upload_request_lost(stack: Stack, repo: str) -> Outcome:
    return _upload_fault(stack, repo, 0, "upload_resumes")


def lan_upload_body_broken(stack: Stack, repo: str) -> Outcome:
    return _upload_fault(stack, repo, 300_000, "upload_restarts")


def _mirror_ok(stack: Stack, repo: str, tag: str, proc: subprocess.CompletedProcess[str], secs: float,
               digest: str) -> Outcome:
    if proc.returncode != 0:
        return Outcome(False, f"exit {proc.returncode}", secs, _requests(stack), proc.stderr[-600:])
    on_lan = stack.client(stack.lan_registry.address).head_manifest(repo, tag)
    ok = on_lan is not None and on_lan.digest == digest and lan_tag_is_whole(stack, repo, tag)
    return Outcome(ok, "mirrored, same digest" if ok else "LAN copy wrong", secs, _requests(stack))


def hub_pull_limit_resolve(stack: Stack, repo: str) -> Outcome:
    publish(stack, repo, BASE, 0, hub=True)
    stack.hub_proxy.remaining = 0
    proc, secs = resolve_cli(stack, repo)
    out = expect_error(stack, proc, secs, "rate limit", stack.hub)
    gets = len(stack.hub_proxy.entries("GET", "/manifests/"))
    if gets > 3:  # the daemon's own single attempt may show up more than once; hammering would be many
        return Outcome(False, f"hammered the Hub: {gets} manifest GETs", secs, out.requests)
    return out


def hub_pull_limit_mirror(stack: Stack, repo: str) -> Outcome:
    publish(stack, repo, BASE, 0, hub=True)
    stack.hub_proxy.remaining = 0
    proc, secs = mirror_cli(stack, repo, tag_for(BASE, 0))
    out = expect_error(stack, proc, secs, "pull rate limit", "TOOMANYREQUESTS")
    if len(stack.hub_proxy.entries("GET", "/manifests/")) != 1:
        return Outcome(False, "retried a pull-limit 429", secs, out.requests)
    return out


def hub_abuse_429(stack: Stack, repo: str) -> Outcome:
    img = publish(stack, repo, BASE, 0, hub=True)
    stack.hub_proxy.fail(429, 2, method="HEAD", path="/manifests/", headers={"Retry-After": "1"})
    return expect_image(stack, *resolve_cli(stack, repo, "--no-pull", lan=""), img.digest, "hub")


def hub_bad_credentials(stack: Stack, repo: str) -> Outcome:
    publish(stack, repo, BASE, 0, hub=True)
    env = {"DOCKERHUB_USERNAME": HUB_USER, "DOCKERHUB_TOKEN": "wrong-" + HUB_PASSWORD[::-1]}
    proc, secs = resolve_cli(stack, repo, "--no-pull", env=env, lan="")
    out = expect_error(stack, proc, secs, "authentication failed", stack.hub)
    if len(stack.token_proxy.entries()) > 2:
        return Outcome(False, "retried a 401", secs, out.requests)
    return out


def hub_404(stack: Stack, repo: str) -> Outcome:
    proc, secs = resolve_cli(stack, repo, "--no-pull", lan="")
    return expect_error(stack, proc, secs, "no nightly of", f"hub {stack.hub}: miss")


def hub_5xx_burst(stack: Stack, repo: str) -> Outcome:
    img = publish(stack, repo, BASE, 0, hub=True)
    stack.hub_proxy.fail(503, 3, path="/manifests/")
    return expect_image(stack, *resolve_cli(stack, repo, "--no-pull", lan=""), img.digest, "hub")


def hub_token_black_holed(stack: Stack, repo: str) -> Outcome:
    publish(stack, repo, BASE, 0, hub=True)
    stack.token_proxy.mode = "blackhole"
    proc, secs = resolve_cli(stack, repo, "--no-pull", lan="")
    return expect_error(stack, proc, secs, "token endpoint", stack.hub)


def daemon_missing(stack: Stack, repo: str) -> Outcome:
    publish(stack, repo, BASE, 0, hub=True, lan=True)
    proc, secs = resolve_cli(stack, repo, env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    return expect_error(stack, proc, secs, "Docker daemon not reachable", "/nonexistent/docker.sock")


def lost_blob_resolve(stack: Stack, repo: str, pull_via: str, source: str, says: str) -> Outcome:
    """A LAN whose manifest references a blob it lost; resolve with `--pull-via pull_via` must end
    with the image from `source` and say `says`."""
    img = publish(stack, repo, BASE, 1, hub=True, lan=True)
    lan = stack.client(stack.lan_registry.address)
    lan.transport.request("DELETE", f"/v2/{repo}/blobs/{img.layer_digests[0]}").close()
    proc, secs = resolve_cli(stack, repo, "--pull-via", pull_via)
    out = expect_image(stack, proc, secs, img.digest, source)
    if out.ok and says not in proc.stdout:
        return Outcome(False, f"{says!r} not reported", secs, out.requests)
    return out


def pull_stream_error(stack: Stack, repo: str) -> Outcome:
    """The daemon pulling directly reports the lost blob inside the pull's JSON stream (docker-py does
    not raise); resolve must notice and fall back to the Hub."""
    return lost_blob_resolve(stack, repo, "daemon", "hub", "pull failed")


def lan_lost_blob_endpoint(stack: Stack, repo: str) -> Outcome:
    """Through the endpoint, the blob the LAN lost comes from the Hub within the same pull, and the
    warning says the LAN copy is incomplete."""
    return lost_blob_resolve(stack, repo, "ranges", "lan", "could not serve every blob")


def push_disk_full(stack: Stack, repo: str) -> Outcome:
    publish(stack, repo, BASE, 0, hub=True, layers=1)
    body = b'{"errors":[{"code":"UNKNOWN","message":"write /var/lib/registry: no space left on device"}]}'
    stack.lan_proxy.fail(500, 1000, path="/blobs/uploads/", body=body)
    proc, secs = mirror_cli(stack, repo, tag_for(BASE, 0), "--engine", "docker")
    out = expect_error(stack, proc, secs, stack.lan)
    if not lan_tag_is_whole(stack, repo, tag_for(BASE, 0)):
        return Outcome(False, "half-published tag", secs, out.requests)
    return out


def two_mirrors_same_tag(stack: Stack, repo: str) -> Outcome:
    img = publish(stack, repo, BASE, 0, layers=4, size=1 << 20)
    start = time.monotonic()
    with cf.ThreadPoolExecutor(2) as pool:
        procs = list(pool.map(lambda _: mirror_cli(stack, repo, tag_for(BASE, 0))[0], range(2)))
    secs = time.monotonic() - start
    for p in procs:
        if p.returncode != 0:
            return Outcome(False, f"exit {p.returncode}", secs, _requests(stack), p.stderr[-400:])
    return _mirror_ok(stack, repo, tag_for(BASE, 0), procs[0], secs, img.digest)


def many_resolvers(stack: Stack, repo: str, n: int = 32) -> Outcome:
    img = publish(stack, repo, BASE, 1, hub=True, lan=True)
    start = time.monotonic()
    # 32 interpreters start at once on a 2-core machine, and this process also plays every registry
    # proxy: the probe bound is raised so that CPU starvation here is not mistaken for a dead LAN.
    with cf.ThreadPoolExecutor(n) as pool:
        procs = list(pool.map(lambda _: resolve_cli(stack, repo, "--no-pull", "--probe-timeout", "15")[0], range(n)))
    secs = time.monotonic() - start
    outs = [json.loads(p.stdout) for p in procs if p.returncode == 0]
    same = {(o["source"], o["image"], o["digest"]) for o in outs}
    ok = len(outs) == n and same == {("lan", f"{stack.lan}/{repo}:{tag_for(BASE, 1)}", img.digest)}
    counted = stack.hub_proxy.counted_gets()
    return Outcome(ok and counted == 0, f"{len(outs)}/{n} answered, {len(same)} distinct answer(s) "
                   f"{sorted(s[0] for s in same)}, {counted} counted Hub GETs", secs, _requests(stack))


def killed_mirror_rerun(stack: Stack, repo: str) -> Outcome:
    img = publish(stack, repo, BASE, 0, layers=4, size=2 << 20)
    tag = tag_for(BASE, 0)
    stack.hub_proxy.break_body("stall", after=1 << 20)
    start = time.monotonic()
    proc = subprocess.Popen([LANMIRROR, "mirror", "--repo", repo, "--tag", tag, "--source-registry", stack.hub,
                             "--lan-registry", stack.lan], env=stack.env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any("stall" in e.fault for e in stack.hub_proxy.entries("GET")):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    if not lan_tag_is_whole(stack, repo, tag):
        return Outcome(False, "half-published tag after SIGKILL", time.monotonic() - start, _requests(stack))
    stack.clear_faults()
    rerun, _ = mirror_cli(stack, repo, tag)
    return _mirror_ok(stack, repo, tag, rerun, time.monotonic() - start, img.digest)


ROWS = [
    Row("LAN refused", "resolve", lan_refused, 6, "image from the Hub"),
    Row("LAN black-holed", "resolve", lan_black_holed, 10, "image from the Hub"),
    Row("LAN 2 s latency per request", "resolve", lan_slow, 10, "image (LAN skipped past the probe bound)"),
    Row("LAN stalled after 1 MiB of a blob", "resolve", lan_stalled_blob, 15, "image from the Hub"),
    Row("LAN reset mid-body", "resolve", lan_reset_mid_body, 20, "image"),
    Row("LAN 5xx burst", "resolve", lan_5xx_burst_resolve, 8, "image"),
    Row("LAN 5xx burst", "mirror", lan_5xx_burst_mirror, 20, "mirrored"),
    Row("LAN corrupt blob bytes", "resolve --pull-via daemon", lan_corrupt_blob, 20, "image from the Hub"),
    Row("LAN corrupt blob bytes", "resolve --pull-via ranges", lan_corrupt_blob_endpoint, 20, "image, the LAN named"),
    Row("source corrupt blob bytes", "mirror", source_corrupt_blob_mirror, 30, "exit 1, nothing tagged"),
    Row("LAN stale tag", "resolve", lan_stale_tag, 8, "Hub copy + warning"),
    Row("LAN registry restarted mid-mirror", "mirror", lan_restarted_mid_mirror, 60, "mirrored"),
    Row("LAN upload request lost before the registry", "mirror", lan_upload_request_lost, 30,
        "mirrored, upload resumed"),
    Row("LAN upload body broken half-way", "mirror", lan_upload_body_broken, 30,
        "mirrored, upload restarted (Distribution drops the session)"),
    Row("Hub 429 pull limit (no Retry-After)", "resolve", hub_pull_limit_resolve, 20, "exit 1, no hammering"),
    Row("Hub 429 pull limit (no Retry-After)", "mirror", hub_pull_limit_mirror, 10, "exit 1, one GET"),
    Row("Hub abuse 429 with Retry-After: 1", "resolve", hub_abuse_429, 8, "image"),
    Row("Hub 401 bad credentials", "resolve", hub_bad_credentials, 6, "exit 1, no retry"),
    Row("Hub 404", "resolve", hub_404, 6, "exit 1"),
    Row("Hub 5xx burst", "resolve", hub_5xx_burst, 10, "image"),
    Row("Hub token endpoint black-holed", "resolve", hub_token_black_holed, 15, "exit 1"),
    Row("daemon not running", "resolve", daemon_missing, 15, "exit 1 naming the socket"),
    Row("pull error inside the stream JSON", "resolve --pull-via daemon", pull_stream_error, 15, "image from the Hub"),
    Row("LAN lost a blob", "resolve --pull-via ranges", lan_lost_blob_endpoint, 15, "image, the blob from the Hub"),
    Row("disk-full style push error", "mirror --engine docker", push_disk_full, 120, "exit 1 naming the LAN"),
    Row("two mirrors of one tag at once", "mirror", two_mirrors_same_tag, 30, "both ok, same digest"),
    Row("32 resolvers at once", "resolve", many_resolvers, 60, "all agree"),
    Row("mirror SIGKILLed mid-copy, rerun", "mirror", killed_mirror_rerun, 60, "rerun completes"),
]


def row_id(row: Row) -> str:
    return f"{row.operation.split()[0]}: {row.fault}"


def repo_for(row: Row) -> str:
    slug = "".join(c if c.isalnum() else "-" for c in row_id(row).lower())
    while "--" in slug:
        slug = slug.replace("--", "-")
    return f"faults/{slug.strip('-')}"


def run_row(stack: Stack, row: Row) -> Outcome:
    stack.clear_faults()
    repo = repo_for(row)
    forget(stack, repo)
    try:
        return row.run(stack, repo)
    finally:
        stack.clear_faults()


def main() -> int:
    import tempfile
    from pathlib import Path

    root = Path(tempfile.mkdtemp(prefix="lanmirror-faults-"))
    stack = Stack.create(root, with_engine26=False).start()
    os.environ["DOCKER_HOST"] = stack.docker_host
    os.environ["DOCKER_CONFIG"] = str(root / "docker-config")
    Path(os.environ["DOCKER_CONFIG"]).mkdir()
    failed = 0
    try:
        print(f"{'fault':38} {'operation':24} {'ok':3} {'seconds':>8} {'bound':>6} {'reqs':>5}  outcome")
        for row in ROWS:
            out = run_row(stack, row)
            good = out.ok and out.seconds <= row.bound
            failed += not good
            print(f"{row.fault:38} {row.operation:24} {'yes' if good else 'NO':3} {out.seconds:8.2f} "
                  f"{row.bound:6.0f} {out.requests:5d}  {out.summary}", flush=True)
            if not good and out.detail:
                print(f"    {out.detail[-300:]}")
    finally:
        stack.stop()
    print(f"{len(ROWS) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
