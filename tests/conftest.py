"""Fixtures: one real stack per test session (dockerd, three registries, token server, proxies).

A missing daemon or binary is an error, never a skip: CI must not go green on a broken stack.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.stack import Stack

# -- nothing leaves this machine -----------------------------------------------------------------
# Tests may reach loopback and the veth addresses of the network namespaces they create
# (10.210.0.0/16); any other destination, or a DNS lookup of another name, fails the test at once
# instead of sending a packet (names like registry.example appear in tests as data only).
_ALLOWED = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"), ipaddress.ip_network("10.210.0.0/16"))
_real_connect = socket.socket.connect
_real_getaddrinfo = socket.getaddrinfo


def _allowed(host: object) -> bool:
    try:
        return any(ipaddress.ip_address(str(host)) in net for net in _ALLOWED)
    except ValueError:
        return host in ("localhost", None)


def _guarded_connect(self: socket.socket, address: object) -> None:
    if self.family in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple) and not _allowed(address[0]):
        raise OSError(f"test guard: connection to {address[0]} refused (only loopback and the tests' own veths)")
    return _real_connect(self, address)


def _guarded_getaddrinfo(host: object, *args: object, **kwargs: object) -> object:
    if not _allowed(host.decode() if isinstance(host, bytes) else host):
        raise socket.gaierror(f"test guard: no lookup of {host!r} (only loopback names)")
    return _real_getaddrinfo(host, *args, **kwargs)  # type: ignore[arg-type]


socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
socket.getaddrinfo = _guarded_getaddrinfo  # type: ignore[assignment]


@pytest.fixture(scope="session")
def _stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("stack")
    stack = Stack.create(root).start()
    docker_config = root / "docker-config"
    docker_config.mkdir()
    saved = {k: os.environ.get(k) for k in ("DOCKER_HOST", "DOCKER_CONFIG", "LANMIRROR_CACHE")}
    os.environ["DOCKER_HOST"] = stack.docker_host
    os.environ["DOCKER_CONFIG"] = str(docker_config)
    os.environ["LANMIRROR_CACHE"] = str(root / "lanmirror-cache")  # remembered auth challenges
    try:
        yield stack
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        stack.stop()


@pytest.fixture(scope="session")
def lanmirror_image(_stack: Stack) -> str:
    """lanmirror's own image at the tests' version, on both engines (built once, nothing pulled),
    under the name resolve looks for its helper by default."""
    import lanmirror
    from lanmirror.ops.resolve.onhost import HELPER_REPO, helper_tag
    from tests.stack import lmimage

    tag = f"{HELPER_REPO}:{helper_tag()}"
    engines = _stack.engines()
    first = {**_stack.env(), "DOCKER_HOST": engines["20.10-classic"]}
    lmimage.build(first, tag, lanmirror.__version__)
    lmimage.copy(tag, first, {**_stack.env(), "DOCKER_HOST": engines["26.1-containerd"]})
    return tag


@pytest.fixture
def stack(_stack: Stack) -> Iterator[Stack]:
    """The session stack with every fault cleared and every proxy log emptied."""
    _stack.clear_faults()
    yield _stack
    _stack.clear_faults()


@pytest.fixture(params=["20.10-classic", "26.1-containerd"])
def engine(stack: Stack, request: pytest.FixtureRequest) -> str:
    """Each of the two Docker engines in turn (its DOCKER_HOST): Engine 20.10 with the classic
    image store, and Engine 26.1 with the containerd image store."""
    return stack.engines()[request.param]


@pytest.fixture
def repo(request: pytest.FixtureRequest) -> str:
    """A repository name unique to the test, so tests never see each other's tags."""
    name = request.node.name.lower()
    safe = "".join(c if c.isalnum() else "-" for c in name).strip("-")
    while "--" in safe:
        safe = safe.replace("--", "-")
    return f"test/{safe[:80].rstrip('-')}"


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    return tmp_path


# -- secrets never leak -------------------------------------------------------------------------
# Every test's captured stdout, stderr and logs, and every subprocess output collected through
# tests.helpers, is searched for the test passwords (the Hub's and the LAN's); a hit fails that test.

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or report.failed:
        return
    from tests.helpers import SEEN_OUTPUT
    from tests.stack import SECRETS

    texts = [content for _, content in report.sections] + SEEN_OUTPUT
    SEEN_OUTPUT.clear()
    for secret in SECRETS:
        leaks = [t for t in texts if secret in t.replace(f"::add-mask::{secret}", "")]
        if leaks:
            report.outcome = "failed"
            at = leaks[0].find(secret)
            context = leaks[0][max(0, at - 300):at + 300].replace(secret, "<THE PASSWORD>")
            report.longrepr = f"the test password appeared in output:\n{context}"
            return
