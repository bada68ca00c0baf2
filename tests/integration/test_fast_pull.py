"""The daemon pulls through lanmirror's loopback endpoint (parallel ranges, every replica), on both
engines: names and RepoDigests as a direct pull leaves them, integrity, hand-offs, fallback."""

from __future__ import annotations

import json
import re

import pytest
import requests

from lanmirror.daemon import Engine
from tests.helpers import publish, run_cli, run_cli_isolated, tag_for

pytestmark = pytest.mark.integration
BASE = "v0.5.5-rocm700-mi30x"
LOOPBACK_NAME = re.compile(r"/[0-9a-f]{24}/")


def resolve(stack, repo, *extra: str, engine: str | None = None, lans: tuple[str, ...] = ()):
    lan_args = [x for lan in lans for x in ("--lan-registry", lan)]
    env = {"DOCKER_HOST": engine} if engine else None
    proc = run_cli(stack, "resolve", "--repo", repo, "--base-tag", BASE, "--hub-registry", stack.hub, *lan_args,
                   "--json", *extra, env=env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout), proc.stderr


def names(engine: str) -> list[str]:
    api = Engine(engine).api
    return [n for img in api.images() for n in (img.get("RepoTags") or []) + (img.get("RepoDigests") or [])]


def test_a_pull_through_the_endpoint_is_named_as_a_direct_pull_and_then_a_verified_cache_hit(stack, repo, engine):
    img = publish(stack, repo, BASE, 1, hub=True, lan=True, size=300_000, layers=3)
    res, err = resolve(stack, repo, "--pull-via", "ranges", engine=engine, lans=(stack.lan,))
    assert (res["source"], res["digest"], res["verified"]) == ("lan", img.digest, True)
    pulled = [a for a in res["attempts"] if a["result"].startswith("pulled")]
    assert pulled[0]["path"] == "ranges" and pulled[0]["bytes"] >= 3 * 300_000, pulled
    local = Engine(engine).local_image(f"{stack.hub}/{repo}:{tag_for(BASE, 1)}")
    assert local is not None and any(d.endswith("@" + img.digest) for d in local.repo_digests), local
    assert [n for n in names(engine) if LOOPBACK_NAME.search(n)] == []
    assert stack.lan_proxy.bytes_out() >= 3 * 300_000  # the blobs came from the LAN, through us
    again, _ = resolve(stack, repo, engine=engine, lans=(stack.lan,))
    assert (again["source"], again["digest"], again["verified"]) == ("local", img.digest, True)
