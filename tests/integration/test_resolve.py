"""resolve-image on the real stack: policies, fallbacks, faults, the daemon-side probe, concurrency."""

from __future__ import annotations

import concurrent.futures as cf
import json
import time

import pytest

from lanmirror.cmd.wiring import Clients
from lanmirror.daemon.engine import Engine
from lanmirror.ops.resolve import NothingFound, ResolveOptions, resolve
from lanmirror.retry import RetryPolicy
from tests.helpers import TODAY, publish, run_cli, run_cli_isolated, tag_for

pytestmark = pytest.mark.integration
BASE = "v0.5.5-rocm700-mi30x"
FAST = RetryPolicy(attempts=3, base=0.1, cap=0.5)


def opts(stack, repo, **kw):
    kw.setdefault("base_tags", [BASE])
    kw.setdefault("lan_registries", [stack.lan])
    kw.setdefault("hub_registry", stack.hub)
    kw.setdefault("today", TODAY)
    return ResolveOptions(repo=repo, **kw)


def run(stack, repo, host=None, **kw):
    return resolve(opts(stack, repo, **kw), Clients(policy=FAST, docker_host=host or stack.docker_host))


def cache(stack, repo, days_ago, img, host=None):
    """Put a nightly into the daemon's cache under its canonical name (as a previous job would)."""
    engine = Engine(host or stack.docker_host)
    engine.pull(f"{stack.hub}/{repo}@{img.digest}", source="hub")
    engine.tag(f"{stack.hub}/{repo}@{img.digest}", f"{stack.hub}/{repo}", tag_for(BASE, days_ago))
    stack.clear_faults()


def test_cache_first_prefers_an_older_cached_image(stack, repo, engine):
    old = publish(stack, repo, BASE, 3, hub=True, lan=True)
    publish(stack, repo, BASE, 1, hub=True, lan=True)
    cache(stack, repo, 3, old, engine)
    res = run(stack, repo, engine)
    assert (res.source, res.tag, res.age_days) == ("local", tag_for(BASE, 3), 3)
    assert res.image == f"{stack.hub}/{repo}:{tag_for(BASE, 3)}"
    assert res.digest == old.digest and res.verified is True
    # Verifying a cached image against the Hub (trust issue) costs one free HEAD, nothing else.
    assert {e.method for e in stack.hub_proxy.entries() if "/manifests/" in e.path} == {"HEAD"}
    assert stack.hub_proxy.counted_gets() == 0 and stack.lan_proxy.entries() == []


def test_newest_policy_takes_the_lans_newer_image_and_pulls_it(stack, repo):
    old = publish(stack, repo, BASE, 3, hub=True, lan=True)
    new = publish(stack, repo, BASE, 1, hub=True, lan=True)
    cache(stack, repo, 3, old)
    res = run(stack, repo, policy="newest")
    assert (res.source, res.tag, res.digest, res.verified, res.pulled) == ("lan", tag_for(BASE, 1), new.digest,
                                                                          True, True)
    assert stack.lan_proxy.bytes_out() > 0 and stack.hub_proxy.bytes_out() == 0
    assert stack.hub_proxy.counted_gets() == 0


def test_lan_hit_is_pulled_retagged_and_costs_no_hub_pull(stack, repo, engine):
    img = publish(stack, repo, BASE, 2, hub=True, lan=True)
    res = run(stack, repo, engine)
    tag = tag_for(BASE, 2)
    assert (res.source, res.tag, res.date, res.age_days) == ("lan", tag, (TODAY - __import__("datetime")
                                                                        .timedelta(days=2)).isoformat(), 2)
    assert res.image == f"{stack.hub}/{repo}:{tag}"
    assert res.pinned == f"{stack.lan}/{repo}@{img.digest}"
    local = Engine(engine).local_image(res.image)
    assert local is not None and f"{stack.lan}/{repo}@{img.digest}" in local.repo_digests
    assert stack.hub_proxy.counted_gets() == 0
    assert {e.method for e in stack.hub_proxy.entries(pattern="/manifests/")} == {"HEAD"}
    assert res.ratelimit_remaining is not None


