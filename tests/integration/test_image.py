"""The container image: built offline from host-built wheels on a debootstrapped base, then run
against the stack with the host's Docker socket, as a non-root user."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.helpers import SEEN_OUTPUT, publish, tag_for

pytestmark = pytest.mark.integration


def sh(cmd: list[str], env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, env=env, text=True, capture_output=True, timeout=timeout)
    SEEN_OUTPUT.extend([proc.stdout, proc.stderr])
    assert proc.returncode == 0, f"{' '.join(cmd[:4])} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    return proc


@pytest.fixture
def image(lanmirror_image) -> str:
    """The Dockerfile built offline (tests.stack.lmimage, once a session), lanmirror at the tests' version."""
    return lanmirror_image


def test_image_metadata(_stack, image):
    info = json.loads(sh(["docker", "image", "inspect", image], _stack.env()).stdout)[0]
    assert info["Config"]["Entrypoint"] == ["lanmirror"]
    assert info["Config"]["User"] == "10001"
    assert info["Config"]["Labels"]["org.opencontainers.image.title"] == "lanmirror"
    said = sh(["docker", "run", "--rm", "--network", "none", image, "--version"], _stack.env()).stdout.strip()
    assert said == f"lanmirror {info['Config']['Labels']['org.opencontainers.image.version']}"


def test_image_resolves_against_the_stack_as_non_root(stack, repo, image):
    img = publish(stack, repo, "b", 1, hub=True, lan=True)
    sock = stack.docker_host.removeprefix("unix://")
    gid = os.stat(sock).st_gid
    os.chmod(sock, 0o660)
    proc = sh(["docker", "run", "--rm", "--network", "host", "-v", f"{sock}:/var/run/docker.sock",
               "--group-add", str(gid), image, "resolve", "--repo", repo, "--base-tag", "b", "--hub-registry",
               stack.hub, "--lan-registry", stack.lan, "--json"], stack.env())
    out = json.loads(proc.stdout)
    assert (out["source"], out["digest"], out["tag"]) == ("lan", img.digest, tag_for("b", 1))
    assert stack.hub_proxy.counted_gets() == 0
