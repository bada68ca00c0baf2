"""A shared self-hosted runner, tried as an attacker with write access to the runner's home would:
poisoned caches, a poisoned local tag, a tampered LAN registry, racing installs. Each test failed
on the code before the trust work (see the README's "Security model")."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from lanmirror.cmd.wiring import Clients
from lanmirror.daemon import Engine
from lanmirror.errors import LanmirrorError
from lanmirror.ops.resolve import ResolveOptions, resolve
from lanmirror.retry import RetryPolicy
from tests.consumer import ROOT
from tests.helpers import SEEN_OUTPUT, TODAY, publish, run_cli, tag_for
from tests.integration.test_actions import action_env, run_action
from tests.stack import HUB_CREDS, HUB_PASSWORD, HUB_USER
from tests.stack.proxy import FaultProxy
from tests.stack.tokens import SERVICE

pytestmark = pytest.mark.integration
BASE = "v0.5.5-rocm700-mi30x"
FAST = RetryPolicy(attempts=3, base=0.1, cap=0.5)
COMMANDS = ("::warning title=x::pwned", "::set-output name=image::evil", "::add-mask::x", "::error::fake")
HUB_ENV = {"DOCKERHUB_USERNAME": HUB_USER, "DOCKERHUB_TOKEN": HUB_PASSWORD}


@pytest.fixture
def capture(stack):
    """An attacker's server: it answers like the real token server and logs what it was sent."""
    proxy = FaultProxy(f"127.0.0.1:{stack.tokens.port}", "capture").start()
    yield proxy
    proxy.stop()


def poison_challenges(folder: Path, host: str, realm: str, mode: int = 0o600) -> Path:
    folder.mkdir(mode=0o700, exist_ok=True)
    path = folder / "challenges.json"
    path.write_text(json.dumps({host: {"scheme": "bearer", "params": {"realm": realm, "service": SERVICE}}}))
    path.chmod(mode)
    return path


def test_poisoned_challenge_cache_gets_no_credentials_and_the_newest_is_chosen(stack, repo, tmp_path, capture):
    publish(stack, repo, BASE, 1, hub=True)
    newest = publish(stack, repo, BASE, 0, hub=True)
    cache = tmp_path / "cache"
    poison_challenges(cache, stack.hub, f"http://{capture.address}/token")
    proc = run_cli(stack, "resolve", "--repo", repo, "--base-tag", BASE, "--hub-registry", stack.hub, "--no-pull",
                   "--json", env={**HUB_ENV, "LANMIRROR_CACHE": str(cache)})
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout)
    assert (res["tag"], res["digest"], res["degraded"]) == (tag_for(BASE, 0), newest.digest, False)
    assert [e.authorization for e in capture.log if e.authorization] == []


@pytest.mark.parametrize("how", ["group-writable", "another user's"])
def test_cache_files_others_could_write_are_ignored(stack, repo, tmp_path, capture, how):
    publish(stack, repo, BASE, 0, hub=True)
    cache = tmp_path / "cache"
    path = poison_challenges(cache, stack.hub, f"http://{capture.address}/token",
                             mode=0o666 if how == "group-writable" else 0o600)
    if how == "another user's":
        os.chown(path, 65534, 65534)
    proc = run_cli(stack, "resolve", "--repo", repo, "--base-tag", BASE, "--hub-registry", stack.hub, "--no-pull",
                   env={"LANMIRROR_CACHE": str(cache)})  # anonymous: a private file could be used
    assert proc.returncode == 0, proc.stderr
    assert capture.log == [] and f"ignoring {path}" in proc.stderr


def test_poisoned_local_tag_is_not_used_and_the_right_one_is_pulled(stack, repo, engine):
    host = engine
    good = publish(stack, repo, BASE, 1, hub=True)
    evil = publish(stack, f"{repo}-evil", BASE, 1, hub=True, variant="-evil")
    engine = Engine(host)
    tag = tag_for(BASE, 1)
    engine.pull(f"{stack.hub}/{repo}-evil@{evil.digest}", source="hub")
    engine.tag(f"{stack.hub}/{repo}-evil@{evil.digest}", f"{stack.hub}/{repo}", tag)
    stack.clear_faults()
    res = resolve(ResolveOptions(repo=repo, base_tags=[BASE], hub_registry=stack.hub, today=TODAY),
                  Clients(policy=FAST, docker_host=host))
    assert (res.source, res.digest, res.verified) == ("hub", good.digest, None)
    assert any("is not the image" in w for w in res.warnings)
    local = engine.local_image(f"{stack.hub}/{repo}:{tag}")
    assert local is not None and any(d.endswith(good.digest) for d in local.repo_digests)
    again = resolve(ResolveOptions(repo=repo, base_tags=[BASE], hub_registry=stack.hub, today=TODAY),
                    Clients(policy=FAST, docker_host=host))
    assert (again.source, again.digest, again.verified) == ("local", good.digest, True)
    assert stack.hub_proxy.counted_gets() == 1  # the one pull; verifying the cache is a free HEAD