def test_lan_miss_falls_back_to_the_hub(stack, repo):
    img = publish(stack, repo, BASE, 0, hub=True, lan=False)
    res = run(stack, repo)
    assert (res.source, res.tag, res.digest) == ("hub", tag_for(BASE, 0), img.digest)
    assert res.ratelimit_remaining == 99  # the daemon's one pull counted, our probes did not
    assert stack.hub_proxy.counted_gets() == 1


def test_no_pull_only_resolves(stack, repo):
    publish(stack, repo, BASE, 1, hub=True, lan=True)
    res = run(stack, repo, pull=False)
    assert res.image == f"{stack.lan}/{repo}:{tag_for(BASE, 1)}" and not res.pulled
    assert Engine(stack.docker_host).local_image(res.image) is None
    assert stack.lan_proxy.bytes_out() == 0


def test_nothing_in_the_window(stack, repo):
    publish(stack, repo, BASE, 9, hub=True, lan=True)
    with pytest.raises(NothingFound) as info:
        run(stack, repo, days=7)
    msg = str(info.value)
    assert "last 7 day(s)" in msg and f"lan {stack.lan}: miss" in msg and f"hub {stack.hub}: miss" in msg


def test_two_base_tags_in_preference_order(stack, repo):
    publish(stack, repo, "b-second", 0, hub=True)
    preferred = publish(stack, repo, "b-first", 4, hub=True)
    res = run(stack, repo, base_tags=["b-first", "b-second"], pull=False)
    assert (res.tag, res.digest) == (tag_for("b-first", 4), preferred.digest)
    res = run(stack, repo, base_tags=["b-first", "b-second"], pull=False, policy="newest")
    assert res.tag == tag_for("b-second", 0)


def test_explicit_image_override(stack, repo):
    img = publish(stack, repo, BASE, 20, hub=True)
    ref = f"{stack.hub}/{repo}:{tag_for(BASE, 20)}"
    res = run(stack, repo, image=ref)
    assert (res.image, res.digest, res.source, res.age_days) == (ref, img.digest, "hub", 20)
    assert Engine(stack.docker_host).local_image(ref) is not None


@pytest.mark.parametrize("fault", ["refuse", "blackhole"])
def test_dead_lan_falls_back_to_hub_within_the_bound(stack, repo, fault):
    img = publish(stack, repo, BASE, 1, hub=True, lan=True)
    stack.lan_proxy.mode = fault
    start = time.monotonic()
    res = run(stack, repo, pull=False, probe_timeout=1.5, daemon_probe=False)
    elapsed = time.monotonic() - start
    assert (res.source, res.digest) == ("hub", img.digest)
    assert res.attempts[1].source == "lan" and "unreachable" in res.attempts[1].result
    assert res.attempts[1].seconds <= 2.0
    assert elapsed < 4.0


def test_stalled_lan_pull_falls_back_to_the_hub(stack, repo, engine):
    img = publish(stack, repo, BASE, 1, hub=True, lan=True, size=3 << 20, layers=1)
    stack.lan_proxy.break_body("stall", after=1 << 20)
    res = run(stack, repo, engine, stall_timeout=2)
    assert (res.source, res.digest, res.pulled) == ("hub", img.digest, True)
    assert any(a.source == "lan" and "no progress for 2s" in a.result for a in res.attempts)
    assert stack.hub_proxy.bytes_out() > 0


def test_stale_lan_digest_is_not_used(stack, repo, engine):
    hub_img = publish(stack, repo, BASE, 1, hub=True)
    publish(stack, repo, BASE, 1, hub=False, lan=True, variant="-stale")
    res = run(stack, repo, engine)
    assert (res.source, res.digest, res.pulled) == ("hub", hub_img.digest, True)
    assert any("stale mirror" in w for w in res.warnings)
    # The next job finds the Hub's image in the cache, not the stale copy (on the containerd store
    # too, where image IDs are manifest digests and a tag adds a RepoDigest).
    again = run(stack, repo, engine)
    assert (again.source, again.digest, again.verified) == ("local", hub_img.digest, True)


