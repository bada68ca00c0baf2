"""The fast pull in each runner shape, on both engines.

* host runner: the job and the host's daemon in one network namespace (test_fast_pull.py);
* docker-in-docker in the job's pod: a daemon of its own in the job's network namespace, with a
  throwaway data root (every job pulls everything), the registries reached from there;
* docker outside of docker: the job in a network namespace of its own, driving the host's daemon
  through its socket; the Hub answers it, the LAN answers only the daemon, and the daemon does not
  reach the job's 127.0.0.1. The endpoint then runs where the daemon is: a helper container of
  lanmirror's own image on the daemon's host network."""

from __future__ import annotations

import contextlib
import json
import re
import signal
import subprocess
import time
import uuid

import docker
import pytest

import lanmirror
from lanmirror.daemon import Engine
from lanmirror.daemon.helper import LABEL
from lanmirror.ops.resolve.onhost import helper_tag
from tests.helpers import LANMIRROR, SEEN_OUTPUT, publish, run_cli, tag_for
from tests.stack.daemons import Dockerd
from tests.stack.engine26 import ChrootDockerd
from tests.stack.shapes import Namespace

pytestmark = pytest.mark.integration
BASE = "v0.5.5-rocm700-mi30x"
HELPER = f"lanmirror/lanmirror:{helper_tag()}"
LOOPBACK_NAME = re.compile(r"/[0-9a-f]{24}/")


@pytest.fixture
def helper_image(lanmirror_image) -> str:
    return lanmirror_image


def dood(stack) -> Namespace:
    """The job's own network namespace: the Hub and its token service answer there, no LAN does."""
    return Namespace([int(stack.hub.rsplit(":", 1)[1]), int(stack.token_proxy.address.rsplit(":", 1)[1])])


def resolve_in(ns: Namespace, stack, repo: str, engine: str, *extra: str, timeout: float = 300):
    proc = run_cli(stack, "resolve", "--repo", repo, "--base-tag", BASE, "--hub-registry", stack.hub,
                   "--lan-registry", stack.lan, "--json", *extra, env={"DOCKER_HOST": engine}, prefix=ns.prefix,
                   timeout=timeout)
    return proc, (json.loads(proc.stdout) if proc.returncode == 0 else None)


def helpers(engine: str) -> list[dict]:
    api = docker.APIClient(base_url=engine, version="auto")
    return api.containers(all=True, filters={"label": LABEL})


def helpers_gone(engine: str, within: float = 20.0) -> bool:
    """Whether every helper is gone within `within` seconds: one stops when its job closes the
    attach connection, and the daemon removes it (AutoRemove) a moment later."""
    ends = time.monotonic() + within
    while helpers(engine) and time.monotonic() < ends:
        time.sleep(0.2)
    return helpers(engine) == []


def test_docker_outside_of_docker_pulls_through_a_helper_on_the_daemons_host(stack, repo, engine, helper_image):
    img = publish(stack, repo, BASE, 1, hub=True, lan=True, size=400_000, layers=2)
    with dood(stack) as ns:
        proc, res = resolve_in(ns, stack, repo, engine, "--pull-via", "ranges")
        assert res is not None, proc.stderr[-3000:]
        assert (res["source"], res["digest"], res["verified"]) == ("lan", img.digest, True)
        pulled = [a for a in res["attempts"] if a["result"].startswith("pulled")]
        assert pulled[0]["path"] == "endpoint-on-host", res["attempts"]
        lan_row = next(a for a in res["attempts"] if a["registry"] == stack.lan and a["path"] == "endpoint-on-host")
        assert lan_row["bytes"] >= 2 * 400_000, lan_row  # the helper read the LAN the job cannot reach
        assert any(a["source"] == "endpoint-on-host" and "up in" in a["result"] for a in res["attempts"])
        local = Engine(engine).local_image(f"{stack.hub}/{repo}:{tag_for(BASE, 1)}")
        assert local is not None and any(d.endswith("@" + img.digest) for d in local.repo_digests), local
        api = Engine(engine).api
        names = [n for i in api.images() for n in (i.get("RepoTags") or []) + (i.get("RepoDigests") or [])]
        assert [n for n in names if LOOPBACK_NAME.search(n) and repo in n] == []
        again_proc, again = resolve_in(ns, stack, repo, engine)
        assert again is not None, again_proc.stderr[-2000:]
        assert (again["source"], again["digest"], again["verified"]) == ("local", img.digest, True)
    assert helpers_gone(engine)  # the helper is gone with its pull
    assert stack.hub_proxy.counted_gets() == 0


