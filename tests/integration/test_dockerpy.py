"""What lanmirror relies on in docker-py's private API (daemon/dockerpy.py), pinned on both
engines: the pull request `APIClient.pull` makes, its decoded progress stream, a cut that ends
the blocked reader and cancels the pull, and the auth lookup docker-py makes on its own. A
docker-py release that changes any of these fails here, not in a job."""

from __future__ import annotations

import base64
import json
import threading
import time

import docker
import docker.auth
import pytest

from lanmirror.authn.dockerconfig import PinnedAuthConfig
from lanmirror.daemon import Engine
from lanmirror.daemon.dockerpy import PullStream, pin_auth_configs
from tests.helpers import publish

pytestmark = pytest.mark.integration
BASE = "v0.5.5-rocm700-mi30x"


def test_a_pull_stream_reads_to_its_end_and_the_image_is_there(stack, repo, engine):
    img = publish(stack, repo, BASE, 1, hub=False, lan=True, size=200_000, layers=2)
    api = Engine(engine).api
    stream = PullStream(api, {"fromImage": f"{stack.lan}/{repo}@{img.digest}"}, {})
    stream.raise_for_status()
    messages = list(stream.messages())
    stream.close()
    assert all(isinstance(m, dict) for m in messages) and messages
    assert any("Digest: " + img.digest in str(m.get("status", "")) or m.get("status") == "Download complete"
               for m in messages), messages
    assert Engine(engine).local_image(f"{stack.lan}/{repo}@{img.digest}") is not None


def test_a_missing_image_is_an_error_in_the_stream_or_the_status(stack, repo, engine):
    api = Engine(engine).api
    stream = PullStream(api, {"fromImage": f"{stack.lan}/{repo}", "tag": "no-such-tag"}, {})
    try:
        stream.raise_for_status()
        errors = [m for m in stream.messages() if "error" in m or "errorDetail" in m]
    except docker.errors.APIError as exc:  # the containerd store answers 404 before any stream
        errors = [{"error": str(exc)}]
    assert errors and ("not found" in str(errors[0]).lower() or "unknown" in str(errors[0]).lower()), errors


def test_abort_ends_a_blocked_reader_at_once_and_the_daemon_drops_the_pull(stack, repo, engine):
    img = publish(stack, repo, BASE, 1, hub=False, lan=True, size=4 << 20, layers=1)
    stack.lan_proxy.break_body("stall", after=64 << 10, count=100)  # every blob read hangs after 64 KiB
    api = Engine(engine).api
    stream = PullStream(api, {"fromImage": f"{stack.lan}/{repo}@{img.digest}"}, {})
    stream.raise_for_status()
    ended = threading.Event()
    seen: list[dict] = []

    def read() -> None:
        try:
            for m in stream.messages():
                seen.append(m)
        except Exception:
            pass
        finally:
            ended.set()

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + 30
    while not any(m.get("status") == "Downloading" for m in seen) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not ended.is_set(), "the stream must be blocked on the stalled layer"
    started = time.monotonic()
    stream.abort()
    assert ended.wait(5), "abort wakes the reader"
    assert time.monotonic() - started < 5
    stream.abort()  # twice is harmless
    stream.close()
    stack.lan_proxy.clear()
    assert Engine(engine).local_image(f"{stack.lan}/{repo}@{img.digest}") is None


def test_pinned_auth_configs_are_what_docker_py_looks_up(stack):
    api = docker.APIClient(base_url=stack.docker_host, version="auto")
    pin_auth_configs(api, PinnedAuthConfig({"auths": {"lan.example:5000": {"username": "u", "password": "p"}}}, {}))
    header = docker.auth.get_config_header(api, "lan.example:5000")
    assert header, "docker-py looked the registry up in the pinned configs"
    sent = json.loads(base64.urlsafe_b64decode(header + b"=" * (-len(header) % 4)))
    assert (sent.get("username"), sent.get("password")) == ("u", "p")
    assert docker.auth.get_config_header(api, "other.example:5000") is None