def test_unverifiable_lan_copy_is_used_and_flagged(stack, repo):
    img = publish(stack, repo, BASE, 1, hub=True, lan=True)
    stack.hub_proxy.mode = "refuse"
    res = run(stack, repo, pull=False, hub_timeout=2)
    assert (res.source, res.digest, res.verified) == ("lan", img.digest, False)
    assert any("unverified" in w for w in res.warnings)
    res = run(stack, repo, pull=False, verify=False)
    assert res.verified is None and res.warnings == []


def test_hub_429_with_retry_after_is_retried(stack, repo):
    img = publish(stack, repo, BASE, 0, hub=True)
    stack.hub_proxy.fail(429, 2, method="HEAD", path="/manifests/", headers={"Retry-After": "1"})
    res = run(stack, repo, pull=False, lan_registries=[])
    assert res.digest == img.digest


def test_daemon_side_probe_from_a_network_namespace(stack, repo, tmp_path, engine):
    """The resolver runs where 127.0.0.1 is not the host's (a netns, like a job container); only the
    daemon's unix socket is shared. The LAN is then only reachable through the daemon."""
    img = publish(stack, repo, BASE, 1, hub=True, lan=True)
    proc = run_cli_isolated(stack, "resolve", "--repo", repo, "--base-tag", BASE, "--lan-registry", stack.lan,
                            "--hub-registry", stack.hub, "--no-pull", "--no-verify", "--probe-timeout", "1.5",
                            "--json", env={"DOCKER_HOST": engine})
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert (out["source"], out["digest"], out["tag"]) == ("lan", img.digest, tag_for(BASE, 1))
    assert [a["source"] for a in out["attempts"]][:3] == ["local", "lan", "lan-daemon"]
    assert "asking the Docker daemon" in out["attempts"][1]["result"]


def test_sixteen_concurrent_resolvers_agree(stack, repo):
    img = publish(stack, repo, BASE, 1, hub=True, lan=True, size=200_000)
    with cf.ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda _: run(stack, repo), range(16)))
    assert {(r.image, r.digest) for r in results} == {(f"{stack.hub}/{repo}:{tag_for(BASE, 1)}", img.digest)}
    assert stack.hub_proxy.counted_gets() == 0


def test_cli_prints_image_last_and_json(stack, repo):
    img = publish(stack, repo, BASE, 2, hub=True, lan=True)
    proc = run_cli(stack, "resolve", "--repo", repo, "--base-tag", BASE, "--lan-registry", stack.lan,
                   "--hub-registry", stack.hub)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == f"{stack.hub}/{repo}:{tag_for(BASE, 2)}"
    proc = run_cli(stack, "resolve", "--repo", repo, "--base-tag", BASE, "--hub-registry", stack.hub, "--json",
                   env={"LOCAL_DOCKER_REGISTRY": stack.lan})
    out = json.loads(proc.stdout)
    assert set(out) >= {"image", "source", "tag", "date", "age-days", "digest", "pinned", "ratelimit-remaining"}
    assert out["digest"] == img.digest and out["source"] == "local"


def test_cli_exit_codes(stack, repo):
    proc = run_cli(stack, "resolve", "--repo", repo, "--base-tag", BASE, "--hub-registry", stack.hub,
                   "--lan-registry", stack.lan)
    assert proc.returncode == 1 and "no nightly of" in proc.stderr
    for bad in (["--repo", "Bad/Repo", "--base-tag", BASE], ["--repo", repo, "--base-tag", "$(reboot)"],
                ["--repo", repo, "--base-tag", BASE, "--days", "0"],
                ["--repo", repo, "--base-tag", BASE, "--lan-registry", "ftp://x"]):
        proc = run_cli(stack, "resolve", *bad, "--hub-registry", stack.hub)
        assert proc.returncode == 2, (bad, proc.stderr)
        assert "error" in proc.stderr


def test_a_failed_probe_of_a_newer_tag_is_not_an_absent_tag(stack, repo):
    """The Hub cannot answer for today's tag (it keeps failing): resolve does not settle silently
    for yesterday's; it fails, or with allow_degraded takes it marked degraded."""
    publish(stack, repo, BASE, 1, hub=True)
    publish(stack, repo, BASE, 0, hub=True)
    stack.hub_proxy.fail(503, 1000, method="HEAD", path=f"/manifests/{tag_for(BASE, 0)}$")
    with pytest.raises(NothingFound, match=f"could not tell whether {tag_for(BASE, 0)} is on hub"):
        run(stack, repo, lan_registries=[], pull=False, hub_timeout=3)
    res = run(stack, repo, lan_registries=[], pull=False, hub_timeout=3, allow_degraded=True)
    assert (res.tag, res.degraded, res.outputs()["degraded"]) == (tag_for(BASE, 1), True, "true")
    assert any(w.startswith("degraded: could not tell") for w in res.warnings)