def test_a_lan_only_newer_tag_loses_to_the_hubs_verified_nightly(stack, repo, engine):
    """Anyone on the LAN may push: a "newer" nightly that only the LAN has is not verified by
    anything, so the Hub's newest verified tag wins (here from the LAN, whose copy of it matches).
    Only --allow-unverified takes the LAN-only tag (here over the cached image: newest first),
    marked unverified."""
    real = publish(stack, repo, BASE, 1, hub=True, lan=True)
    planted = publish(stack, repo, BASE, 0, hub=False, lan=True, variant="-planted")
    proc = run_cli(stack, "resolve", "--repo", repo, "--base-tag", BASE, "--hub-registry", stack.hub,
                   "--lan-registry", stack.lan, "--json", env={"DOCKER_HOST": engine})
    assert proc.returncode == 0, proc.stderr[-1500:]
    out = json.loads(proc.stdout)
    assert (out["tag"], out["digest"], out["verified"], out["source"]) == (tag_for(BASE, 1), real.digest, True, "lan")
    assert any(f"{tag_for(BASE, 0)} is not on {stack.hub}" in w for w in out["warnings"]), out["warnings"]
    assert Engine(engine).local_image(f"{stack.hub}/{repo}:{tag_for(BASE, 0)}") is None  # never pulled
    assert not [e for e in stack.lan_proxy.entries("GET", "/manifests/") if planted.digest in e.path]
    proc = run_cli(stack, "resolve", "--repo", repo, "--base-tag", BASE, "--hub-registry", stack.hub,
                   "--lan-registry", stack.lan, "--json", "--no-pull", "--allow-unverified", "--policy", "newest",
                   env={"DOCKER_HOST": engine})
    assert proc.returncode == 0, proc.stderr[-1500:]
    out = json.loads(proc.stdout)
    assert (out["tag"], out["digest"], out["verified"]) == (tag_for(BASE, 0), planted.digest, False)
    assert any(w.startswith("UNVERIFIED:") for w in out["warnings"]), out["warnings"]


def lines_starting_commands(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.lstrip().startswith(COMMANDS)]


def mirror_refused_with(stack, repo: str, tmp_path: Path, message: str) -> subprocess.CompletedProcess[str]:
    """The mirror action against a LAN that refuses the manifest PUT with `message` (a tampered LAN
    writing into the Actions log and the job summary)."""
    publish(stack, repo, BASE, 0, layers=1)
    body = json.dumps({"errors": [{"code": "DENIED", "message": message}]}).encode()
    stack.lan_proxy.fail(400, 100, method="PUT", path="/manifests/", body=body)
    env = action_env(stack, tmp_path, {"repo": repo, "tags": tag_for(BASE, 0), "lan-registry": stack.lan,
                                       "source-registry": stack.hub})
    return run_action("mirror", env)


def test_workflow_commands_from_a_lan_registry_never_reach_the_log(stack, repo, tmp_path):
    proc = mirror_refused_with(stack, repo, tmp_path,
                               "denied\n" + "\n".join(COMMANDS) + "\n##[set-output name=image;]evil")
    assert proc.returncode == 1
    assert "pwned" in proc.stdout  # the text is shown, as text
    assert lines_starting_commands(proc.stdout + proc.stderr) == []
    assert "##[set-output" not in proc.stdout + proc.stderr
    assert "evil" not in (tmp_path / "GITHUB_OUTPUT").read_text() + (tmp_path / "GITHUB_ENV").read_text()
    summary = (tmp_path / "GITHUB_STEP_SUMMARY").read_text()
    assert "<" not in summary.replace("&lt;", "")


def test_workflow_commands_in_a_tag_file_never_reach_the_log(stack, repo, tmp_path):
    tags = tmp_path / "tags.txt"
    tags.write_text("\n".join(COMMANDS) + "\n")
    env = action_env(stack, tmp_path, {"repo": repo, "tag-file": str(tags), "lan-registry": stack.lan,
                                       "source-registry": stack.hub})
    proc = run_action("mirror", env)
    assert proc.returncode == 2 and "tags.txt:1" in proc.stdout
    assert lines_starting_commands(proc.stdout + proc.stderr) == []
    assert "evil" not in (tmp_path / "GITHUB_OUTPUT").read_text()


def test_cross_host_location_and_link_get_no_credentials(stack, repo):
    publish(stack, repo, BASE, 0, hub=True)
    publish(stack, repo, BASE, 1, hub=True)
    side = FaultProxy(stack.hub_registry.address, "side").start()
    try:
        stack.hub_proxy.rewrite_links_to = side.address
        with Clients(credentials={stack.hub: HUB_CREDS}, policy=FAST, daemon=False) as clients:
            hub = clients.registry(stack.hub)
            with pytest.raises(LanmirrorError):
                hub.upload_bytes(repo, b"a blob whose upload URL points elsewhere")
            # Distribution 2.8 does not paginate tag lists: the tampered answer carries the Link itself.
            stack.hub_proxy.fail(200, 1, path="/tags/list", body=json.dumps({"name": repo, "tags": ["a"]}).encode(),
                                 headers={"Link": f'<http://{side.address}/v2/{repo}/tags/list?last=a>; rel="next"'})
            with pytest.raises(LanmirrorError):
                hub.list_tags(repo, page_size=1)
        paths = [e.path for e in side.log]
        assert any("/blobs/uploads/" in p for p in paths) and any("/tags/list" in p for p in paths), paths
        assert [e for e in side.log if e.authorization] == []
        assert any(e.authorization for e in stack.hub_proxy.log)  # the registry itself did get them
    finally:
        side.stop()


