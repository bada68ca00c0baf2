"""Small helpers shared by the integration tests."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import uuid
from pathlib import Path

from tests.stack import Stack, images

TODAY = dt.datetime.now(dt.timezone.utc).date()
LANMIRROR = str(Path(sys.executable).with_name("lanmirror"))
# Every subprocess output the tests collect; conftest checks it for leaked credentials.
SEEN_OUTPUT: list[str] = []


def tag_for(base: str, days_ago: int, today: dt.date = TODAY) -> str:
    return f"{base}-{today - dt.timedelta(days=days_ago):%Y%m%d}"


def publish(stack: Stack, repo: str, base: str, days_ago: int, *, hub: bool = True, lan: bool = False,
            lan2: bool = False, size: int = 20_000, layers: int = 2, variant: str = "") -> images.Image:
    """Push a synthetic nightly `<base>-<date>` to the Hub and/or the LAN registries, then reset the
    proxies' logs and faults."""
    tag = tag_for(base, days_ago)
    img = images.build([f"{repo}-{tag}-{i}{variant}" for i in range(layers)], size)
    if hub:
        images.push(stack.hub_client(), repo, tag, img)
    if lan:
        images.push(stack.client(stack.lan), repo, tag, img)
    if lan2:
        images.push(stack.client(stack.lan2), repo, tag, img)
    stack.clear_faults()  # tests count only what happens after the setup
    return img


def run_cli(stack: Stack, *args: str, env: dict[str, str] | None = None, timeout: float = 120,
            prefix: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**stack.env(), **(env or {})}
    full_env.setdefault("DOCKER_CONFIG", os.environ.get("DOCKER_CONFIG", ""))
    proc = subprocess.run([*(prefix or []), LANMIRROR, *args], env=full_env, text=True, capture_output=True,
                          timeout=timeout)
    SEEN_OUTPUT.extend([proc.stdout, proc.stderr])
    return proc


def run_cli_isolated(stack: Stack, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`run_cli` inside a fresh network namespace with only loopback up: where 127.0.0.1 is not the
    host's (a job container) and only the daemon's unix socket is shared."""
    ns = f"lmx{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"], check=True)
        return run_cli(stack, *args, env=env, prefix=["ip", "netns", "exec", ns])
    finally:
        subprocess.run(["ip", "netns", "delete", ns], check=False)


def forget(stack: Stack, repo: str) -> None:
    """Remove `repo` from the LAN registries and the daemon's cache (tests that share a fixed name,
    like the example workflows' rocm/sgl-dev, start from the same state whatever ran before)."""
    import docker

    for address in (stack.lan, stack.lan2):
        reg = stack.client(address)
        digests = {reg.head_manifest(repo, t).digest for t in reg.list_tags(repo)}  # type: ignore[union-attr]
        for digest in digests:
            reg.delete_manifest(repo, digest)
    api = docker.APIClient(base_url=stack.docker_host, version="auto")
    for image in api.images():
        for ref in image.get("RepoTags") or []:
            if ref.rsplit(":", 1)[0].endswith(repo):
                api.remove_image(ref, force=True)
    stack.clear_faults()