def resolve_cli(stack, repo, *args, env=None):
    proc = run_cli(stack, "resolve", "--repo", repo, "--hub-registry", stack.hub, "--lan-registry", stack.lan,
                   "--no-pull", "--json", *args, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout), proc.stderr


def test_the_runner_name_picks_the_architecture_and_its_nightly_line(stack, repo):
    mi35 = publish(stack, repo, "v0.5.5-rocm700-mi35x", 1, hub=True, lan=True)
    publish(stack, repo, "v0.5.5-rocm700-mi30x", 0, hub=True, lan=True)  # newer, but another architecture
    out, log = resolve_cli(stack, repo, "--base-tag", "v0.5.5-rocm700-{arch}",
                           env={"RUNNER_NAME": "linux-mi355-gpu-3"})
    assert (out["tag"], out["digest"], out["gpu_arch"]) == (tag_for("v0.5.5-rocm700-mi35x", 1), mi35.digest, "mi35x")
    assert "GPU architecture mi35x (runner linux-mi355-gpu-3)" in log
    # A base tag of its own for one architecture comes first.
    mi30 = publish(stack, repo, "v0.5.5-rocm720-mi30x", 2, hub=True, lan=True)
    out, _ = resolve_cli(stack, repo, "--base-tag", "v0.5.5-rocm700-{arch}", "--base-tag-for",
                         "mi30x=v0.5.5-rocm720-mi30x", env={"RUNNER_NAME": "linux-mi325-gpu-1"})
    assert (out["tag"], out["digest"], out["gpu_arch"]) == (tag_for("v0.5.5-rocm720-mi30x", 2), mi30.digest, "mi30x")


def test_an_unknown_gpu_is_bad_input_that_names_the_fix(stack, repo):
    proc = run_cli(stack, "resolve", "--repo", repo, "--base-tag", "v0.5.5-rocm700-{arch}", "--no-pull",
                   env={"RUNNER_NAME": "linux-mi400-gpu-1"})
    assert proc.returncode == 2
    assert "unsupported GPU architecture 'mi400'" in proc.stderr and "--arch-map" in proc.stderr


def test_an_image_forced_from_the_environment_is_per_architecture(stack, repo):
    forced = publish(stack, repo, "special", 30, hub=True)
    ref = f"{stack.hub}/{repo}:{tag_for('special', 30)}"
    nightly = publish(stack, repo, "v0.5.5-rocm700-mi35x", 0, hub=True)
    runner = {"RUNNER_NAME": "linux-mi355-gpu-3"}
    out, log = resolve_cli(stack, repo, "--base-tag", "v0.5.5-rocm700-{arch}", "--image-env", "AMD_CI_IMAGE",
                           env={**runner, "AMD_CI_IMAGE_MI35X": ref, "AMD_CI_IMAGE": "rocm/never:used"})
    assert (out["image"], out["digest"]) == (ref, forced.digest) and "forced by $AMD_CI_IMAGE_MI35X" in log
    # The bare variable is the mi30x image: an mi35x runner searches as usual.
    out, _ = resolve_cli(stack, repo, "--base-tag", "v0.5.5-rocm700-{arch}", "--image-env", "AMD_CI_IMAGE",
                         env={**runner, "AMD_CI_IMAGE": ref})
    assert (out["tag"], out["digest"]) == (tag_for("v0.5.5-rocm700-mi35x", 0), nightly.digest)