# -- the action's install ---------------------------------------------------------------------

def install(cache: Path, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(["bash", str(ROOT / "scripts" / "action-install.sh"), str(ROOT)], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                            env={**os.environ, "LANMIRROR_CACHE": str(cache), "GITHUB_ENV": "", **env})


def test_eight_concurrent_installs_share_one_build(tmp_path):
    procs = [install(tmp_path) for _ in range(8)]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    SEEN_OUTPUT.extend(outs)
    assert [p.returncode for p in procs] == [0] * 8, outs
    assert sum("installing lanmirror" in o for o in outs) == 1
    pythons = {o.strip().splitlines()[-1] for o in outs}
    assert len(pythons) == 1
    (python,) = pythons
    check = subprocess.run([python, "-m", "lanmirror.cmd.action"], capture_output=True, text=True)
    assert check.returncode == 2 and "usage: python -m lanmirror.cmd.action" in check.stdout
    assert not list(tmp_path.glob(".build-venv-*"))


def test_an_interrupted_install_leaves_no_venv_that_is_used(tmp_path):
    proc = install(tmp_path)
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob(".build-venv-*/bin/python")) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert list(tmp_path.glob(".build-venv-*")) and not list(tmp_path.glob("venv-*"))
    again = install(tmp_path)
    out = again.communicate(timeout=600)[0]
    assert again.returncode == 0 and "installing lanmirror" in out, out
    assert not list(tmp_path.glob(".build-venv-*")) and len(list(tmp_path.glob("venv-*/.ok"))) == 1


@pytest.mark.parametrize(("script", "message"), [
    (None, "not found: install Python 3.10 or newer"),
    ("#!/bin/sh\n[ \"$1\" = -V ] && echo 'Python 3.8.10'; exit 1\n", "Python 3.8.10 is too old"),
])
def test_a_missing_or_old_python_is_one_error_line(tmp_path, script, message):
    fake = tmp_path / "python3"
    if script:
        fake.write_text(script)
        fake.chmod(0o755)
    proc = install(tmp_path / "cache", LANMIRROR_BOOTSTRAP_PYTHON=str(fake))
    out = proc.communicate(timeout=60)[0]
    assert proc.returncode == 1
    assert [line for line in out.splitlines() if line.startswith("::")] == [next(
        line for line in out.splitlines() if line.startswith("::error title=lanmirror::"))]
    assert message in out


def test_a_planted_newer_local_tag_is_never_verified_by_the_local_fallback(stack, repo, engine):
    """Another job tags anything under the canonical name, here a "newer version" of the line that
    the Hub has never had. The Hub answers 404 for it, so nothing vouches for it: the local fallback
    skips it, and only --allow-unverified takes it, marked FALLBACK and UNVERIFIED, never verified.
    A tag the Hub has with another digest is replaced by the Hub's image instead."""
    planted_tag = tag_for("v9.9.9-rocm700-mi30x", 50)
    donor = publish(stack, repo, "donor", 0, hub=False, lan=True)
    daemon = Engine(engine)
    daemon.pull(f"{stack.lan}/{repo}:{tag_for('donor', 0)}", source=stack.lan)
    daemon.tag(f"{stack.lan}/{repo}:{tag_for('donor', 0)}", f"{stack.hub}/{repo}", planted_tag)
    host = {"DOCKER_HOST": engine}
    args = ("resolve", "--repo", repo, "--base-tag", "v0.5.5-rocm700-mi30x", "--hub-registry", stack.hub,
            "--no-pull", "--json", "--fallback", "local")
    proc = run_cli(stack, *args, env=host)
    assert proc.returncode == 1, proc.stderr[-1500:]
    assert f"{planted_tag} is not on {stack.hub}, so nothing can verify it; not using it" in proc.stderr
    proc = run_cli(stack, *args, "--allow-unverified", env=host)
    assert proc.returncode == 0, proc.stderr[-1500:]
    out = json.loads(proc.stdout)
    assert (out["tag"], out["digest"], out["fallback"], out["verified"]) == (planted_tag, donor.digest, "local", False)
    assert out["warnings"][0].startswith("FALLBACK:") and any(w.startswith("UNVERIFIED:") for w in out["warnings"])
    # The same planted name over a tag the Hub does have: the Hub's image wins.
    real = publish(stack, repo, "v9.9.9-rocm700-mi30x", 50, hub=True)
    proc = run_cli(stack, "resolve", "--repo", repo, "--base-tag", "v0.5.5-rocm700-mi30x", "--hub-registry", stack.hub,
                   "--json", "--fallback", "local", env=host)
    out = json.loads(proc.stdout)
    assert proc.returncode == 0 and (out["digest"], out["source"]) == (real.digest, "hub"), proc.stderr[-1500:]
