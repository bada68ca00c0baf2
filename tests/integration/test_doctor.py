"""lanmirror doctor against the real stack: healthy, a dead LAN, bad credentials, no daemon."""

import json

import pytest

from tests.helpers import publish, run_cli, run_cli_isolated
from tests.stack import HUB_PASSWORD, HUB_USER

pytestmark = pytest.mark.integration


def doctor(stack, *args, env=None):
    proc = run_cli(stack, "doctor", "--hub-registry", stack.hub, "--timeout", "1.5", "--json", *args, env=env)
    assert proc.stdout.startswith("{"), proc.stderr[-2000:]
    return proc, json.loads(proc.stdout)


def by_name(report):
    return {c["name"]: c for c in report["checks"]}


def test_healthy_stack(stack, repo):
    publish(stack, repo, "b", 0, hub=True)
    proc, report = doctor(stack, "--lan-registry", stack.lan, "--repo", repo, "--tag", "latest",
                          env={"DOCKERHUB_USERNAME": HUB_USER, "DOCKERHUB_TOKEN": HUB_PASSWORD})
    checks = by_name(report)
    assert proc.returncode == 0 and report["ok"], proc.stdout
    assert checks["docker daemon"]["status"] == "ok"
    assert checks[f"LAN {stack.lan} from this process"]["status"] == "ok"
    assert checks[f"LAN {stack.lan} from the daemon"]["status"] == "ok"
    assert checks["Hub credentials"]["detail"].startswith("user 'ci-bot' accepted")
    assert "pulls left" in checks["Hub rate limit"]["detail"]
    assert checks[f"clock vs LAN {stack.lan}"]["status"] == "ok"
    assert "GB free" in checks["free disk in the daemon's data root"]["detail"]
    assert stack.hub_proxy.counted_gets() == 0


def test_dead_lan_and_bad_credentials_fail_with_fixes(stack):
    stack.lan_proxy.mode = "refuse"
    proc, report = doctor(stack, "--lan-registry", stack.lan,
                          env={"DOCKERHUB_USERNAME": HUB_USER, "DOCKERHUB_TOKEN": "nope"})
    checks = by_name(report)
    assert proc.returncode == 1 and not report["ok"]
    lan = checks[f"LAN {stack.lan} from this process"]
    assert lan["status"] == "fail" and "unreachable" in lan["detail"] and lan["fix"]
    assert checks[f"LAN {stack.lan} from the daemon"]["status"] == "fail"
    creds = checks["Hub credentials"]
    assert creds["status"] == "fail" and "authentication failed" in creds["detail"]


def test_no_daemon(stack):
    proc, report = doctor(stack, env={"DOCKER_HOST": "unix:///nonexistent.sock"})
    assert proc.returncode == 1
    assert by_name(report)["docker daemon"]["status"] == "fail"
    assert "DOCKER_HOST" in by_name(report)["docker daemon"]["fix"]
    # What could not be checked says so, instead of vanishing from the report.
    assert by_name(report)["free disk in the daemon's data root"]["detail"].startswith("not checked")
    assert by_name(report)["runner shape"]["detail"].startswith("not checked")


def test_a_lan_that_accepts_and_never_answers_names_the_hop_that_failed(stack):
    """The daemon answers; its own request to the LAN is what times out. The report says so, and
    does not call the daemon unreachable."""
    stack.lan_proxy.mode = "blackhole"
    proc, report = doctor(stack, "--lan-registry", stack.lan)
    assert proc.returncode == 1
    checks = by_name(report)
    assert checks["docker daemon"]["status"] == "ok"
    hop = checks[f"LAN {stack.lan} from the daemon"]
    assert hop["status"] == "fail" and "not reachable" not in hop["detail"]
    assert "the daemon answered" in hop["detail"] and f"daemon → {stack.lan}" in hop["detail"], hop


def test_doctor_names_the_runner_shape_and_the_pull_path(stack, repo, engine):
    """Where the daemon runs relative to the job, asked the way resolve asks it: in one namespace
    the fast pull reads the LAN from here; in docker outside of docker (the job in its own network
    namespace, the host's daemon through its socket) the daemon pulls directly, and doctor says so."""
    publish(stack, repo, "b", 0, hub=True)
    _, report = doctor(stack, "--lan-registry", stack.lan, env={"DOCKER_HOST": engine})
    checks = by_name(report)
    assert checks["runner shape"]["status"] == "ok" and "shares this job's network" in checks["runner shape"]["detail"]
    assert checks[f"fast pull from {stack.lan}"]["detail"].startswith("endpoint: parallel ranges")
    assert checks["image store"]["status"] in ("ok", "warn")
    proc = run_cli_isolated(stack, "doctor", "--hub-registry", stack.hub, "--timeout", "1.5", "--json",
                            "--lan-registry", stack.lan, env={"DOCKER_HOST": engine})
    checks = by_name(json.loads(proc.stdout))
    shape = checks["runner shape"]
    assert shape["status"] == "warn" and "docker outside of docker" in shape["detail"] and shape["fix"], shape
    assert checks[f"LAN {stack.lan} from this process"]["status"] == "fail"
    # Without lanmirror's image on the daemon (test_runner_shapes.py has the case with one).
    if "endpoint-on-host" not in checks[f"fast pull from {stack.lan}"]["detail"]:
        assert checks[f"fast pull from {stack.lan}"]["detail"].startswith("daemon: the daemon pulls directly")