def test_without_a_helper_image_the_daemon_pulls_directly_and_says_why(stack, repo):
    img = publish(stack, repo, BASE, 1, hub=True, lan=True)
    with dood(stack) as ns:
        proc, res = resolve_in(ns, stack, repo, stack.docker_host, "--helper-image", "local/no-such-helper:1")
    assert res is not None, proc.stderr[-2000:]
    assert (res["source"], res["digest"]) == ("lan", img.digest)
    said = [a["result"] for a in res["attempts"] if a["source"] == "endpoint"]
    assert len(said) == 1 and "no helper image (local/no-such-helper:1)" in said[0], res["attempts"]
    assert "--helper-image" in said[0]


def test_a_helper_image_of_another_version_is_refused_in_one_line(stack, repo, helper_image):
    img = publish(stack, repo, BASE, 1, hub=True, lan=True)
    other = f"local/lanmirror-other:{uuid.uuid4().hex[:6]}"
    build = subprocess.run(["docker", "build", "-q", "--network", "none", "-t", other, "-"],
                           input=f"FROM {helper_image}\nLABEL org.opencontainers.image.version=0.0.1-other\n",
                           env={**stack.env(), "DOCKER_BUILDKIT": "0"}, text=True, capture_output=True)
    assert build.returncode == 0, build.stderr
    with dood(stack) as ns:
        proc, res = resolve_in(ns, stack, repo, stack.docker_host, "--helper-image", other)
    assert res is not None, proc.stderr[-2000:]
    assert res["digest"] == img.digest
    said = [a["result"] for a in res["attempts"] if a["source"] == "endpoint"]
    assert len(said) == 1 and f"is lanmirror 0.0.1-other, this job runs {lanmirror.__version__}" in said[0], said
    assert helpers_gone(stack.docker_host)


def test_a_corrupt_lan_blob_through_the_helper_is_blamed_and_the_hub_finishes(stack, repo, helper_image):
    img = publish(stack, repo, BASE, 1, hub=True, lan=True, size=300_000, layers=1)
    stack.lan_proxy.break_body("corrupt", after=1000, count=1000, path=img.layer_digests[0])
    with dood(stack) as ns:
        proc, res = resolve_in(ns, stack, repo, stack.docker_host, "--pull-via", "ranges")
    assert res is not None, proc.stderr[-3000:]
    assert res["digest"] == img.digest
    rows = {a["registry"]: a for a in res["attempts"] if a["path"] == "endpoint-on-host" and a["source"] in
            ("lan", "hub") and not a["result"].startswith("pulled")}
    assert "served wrong bytes" in rows[stack.lan]["result"], res["attempts"]
    assert "wrong bytes" not in rows.get(stack.hub, {}).get("result", ""), rows


def test_two_jobs_on_one_daemon_pull_at_once(stack, repo, helper_image):
    imgs = [publish(stack, f"{repo}-{i}", BASE, 1, hub=True, lan=True, size=300_000, layers=2) for i in range(2)]
    with dood(stack) as ns:
        procs = [subprocess.Popen([*ns.prefix, LANMIRROR, "resolve", "--repo", f"{repo}-{i}", "--base-tag", BASE,
                                   "--hub-registry", stack.hub, "--lan-registry", stack.lan, "--json", "--pull-via",
                                   "ranges"], env=stack.env(), text=True, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE) for i in range(2)]
        outs = [p.communicate(timeout=300) for p in procs]
    SEEN_OUTPUT.extend(o for pair in outs for o in pair)
    for p, (out, err), img in zip(procs, outs, imgs, strict=True):
        assert p.returncode == 0, err[-2000:]
        res = json.loads(out)
        assert res["digest"] == img.digest
        assert [a["path"] for a in res["attempts"] if a["result"].startswith("pulled")] == ["endpoint-on-host"]
    assert helpers_gone(stack.docker_host)


