"""Fixtures: one real stack per test session (dockerd, three registries, token server, proxies).

A missing daemon or binary is an error, never a skip: CI must not go green on a broken stack.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.stack import Stack


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


@pytest.fixture
def stack(_stack: Stack) -> Iterator[Stack]:
    """The session stack with every fault cleared and every proxy log emptied."""
    _stack.clear_faults()
    yield _stack
    _stack.clear_faults()


@pytest.fixture
def repo(request: pytest.FixtureRequest) -> str:
    """A repository name unique to the test, so tests never see each other's tags."""
    name = request.node.name.lower()
    safe = "".join(c if c.isalnum() else "-" for c in name).strip("-")
    while "--" in safe:
        safe = safe.replace("--", "-")
    return f"test/{safe[:80]}"


@pytest.fixture
def tmp(tmp_path: Path) -> Path:
    return tmp_path


# -- secrets never leak -------------------------------------------------------------------------
# Every test's captured stdout, stderr and logs, and every subprocess output collected through
# tests.helpers, is searched for the test credentials; a hit fails that test.

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or report.failed:
        return
    from tests.helpers import SEEN_OUTPUT
    from tests.stack import HUB_PASSWORD

    texts = [content for _, content in report.sections] + SEEN_OUTPUT
    SEEN_OUTPUT.clear()
    leaks = [t for t in texts if HUB_PASSWORD in t.replace(f"::add-mask::{HUB_PASSWORD}", "")]
    if leaks:
        report.outcome = "failed"
        at = leaks[0].find(HUB_PASSWORD)
        context = leaks[0][max(0, at - 300):at + 300].replace(HUB_PASSWORD, "<THE PASSWORD>")
        report.longrepr = f"the test password appeared in output:\n{context}"
