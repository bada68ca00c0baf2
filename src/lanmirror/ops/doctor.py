"""`lanmirror doctor`: the checks a runner admin wants when pulls are slow or failing.

The original's silent failure was that the job's process could not reach the LAN registry while
the host's daemon could (or the other way round), so each reachability check is made from both
sides. Every check says ok / warn / fail and, when not ok, the fix to apply.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import requests

from lanmirror import __version__
from lanmirror.daemon.helper import image_version
from lanmirror.errors import AuthError, DaemonTimeout, LanmirrorError
from lanmirror.name import DOCKER_HUB, normalize_registry, repository_on
from lanmirror.ops.clients import Clients
from lanmirror.ops.resolve.onhost import HELPER_REPO, helper_tag
from lanmirror.remote.registry import Registry
from lanmirror.retry import describe
from lanmirror.transport import Timeouts, is_insecure, is_loopback
from lanmirror.transport.session import NoNetrcSession

OK, WARN, FAIL = "ok", "warn", "fail"
# Docker documents this image for checking the rate limit without spending it (HEAD is free).
RATELIMIT_PROBE = ("ratelimitpreview/test", "latest")


@dataclass
class Check:
    name: str
    status: str
    detail: str
    fix: str = ""


def _clock_skew(resp: requests.Response) -> float | None:
    date = resp.headers.get("Date")
    if not date:
        return None
    try:
        remote = email.utils.parsedate_to_datetime(date)
    except (TypeError, ValueError):
        return None
    if remote.tzinfo is None:  # "-0000" parses naive; HTTP dates are UTC by definition
        remote = remote.replace(tzinfo=dt.timezone.utc)
    return (dt.datetime.now(dt.timezone.utc) - remote).total_seconds()


def _skew_check(name: str, resp: requests.Response) -> Check | None:
    skew = _clock_skew(resp)
    if skew is None:
        return None
    if abs(skew) > 300:
        return Check(f"clock vs {name}", WARN, f"this machine is {skew:+.0f}s off the registry's Date header",
                     "sync the clock (chrony/systemd-timesyncd): the nightly date window is computed in UTC")
    return Check(f"clock vs {name}", OK, f"skew {skew:+.1f}s")


def _login_check(clients: Clients, reg: Registry, lan: str, repo: str | None, tag: str | None) -> Check:
    """Whether this LAN registry takes the login lanmirror would use (one manifest HEAD with it)."""
    creds = clients.credentials(lan)
    name = f"LAN {lan} login"
    if creds is None:
        return Check(name, WARN, "the registry asks for a login and none is configured",
                     f"set LANMIRROR_LAN_USERNAME and LANMIRROR_LAN_PASSWORD (inputs lan-username, lan-password) "
                     f"or run `docker login {lan}` on this runner")
    try:
        reg.head_manifest(repo or "lanmirror-doctor/probe", tag or "latest", retry=False)
    except AuthError as exc:
        return Check(name, FAIL, str(exc), "fix that password or token, or `docker login` again")
    except (LanmirrorError, requests.RequestException) as exc:
        return Check(name, WARN, f"could not check: {describe(exc)}")
    return Check(name, OK, f"{creds.describe()} accepted")


@dataclass
class Doctor:
    """What the checks share: the settings, the daemon as the first check found it, and which LAN
    registries answered from each side (the shape checks read those, not the lines' wording)."""

    clients: Clients
    lans: list[str]
    hub: str
    repo: str | None
    tag: str | None
    timeout: float
    min_free_gb: float
    engine: Any = None  # the daemon, once it answered
    info: dict[str, Any] = field(default_factory=dict)
    daemon_insecure: list[str] = field(default_factory=list)
    from_job: set[str] = field(default_factory=set)  # LAN registries this process reached
    from_daemon: set[str] = field(default_factory=set)  # LAN registries the daemon reached
    checks: list[Check] = field(default_factory=list)


def daemon(d: Doctor) -> list[Check]:
    engine = d.clients.engine(d.timeout)
    try:
        if engine is None:
            raise LanmirrorError("this run has no Docker daemon")
        d.info = engine.info()
        d.daemon_insecure = engine.insecure_registries()
    except LanmirrorError as exc:
        return [Check("docker daemon", FAIL, str(exc), "start dockerd, or point DOCKER_HOST at its socket")]
    d.engine = engine
    return [Check("docker daemon", OK, f"{engine.base_url}, server {d.info.get('ServerVersion', '?')}"),
            Check("daemon insecure registries", OK, ", ".join(d.daemon_insecure) or "(none)")]


def lan_from_job(d: Doctor, lan: str) -> list[Check]:
    """One LAN registry from this process: reachable, how (scheme, TLS), its clock, its login."""
    reg = d.clients.registry(lan, timeouts=Timeouts(d.timeout, d.timeout))
    started = time.monotonic()
    try:
        resp = reg.ping()
    except requests.RequestException as exc:
        return [Check(f"LAN {lan} from this process", FAIL, f"unreachable: {describe(exc)}",
                      "check routing/firewall from where the job runs (a job container may need host "
                      "networking); resolve falls back to probing through the daemon")]
    ms = (time.monotonic() - started) * 1000
    status = OK if resp.status_code in (200, 401) else WARN
    if status == OK:
        d.from_job.add(lan)
    out = [Check(f"LAN {lan} from this process", status,
                 f"{reg.transport.scheme}://{lan}/v2/ answered {resp.status_code} in {ms:.0f} ms; "
                 f"{reg.transport.describe_tls()}")]
    skew = _skew_check(f"LAN {lan}", resp)
    if skew:
        out.append(skew)
    if resp.status_code == 401 or d.clients.credentials(lan) is not None:
        out.append(_login_check(d.clients, reg, lan, d.repo, d.tag))
    return out


def lan_insecure(d: Doctor, lan: str) -> list[Check]:
    """A plain-HTTP LAN registry the daemon does not list as insecure: the daemon insists on HTTPS."""
    if is_loopback(lan) or d.engine is None or is_insecure(lan, d.daemon_insecure):
        return []
    return [Check(f"LAN {lan} in the daemon's insecure-registries", WARN,
                  "the daemon will insist on HTTPS for this registry",
                  f'add "{lan}" to "insecure-registries" in /etc/docker/daemon.json and restart dockerd '
                  "(unless the registry serves TLS)")]


def lan_from_daemon(d: Doctor, lan: str) -> list[Check]:
    """The same registry from the daemon (inside a job container the two differ)."""
    if d.engine is None:
        return []
    name = f"LAN {lan} from the daemon"
    probe = f"{lan}/{d.repo}:{d.tag}" if d.repo and d.tag else f"{lan}/lanmirror-doctor/probe:latest"
    try:
        d.engine.inspect_distribution(probe, d.clients.credentials(lan))
    except DaemonTimeout:
        return [Check(name, FAIL, f"the daemon answered, but got no answer from {lan} within {d.timeout:g}s "
                      f"(hop that failed: daemon → {lan})",
                      "the registry accepts connections from the daemon's host but does not "
                      "answer: check that it is not hung or overloaded, and any proxy in front")]
    except LanmirrorError as exc:
        text = str(exc).lower()
        if "not found" not in text and "unknown" not in text:
            return [Check(name, FAIL, describe(exc), "the daemon cannot pull from this registry: check its network "
                          "and insecure-registries")]
        d.from_daemon.add(lan)
        return [Check(name, OK, "reachable (probe image absent, as expected)" if not (d.repo and d.tag)
                      else f"reachable; {probe} not found")]
    d.from_daemon.add(lan)
    return [Check(name, OK, f"{probe} found")]


def lan_registries(d: Doctor) -> list[Check]:
    out: list[Check] = []
    for lan in d.lans:
        out += lan_from_job(d, lan) + lan_insecure(d, lan) + lan_from_daemon(d, lan)
    return out


def hub(d: Doctor) -> list[Check]:
    """The Hub's login and quota (a free HEAD), then its clock."""
    hub_reg = d.clients.registry(d.hub, timeouts=Timeouts(d.timeout, max(d.timeout, 10.0)))
    creds = d.clients.credentials(d.hub)
    probe_repo, probe_tag = (d.repo, d.tag or "latest") if d.repo else RATELIMIT_PROBE
    out: list[Check] = []
    try:
        _, rl = hub_reg.rate_limit(repository_on(d.hub, probe_repo), probe_tag)
        who = f"user {creds.username!r}" if creds else "anonymous"
        out.append(Check("Hub credentials", OK, f"{who} accepted by {d.hub}"))
        if rl and rl.remaining is not None:
            status = WARN if rl.limit and rl.remaining < max(5, rl.limit // 10) else OK
            out.append(Check("Hub rate limit", status,
                             f"{rl.remaining} of {rl.limit} pulls left in the window (source {rl.source or '?'})",
                             "" if status == OK else "log in with a paid account, or mirror more to the LAN"))
        else:
            out.append(Check("Hub rate limit", OK, f"{d.hub} reports no rate-limit headers"))
    except AuthError as exc:
        out.append(Check("Hub credentials", FAIL, str(exc), "fix DOCKERHUB_USERNAME/DOCKERHUB_TOKEN or `docker login`"))
    except (LanmirrorError, requests.RequestException) as exc:
        out.append(Check("Hub", FAIL, f"{d.hub} unreachable: {describe(exc)}",
                         "check outbound access; resolve can still serve from the cache and the LAN"))
    try:
        skew = _skew_check(f"Hub {d.hub}", hub_reg.ping())
    except requests.RequestException:
        skew = None
    return out + ([skew] if skew else [])


def node_mirror(d: Doctor) -> list[Check]:
    """The registry mirrors the daemon pulls Docker Hub images through (`lanmirror serve`, say), and
    whether each answers from here. Nothing when the daemon has none: the mirror is optional."""
    mirrors = (d.info.get("RegistryConfig") or {}).get("Mirrors") or []
    out: list[Check] = []
    for url in mirrors:
        url = str(url).rstrip("/")
        name = f"registry mirror {url}"
        try:
            with NoNetrcSession() as session:  # a ~/.netrc entry for the mirror's host is another job's word
                health = session.get(f"{url}/healthz", timeout=d.timeout)
                api = session.get(f"{url}/v2/", timeout=d.timeout)
        except requests.RequestException as exc:
            out.append(Check(name, WARN, f"not reachable from here ({describe(exc)}); the daemon pulls Docker Hub "
                             "images through it first, and falls back to the Hub when it fails",
                             "start it (`lanmirror serve`, docs/node-mirror.md), or check from the daemon's host: "
                             "a job container may not reach it while the daemon does"))
            continue
        if api.status_code != 200:
            out.append(Check(name, FAIL, f"/v2/ answered {api.status_code}: the daemon cannot pull through it",
                             "check the mirror's log; the daemon falls back to the Hub meanwhile"))
        elif health.status_code == 200:
            out.append(Check(name, OK, "a lanmirror node mirror: the daemon pulls Docker Hub images through it"))
        else:
            out.append(Check(name, OK, "answers /v2/ (not a lanmirror node mirror): the daemon pulls Docker Hub "
                             "images through it"))
    return out


def runner_shape(d: Doctor) -> list[Check]:
    if d.engine is None:  # said, not left out: a report without these lines reads as if they had passed
        return [Check("runner shape", WARN, "not checked: the Docker daemon did not answer"),
                Check("free disk in the daemon's data root", WARN, "not checked: the Docker daemon did not answer")]
    return shape_checks(d)


def clock(d: Doctor) -> list[Check]:
    if any(c.name.startswith("clock vs ") for c in d.checks):
        return []
    return [Check("clock", WARN, "not checked: no registry answered with a Date header")]


def disk(d: Doctor) -> list[Check]:
    root = d.info.get("DockerRootDir")
    if root and os.path.isdir(root):
        free = shutil.disk_usage(root).free / 1e9
        status = OK if free >= d.min_free_gb else WARN
        return [Check("free disk in the daemon's data root", status, f"{free:.0f} GB free in {root}",
                      "" if status == OK else "prune old images (`docker image prune -a --filter until=168h`)")]
    if root:
        return [Check("free disk in the daemon's data root", WARN, f"{root} is not visible from here",
                      "run doctor on the runner host itself to see the daemon's disk")]
    return []


# Every check, in the order a person reads them: adding a check is adding a function here.
CHECKS: list[Callable[[Doctor], list[Check]]] = [daemon, lan_registries, hub, node_mirror, runner_shape, clock, disk]


def run_checks(clients: Clients, *, lan_registries: list[str], hub_registry: str = DOCKER_HUB,
               repo: str | None = None, tag: str | None = None, timeout: float = 3.0,
               min_free_gb: float = 50.0) -> list[Check]:
    """`clients` should not retry: a check reports what happens now, fast."""
    d = Doctor(clients, [normalize_registry(lan) for lan in lan_registries], normalize_registry(hub_registry),
               repo, tag, timeout, min_free_gb)
    for check in CHECKS:
        d.checks += check(d)
    return d.checks


def helper_at_hand(engine: Any) -> str:
    """The helper image resolve would run on the daemon's host, if the daemon has it at this version."""
    ref = f"{HELPER_REPO}:{helper_tag()}"
    return ref if image_version(engine, ref) == __version__ else ""


def daemon_reaches_loopback(clients: Clients, timeout: float) -> tuple[bool, str]:
    """Whether the daemon reaches this process's 127.0.0.1: the question resolve's fast pull asks
    first, asked the same way (the daemon inspects a tiny image served on an endpoint here)."""
    from lanmirror.serve import BlobSources, Endpoint
    from lanmirror.serve.image import ServedImage

    def nothing(digest: str) -> Any:
        raise LanmirrorError(f"doctor serves no image but its probe ({digest[:19]}…)")

    image = ServedImage(nothing)
    with Endpoint("lanmirror-doctor/probe", image, BlobSources([], clients.policy)) as endpoint:
        probe = clients.engine(max(timeout, 5.0))
        assert probe is not None
        try:
            probe.inspect_distribution(f"{endpoint.name}@{image.probe.digest}")
        except LanmirrorError as exc:
            return False, describe(exc)
    return True, ""


def shape_checks(d: Doctor) -> list[Check]:
    """Where the daemon runs relative to this job, and what resolve's pull does there: the fast
    pull (parallel ranges) needs the daemon to reach this process's loopback and this process to
    reach the LAN; a throwaway image store makes every job pay the whole pull."""
    engine, clients, timeout = d.engine, d.clients, d.timeout
    rootless = any("rootless" in str(o) for o in d.info.get("SecurityOptions") or [])
    reaches, why = daemon_reaches_loopback(clients, timeout)
    if reaches:
        shape = ("the daemon shares this job's network namespace (a host runner, or docker-in-docker in the "
                 "job's pod): it reaches this process's 127.0.0.1")
    elif rootless:
        shape = "the daemon is rootless with host loopback off: it does not reach this process's 127.0.0.1"
    else:
        shape = ("the daemon runs in another network namespace (docker outside of docker: this job drives the "
                 f"host's daemon through its socket); it does not reach this process's 127.0.0.1 ({why})")
    out = [Check("runner shape", OK if reaches else WARN, shape,
                 "" if reaches else "run the job on the daemon's network (host network for the runner pod, or "
                 "docker-in-docker in the pod) for parallel-range pulls")]
    helper = helper_at_hand(engine) if not reaches else None
    for lan in d.lans:
        here, there = lan in d.from_job, lan in d.from_daemon
        if reaches and here:
            path, status = "endpoint: parallel ranges from every replica, read by this process", OK
        elif there and helper:
            path, status = (f"endpoint-on-host: a helper container ({helper}) on the daemon's host network reads "
                            "it in parallel ranges", OK)
        elif there:
            path, status = ("daemon: the daemon pulls directly, one stream per layer ("
                            + ("it cannot reach this job's endpoint, and no helper image "
                               f"{HELPER_REPO}:{helper_tag()} is on the daemon" if not reaches else
                               "this job cannot read the LAN") + ")"), WARN
        else:
            path, status = "none: neither this job nor the daemon reaches it; resolve uses the Hub", FAIL
        out.append(Check(f"fast pull from {lan}", status, path))
    try:
        count = engine.image_count()
    except LanmirrorError as exc:
        out.append(Check("image store", WARN, f"could not list images: {describe(exc)}"))
    else:
        if count == 0:
            out.append(Check("image store", WARN, "the daemon holds no image: if it is empty at every job's start "
                             "(docker-in-docker on throwaway storage), every job pulls every layer",
                             "keep the daemon's data root on a persistent volume, or warm it"))
        else:
            out.append(Check("image store", OK, f"{count} image(s) held"))
    return out


def to_json(checks: list[Check]) -> dict[str, Any]:
    return {"ok": all(c.status != FAIL for c in checks), "checks": [asdict(c) for c in checks]}