def test_a_job_killed_mid_pull_leaves_no_helper_and_the_next_run_works(stack, repo, helper_image):
    img = publish(stack, repo, BASE, 1, hub=True, lan=True, size=4 << 20, layers=1)
    stack.lan_proxy.conn_rate = 200_000  # a slow LAN: the pull is still running when the job is killed
    with dood(stack) as ns:
        job = subprocess.Popen([*ns.prefix, LANMIRROR, "resolve", "--repo", repo, "--base-tag", BASE,
                                "--hub-registry", stack.hub, "--lan-registry", stack.lan, "--pull-via", "ranges",
                                "--min-pull-rate", "0"], env=stack.env(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        ends = time.monotonic() + 60
        while not helpers(stack.docker_host) and time.monotonic() < ends:
            time.sleep(0.2)
        assert helpers(stack.docker_host), "no helper started"
        time.sleep(1.0)
        job.send_signal(signal.SIGKILL)
        job.wait()
        ends = time.monotonic() + 30
        while helpers(stack.docker_host) and time.monotonic() < ends:
            time.sleep(0.2)
        assert helpers(stack.docker_host) == []  # its stdin ended with the job: it stopped, the daemon removed it
        assert Engine(stack.docker_host).ping()
        stack.lan_proxy.conn_rate = None
        proc, res = resolve_in(ns, stack, repo, stack.docker_host, "--pull-via", "ranges")
    assert res is not None, proc.stderr[-2000:]
    assert res["digest"] == img.digest


def port(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


@pytest.fixture(params=["20.10-classic", "26.1-containerd"])
def dind(stack, request, tmp_path_factory):
    """A job's pod with docker-in-docker: its own daemon in its own network namespace, on a fresh
    data root, reaching the Hub and the LAN from there."""
    with Namespace([port(stack.hub), port(stack.token_proxy.address), port(stack.lan)]) as ns:
        root = tmp_path_factory.mktemp("dind")
        daemon = (Dockerd(root / "d20", prefix=ns.prefix) if request.param == "20.10-classic"
                  else ChrootDockerd(root / "d26", prefix=ns.prefix)).start()
        try:
            yield ns, daemon.host
        finally:
            daemon.stop()


def test_docker_in_docker_in_the_jobs_pod_pulls_through_the_endpoint_in_the_job(stack, repo, dind):
    ns, host = dind
    img = publish(stack, repo, BASE, 1, hub=True, lan=True, size=400_000, layers=2)
    assert Engine(host).image_count() == 0  # a throwaway store: every job pays the whole pull
    proc, res = resolve_in(ns, stack, repo, host, "--pull-via", "ranges")
    assert res is not None, proc.stderr[-3000:]
    assert (res["source"], res["digest"], res["verified"]) == ("lan", img.digest, True)
    assert [a["path"] for a in res["attempts"] if a["result"].startswith("pulled")] == ["ranges"]
    local = Engine(host).local_image(f"{stack.hub}/{repo}:{tag_for(BASE, 1)}")
    assert local is not None and any(d.endswith("@" + img.digest) for d in local.repo_digests), local
    again_proc, again = resolve_in(ns, stack, repo, host)
    assert again is not None, again_proc.stderr[-2000:]
    assert (again["source"], again["digest"], again["verified"]) == ("local", img.digest, True)
    assert helpers(host) == []  # the daemon reaches the job's loopback: no helper was started


def test_doctor_says_a_helper_serves_the_ranges_where_the_daemon_is(stack, helper_image):
    with dood(stack) as ns:
        proc = run_cli(stack, "doctor", "--hub-registry", stack.hub, "--timeout", "1.5", "--json", "--lan-registry",
                       stack.lan, prefix=ns.prefix)
    checks = {c["name"]: c for c in json.loads(proc.stdout)["checks"]}
    assert "docker outside of docker" in checks["runner shape"]["detail"]
    said = checks[f"fast pull from {stack.lan}"]
    assert said["status"] == "ok" and said["detail"].startswith(f"endpoint-on-host: a helper container ({HELPER})")


def test_reap_leaves_a_helper_being_started_and_removes_one_left_behind(stack, helper_image):
    from lanmirror.daemon.helper import DEADLINE, reap

    api = docker.APIClient(base_url=stack.docker_host, version="auto")
    created = api.create_container(helper_image, labels={LABEL: "1", DEADLINE: str(int(time.time() + 600))})["Id"]
    try:
        engine = Engine(stack.docker_host)
        assert reap(engine) == 0  # another job's, between its creation and its start
        assert reap(engine, now=time.time() + 3600) == 1  # past its deadline: left behind
        assert helpers_gone(stack.docker_host)
    finally:
        with contextlib.suppress(docker.errors.NotFound):
            api.remove_container(created, force=True)
