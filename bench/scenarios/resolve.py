"""Scenario 4 resolve: cache hit, LAN hit, LAN refused or black-holed (with and without the daemon's
probe and the pull), Hub 429, slow LAN."""

from __future__ import annotations

import subprocess

from harness import BASE, BASH_BASELINE, LANMIRROR, REPO, Bench, Row, tag, timed
from tests.stack import HUB_CREDS, images


def run(b: Bench) -> None:
    a = b.args
    s = b.stack
    b.say("resolve: publishing a small nightly ...")
    days = 2
    t = tag(days)
    img = images.build([f"res-{i}" for i in range(4)], a.resolve_mb << 20)
    images.push(s.client(b.hub_direct, HUB_CREDS), REPO, t, img)
    images.push(s.client(b.lan_direct), REPO, t, img)
    canonical = f"{s.hub}/{REPO}:{t}"
    lm = [LANMIRROR, "resolve", "--repo", REPO, "--base-tag", BASE, "--hub-registry", s.hub,
          "--lan-registry", s.lan]
    bash_env = {**b.env, "REPO": REPO, "LOCAL_DOCKER_REGISTRY": s.lan, "HUB": s.hub}

    def clean() -> None:
        # Every nightly of REPO this host holds: the mirror scenarios' docker pull+tag+push leaves
        # today's under the canonical name, and a cached newer tag would turn every row into a hit.
        listed = subprocess.run(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}"], env=b.env,
                                capture_output=True, text=True, check=False).stdout.split()
        names = {f"{host}/{REPO}" for host in (s.hub, s.lan, b.hub_direct, b.lan_direct)}
        held = [r for r in listed if r.rsplit(":", 1)[0] in names]
        b.forget_local(canonical, f"{s.lan}/{REPO}:{t}", f"{s.lan}/{REPO}@{img.digest}",
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
    b.docker("pull", "-q", f"{s.lan}/{REPO}:{t}")
    b.docker("tag", f"{s.lan}/{REPO}:{t}", canonical)
    b.say("resolve: cache hit")
    proxied(b.row("4a resolve: cache hit", "lanmirror"), lm, b.env, s.clear_faults)
    proxied(b.row("4a resolve: cache hit", "original bash"), ["bash", BASH_BASELINE, BASE], bash_env,
            s.clear_faults)
    # b. LAN hit with pull, and the bare docker pull it performs
    b.say("resolve: LAN hit with pull")
    proxied(b.row("4b resolve: LAN hit + pull", "lanmirror"), lm, b.env, clean)
    proxied(b.row("4b resolve: LAN hit + pull", "original bash"), ["bash", BASH_BASELINE, BASE], bash_env, clean)
    proxied(b.row("4b resolve: LAN hit + pull", "bare docker pull"),
            ["docker", "pull", "-q", f"{s.lan}/{REPO}@{img.digest}"], b.env, clean)
    # c/d. LAN refused / black-holed → Hub (decision only)
    for fault, label in (("refuse", "4c resolve: LAN refused → Hub"),
                         ("blackhole", "4d resolve: LAN black-holed → Hub")):
        def broken(f: str = fault) -> None:
            clean()
            s.lan_proxy.mode = f

        b.say(f"resolve: {label}")
        proxied(b.row(label, "lanmirror"), [*lm, "--no-pull", "--no-daemon-probe"], b.env, broken)
        proxied(b.row(label, "original bash"), ["bash", BASH_BASELINE, BASE], {**bash_env, "FIND_ONLY": "1"},
                broken, repeat=1 if fault == "blackhole" else a.repeat, timeout=a.bash_cap)
    # h. The same black-holed LAN as a job sees it: the daemon is asked too, and the Hub's image is
    # pulled. Every source is asked once: the job's and the daemon's probes overlap and end by one
    # probe timeout (2 s), and nothing asks the LAN again.
    def black_holed() -> None:
        clean()
        s.lan_proxy.mode = "blackhole"

    label = "4h resolve: LAN black-holed → Hub, daemon probe + pull"
    b.say(f"resolve: {label}")
    proxied(b.row(label, "lanmirror"), lm, b.env, black_holed)
    proxied(b.row(label, "original bash"), ["bash", BASH_BASELINE, BASE], bash_env, black_holed, repeat=1,
            timeout=a.bash_cap)
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
        b.say(f"resolve: {label}")
        proxied(b.row(label, "lanmirror"), lm, b.env, before, repeat=1)
        proxied(b.row(label, "original bash"), ["bash", BASH_BASELINE, BASE], bash_env, before, repeat=1,
                timeout=a.bash_cap)
    # e. Hub 429 with Retry-After: 1, twice (no LAN)
    def throttled() -> None:
        clean()
        s.hub_proxy.fail(429, 2, path="/manifests/", headers={"Retry-After": "1"})

    b.say("resolve: Hub 429 x2")
    label = "4e resolve: Hub 429 (Retry-After 1) x2"
    lm_hub = [LANMIRROR, "resolve", "--repo", REPO, "--base-tag", BASE, "--hub-registry", s.hub, "--no-pull"]
    proxied(b.row(label, "lanmirror"), lm_hub, {k: v for k, v in b.env.items()}, throttled)
    proxied(b.row(label, "original bash"), ["bash", BASH_BASELINE, BASE],
            {**bash_env, "LOCAL_DOCKER_REGISTRY": "127.0.0.1:9", "FIND_ONLY": "1"}, throttled)
    clean()