def test_the_tags_fallback_takes_the_newest_version_of_the_line_when_the_window_is_empty(stack, repo):
    publish(stack, repo, "v0.5.9-rocm700-mi30x", 40, hub=True)
    newer = publish(stack, repo, "v0.5.10-rocm700-mi30x", 60, hub=True)
    publish(stack, repo, "v0.5.11-rocm720-mi30x", 50, hub=True)  # another line
    proc = run_cli(stack, "resolve", "--repo", repo, "--base-tag", "v0.5.5-rocm700-mi30x", "--hub-registry",
                   stack.hub, "--no-pull", "--json")
    assert proc.returncode == 1  # without --fallback: nothing in the window, as before
    out, _log = resolve_cli(stack, repo, "--base-tag", "v0.5.5-rocm700-mi30x", "--fallback", "tags")
    assert (out["tag"], out["digest"], out["fallback"]) == (tag_for("v0.5.10-rocm700-mi30x", 60), newer.digest, "tags")
    assert out["warnings"][0].startswith("FALLBACK: no nightly of v0.5.5-rocm700-mi30x-<YYYYMMDD> in the last 7")
    assert stack.hub_proxy.counted_gets() == 0  # tag lists and HEADs only (no pull asked for)


def test_the_local_fallback_takes_an_image_of_the_line_this_runner_holds(stack, repo):
    old = tag_for("v0.5.4-rocm700-mi30x", 90)
    img = publish(stack, repo, "v0.5.4-rocm700-mi30x", 90, hub=True, lan=True)
    engine = Engine(stack.docker_host)
    engine.pull(f"{stack.lan}/{repo}:{old}", source=stack.lan)
    engine.tag(f"{stack.lan}/{repo}:{old}", f"{stack.hub}/{repo}", old)
    out, _log = resolve_cli(stack, repo, "--base-tag", "v0.5.5-rocm700-mi30x", "--fallback", "local")
    assert (out["source"], out["tag"], out["digest"], out["fallback"]) == ("local", old, img.digest, "local")
    assert out["verified"] is True  # the Hub still has that tag, with this digest
    assert out["warnings"][0].startswith("FALLBACK:") and "local images" in out["warnings"][0]


def test_a_forced_image_brings_its_own_login_for_its_registry_only(stack, repo):
    from tests.stack import HUB_PASSWORD, HUB_USER

    forced = publish(stack, repo, "special", 30, hub=True)
    ref = f"{stack.hub}/{repo}:{tag_for('special', 30)}"
    env = {"RUNNER_NAME": "linux-mi355-gpu-3", "AMD_CI_IMAGE_MI35X": ref, "DOCKER_CONFIG": str(stack.root / "none"),
           "AMD_CI_IMAGE_MI35X_USERNAME": HUB_USER, "AMD_CI_IMAGE_MI35X_PASSWORD": HUB_PASSWORD}
    out, log = resolve_cli(stack, repo, "--base-tag", "v0.5.5-rocm700-{arch}", "--image-env", "AMD_CI_IMAGE", env=env)
    assert (out["image"], out["digest"]) == (ref, forced.digest)
    assert "login from $AMD_CI_IMAGE_MI35X_USERNAME" in log and HUB_PASSWORD not in log
    assert any(e.authorization for e in stack.token_proxy.log)  # the login was used, for that registry
    stack.clear_faults()
    proc = run_cli(stack, "resolve", "--repo", repo, "--base-tag", "v0.5.5-rocm700-{arch}", "--image-env",
                   "AMD_CI_IMAGE", "--hub-registry", stack.hub, "--no-pull",
                   env={**env, "AMD_CI_IMAGE_MI35X_PASSWORD": "wrong"})
    assert proc.returncode == 1 and "$AMD_CI_IMAGE_MI35X_USERNAME" in proc.stderr, proc.stderr[-1500:]


def test_the_tags_fallback_never_chooses_a_tag_only_a_lan_lists(stack, repo):
    """A LAN's tag list is the LAN's word: a newer version there that the Hub does not have (a
    tampered LAN) is not what the fallback picks while the Hub's list can be read."""
    real = publish(stack, repo, "v0.5.9-rocm700-mi30x", 40, hub=True, lan=True)
    publish(stack, repo, "v9.9.9-rocm700-mi30x", 30, hub=False, lan=True)
    out, _ = resolve_cli(stack, repo, "--base-tag", "v0.5.5-rocm700-mi30x", "--fallback", "tags")
    assert (out["tag"], out["digest"]) == (tag_for("v0.5.9-rocm700-mi30x", 40), real.digest)
