"""Both actions: the Python entry point with the Actions file protocol, the example workflows
under `act` (self-hosted, offline), and the two container-start scripts."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lanmirror.daemon import Engine
from lanmirror.records import PREFIX, from_line
from tests.consumer import ROOT, make_consumer
from tests.helpers import SEEN_OUTPUT, TODAY, forget, publish, run_cli, tag_for
from tests.stack import HUB_PASSWORD, HUB_USER

pytestmark = pytest.mark.integration
BASE = "v0.5.5-rocm700-mi30x"
ACT = str(Path(sys.executable).with_name("act"))
RECORD_KEY = "record-key-of-the-fleet-0123456789"


def read_outputs(path: Path) -> dict[str, str]:
    """Parse GITHUB_OUTPUT's `name<<DELIM` heredoc format."""
    out: dict[str, str] = {}
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        name, _, delim = lines[i].partition("<<")
        j = lines.index(delim, i + 1)
        out[name] = "\n".join(lines[i + 1:j])
        i = j + 1
    return out


def annotation(stdout: str, kind: str, title: str) -> str:
    """The message of the first `::kind title=...::message` workflow command with that title."""
    for line in stdout.splitlines():
        if line.startswith(f"::{kind} ") and f"title={title}," in line:
            return line.split("::", 2)[2]
    raise AssertionError(f"no ::{kind} annotation titled {title!r} in:\n{stdout}")


def action_env(stack, tmp_path, inputs: dict[str, str]) -> dict[str, str]:
    for name in ("GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY", "GITHUB_ENV"):
        (tmp_path / name).write_text("")
    env = {**stack.env(), **{f"INPUT_{k.upper().replace('-', '_')}": v for k, v in inputs.items()}}
    env.update({n: str(tmp_path / n) for n in ("GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY", "GITHUB_ENV")})
    env["GITHUB_ACTIONS"] = "true"
    return env


def run_action(command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "lanmirror.cmd.action", command], env=env, text=True,
                          capture_output=True, timeout=120)
    SEEN_OUTPUT.extend([proc.stdout, proc.stderr])
    return proc


def test_resolve_action_outputs_summary_and_masking(stack, repo, tmp_path):
    img = publish(stack, repo, BASE, 1, hub=True, lan=True)
    env = action_env(stack, tmp_path, {"repo": repo, "base-tag": BASE, "lan-registry": stack.lan,
                                       "hub-registry": stack.hub, "dockerhub-username": HUB_USER,
                                       "dockerhub-token": HUB_PASSWORD, "record-key": RECORD_KEY,
                                       "record-file": str(tmp_path / "records.jsonl")})
    proc = run_action("resolve", env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for secret in (HUB_PASSWORD, RECORD_KEY):
        assert f"::add-mask::{secret}" in proc.stdout  # masked before anything else runs
        assert secret not in proc.stdout.replace(f"::add-mask::{secret}", "") + proc.stderr
    # One record line, signed, inside the window where the runner executes no workflow command.
    lines = proc.stdout.splitlines()
    token = next(line for line in lines if line.startswith("::stop-commands::")).split("::")[2]
    window = lines[lines.index(f"::stop-commands::{token}"):lines.index(f"::{token}::")]
    records = [line for line in lines if line.startswith(PREFIX)]
    assert len(records) == 1 and records[0] in window
    record = from_line(records[0], RECORD_KEY)
    assert (tmp_path / "records.jsonl").read_text().splitlines() == [records[0].removeprefix(PREFIX)]
    out = read_outputs(tmp_path / "GITHUB_OUTPUT")
    assert out["image"] == f"{stack.hub}/{repo}:{tag_for(BASE, 1)}"
    assert (out["source"], out["digest"], out["age-days"]) == ("lan", img.digest, "1")
    pull = record["resolve"]["pull"]
    assert (out["pull-bytes"], float(out["pull-seconds"])) == (str(pull["bytes"]), pull["seconds"])
    assert pull["bytes"] >= sum(len(img.blobs[d]) for d in img.layer_digests)
    assert out["date"] == (TODAY.fromordinal(TODAY.toordinal() - 1)).isoformat()
    summary = (tmp_path / "GITHUB_STEP_SUMMARY").read_text()
    assert "| source | registry | result | seconds |" in summary and f"| lan | {stack.lan} |" in summary
    assert f"**pull**: {pull['bytes'] / 1e6:.1f} MB in" in summary
    assert HUB_PASSWORD not in summary


def test_resolve_action_stale_mirror_annotation_and_failure(stack, repo, tmp_path):
    publish(stack, repo, BASE, 1, hub=True)
    publish(stack, repo, BASE, 1, hub=False, lan=True, variant="-stale")
    env = action_env(stack, tmp_path, {"repo": repo, "base-tag": BASE, "lan-registry": stack.lan,
                                       "hub-registry": stack.hub, "pull": "false"})
    proc = run_action("resolve", env)
    assert proc.returncode == 0
    assert annotation(proc.stdout, "warning", "resolve-image").startswith("stale mirror")
    assert read_outputs(tmp_path / "GITHUB_OUTPUT")["source"] == "hub"
    env = action_env(stack, tmp_path, {"repo": repo, "base-tag": "nothing-here", "hub-registry": stack.hub})
    proc = run_action("resolve", env)
    assert proc.returncode == 1, proc.stdout
    assert annotation(proc.stdout, "error", "resolve-image").startswith("no nightly of")
    env = action_env(stack, tmp_path, {"repo": repo, "base-tag": BASE, "pull": "maybe", "hub-registry": stack.hub})
    proc = run_action("resolve", env)
    assert proc.returncode == 2 and "input pull" in proc.stdout


def test_mirror_action_outputs(stack, repo, tmp_path):
    img = publish(stack, repo, BASE, 0, layers=3)
    env = action_env(stack, tmp_path, {"repo": repo, "tags": tag_for(BASE, 0), "lan-registry": stack.lan,
                                       "source-registry": stack.hub, "github-token": "ghs_secret_value_123"})
    proc = run_action("mirror", env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "::add-mask::ghs_secret_value_123" in proc.stdout
    out = read_outputs(tmp_path / "GITHUB_OUTPUT")
    assert json.loads(out["mirrored"]) == [{"tag": tag_for(BASE, 0), "digest": img.digest}]
    assert int(out["bytes"]) == sum(len(b) for b in img.blobs.values()) and json.loads(out["skipped"]) == []
    assert "| tag | status | digest |" in (tmp_path / "GITHUB_STEP_SUMMARY").read_text()


def test_mirror_action_uses_every_lan_registry_line(stack, repo, tmp_path):
    """Both targets get the tag, each with its own row in the summary; a refusing target fails the
    step (exit 1) with an error naming it, and the other target is still done."""
    img = publish(stack, repo, BASE, 0, layers=2)
    tag = tag_for(BASE, 0)
    env = action_env(stack, tmp_path, {"repo": repo, "tags": tag, "lan-registry": f"{stack.lan}\n{stack.lan2}",
                                       "source-registry": stack.hub, "parallel": "2", "upload-chunk-mb": "0"})
    proc = run_action("mirror", env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for lan in (stack.lan, stack.lan2):
        assert stack.client(lan).head_manifest(repo, tag).digest == img.digest
    summary = (tmp_path / "GITHUB_STEP_SUMMARY").read_text()
    assert f"| {stack.lan} |" in summary and f"| {stack.lan2} |" in summary
    assert json.loads(read_outputs(tmp_path / "GITHUB_OUTPUT")["mirrored"]) == [
        {"tag": tag, "digest": img.digest}, {"tag": tag, "digest": img.digest}]
    other = tag_for(BASE, 1)
    publish(stack, repo, BASE, 1, layers=1)
    stack.lan2_proxy.fail(403, 1000, method="PUT", path="/manifests/")
    env = action_env(stack, tmp_path, {"repo": repo, "tags": other, "lan-registry": f"{stack.lan},{stack.lan2}",
                                       "source-registry": stack.hub})
    proc = run_action("mirror", env)
    assert proc.returncode == 1, proc.stdout
    assert f"{other} → {stack.lan2}" in annotation(proc.stdout, "error", "mirror-to-lan")
    assert stack.client(stack.lan).head_manifest(repo, other) is not None


def test_composite_actions_pass_inputs_only_through_env():
    for path in (ROOT / "action.yml", ROOT / "mirror" / "action.yml"):
        spec = yaml.safe_load(path.read_text())
        for step in spec["runs"]["steps"]:
            assert "${{" not in step.get("run", ""), (path, step)
        declared = set(spec["inputs"])
        passed = {k[len("INPUT_"):].lower().replace("_", "-") for s in spec["runs"]["steps"]
                  for k in s.get("env", {}) if k.startswith("INPUT_")}
        assert passed == declared, path


def run_workflow(workflow: str, stack, tmp_path, event: str = "workflow_dispatch",
                 extra: list[str] | None = None) -> str:
    """Run an example workflow under act (`event`, self-hosted, offline) in a fresh consumer
    repository; it must succeed. Returns its log."""
    consumer = make_consumer(tmp_path / "consumer")
    cfg = tmp_path / "docker-config"
    cfg.mkdir(exist_ok=True)
    cmd = [ACT, event, "-W", f".github/workflows/{workflow}", "-P", "self-hosted=-self-hosted",
           "--action-offline-mode", "--var", f"HUB_REGISTRY={stack.hub}", "--var", f"LAN_REGISTRY={stack.lan}",
           "--var", f"IMAGE_REPO={stack.hub}/rocm/sgl-dev", "-s", f"DOCKERHUB_USERNAME={HUB_USER}",
           "-s", f"DOCKERHUB_TOKEN={HUB_PASSWORD}", "--env", f"DOCKER_HOST={stack.docker_host}",
           "--env", f"DOCKER_CONFIG={cfg}", "--env", f"LANMIRROR_CACHE={ROOT / '.venv' / 'action-cache'}",
           *(extra or [])]
    proc = subprocess.run(cmd, cwd=consumer, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "DOCKER_HOST": stack.docker_host})
    SEEN_OUTPUT.extend([proc.stdout, proc.stderr])
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-5000:]
    return log


@pytest.mark.parametrize("workflow", ["release-docker-amd-nightly.yml", "release-docker-amd-rocm720-nightly.yml"])
def test_nightly_workflow_publishes_then_mirrors_under_act(stack, tmp_path, workflow):
    log = run_workflow(workflow, stack, tmp_path)
    rocm = "720" if "720" in workflow else "700"
    tag = tag_for(f"v0.5.5-rocm{rocm}-mi30x", 0)
    hub_digest = stack.client(stack.hub).head_manifest("rocm/sgl-dev", tag).digest
    assert stack.client(stack.lan).head_manifest("rocm/sgl-dev", tag).digest == hub_digest
    assert f'mirrored=[{{"tag": "{tag}", "digest": "{hub_digest}"}}]' in log
    assert HUB_PASSWORD not in log


def test_ci_workflow_resolves_and_uses_the_image_under_act(stack, tmp_path):
    forget(stack, "rocm/sgl-dev")
    img = publish(stack, "rocm/sgl-dev", BASE, 2, hub=True, lan=True)
    log = run_workflow("ci-amd-test.yml", stack, tmp_path)
    image = f"{stack.hub}/rocm/sgl-dev:{tag_for(BASE, 2)}"
    assert f"running on {image} (from lan, {img.digest})" in log, log[-4000:]
    assert stack.hub_proxy.counted_gets() == 0
    assert HUB_PASSWORD not in log
    assert any(e.authorization for e in stack.token_proxy.log)  # a maintainer's run does log in to the Hub


def test_ci_workflow_gives_a_pull_request_job_no_hub_token_under_act(stack, tmp_path):
    """A pull_request job runs the pull request's own copy of the action: it gets no Hub secret."""
    forget(stack, "rocm/sgl-dev")
    img = publish(stack, "rocm/sgl-dev", BASE, 2, hub=True, lan=True)
    log = run_workflow("ci-amd-test.yml", stack, tmp_path, event="pull_request")
    assert f"(from lan, {img.digest})" in log, log[-4000:]
    assert stack.token_proxy.log, "the Hub check never ran: the setup did not take"
    assert [e for e in stack.token_proxy.log if e.authorization] == []  # anonymous, and still verified


def test_warm_runners_workflow_pulls_the_nightly_into_the_cache_under_act(stack, tmp_path):
    forget(stack, "rocm/sgl-dev")
    img = publish(stack, "rocm/sgl-dev", BASE, 0, hub=True, lan=True)  # today's: newer than any other test's
    log = run_workflow("warm-runners.yml", stack, tmp_path)
    image = f"{stack.hub}/rocm/sgl-dev:{tag_for(BASE, 0)}"
    assert f"warmed {image} from lan {stack.lan}" in log, log[-4000:]
    local = Engine(stack.docker_host).local_image(image)
    assert local is not None and any(d.endswith(img.digest) for d in local.repo_digests)


def test_systemd_warm_script_pulls_each_base_tag_and_prunes_the_cache(stack, repo, tmp_path):
    imgs = {d: publish(stack, repo, BASE, d, hub=True, lan=True) for d in (3, 2, 1)}
    engine = Engine(stack.docker_host)
    for d in (3, 2):  # earlier timer runs left these
        engine.pull(f"{stack.lan}/{repo}@{imgs[d].digest}", source="lan")
        engine.tag(f"{stack.lan}/{repo}@{imgs[d].digest}", f"{stack.hub}/{repo}", tag_for(BASE, d))
    stack.clear_faults()
    env = {**stack.env(), "LANMIRROR": str(Path(sys.executable).with_name("lanmirror")), "BASE_TAGS": BASE,
           "IMAGE_REPO": repo, "LANMIRROR_LAN_REGISTRY": stack.lan, "LANMIRROR_HUB_REGISTRY": stack.hub,
           "KEEP": "1", "LANMIRROR_CACHE": str(tmp_path / "cache")}
    proc = subprocess.run(["bash", str(ROOT / "examples" / "systemd" / "lanmirror-warm.sh")], env=env, text=True,
                          capture_output=True, timeout=300)
    SEEN_OUTPUT.extend([proc.stdout, proc.stderr])
    assert proc.returncode == 0, proc.stderr
    # --policy newest: the newest nightly is pulled although older ones are cached; KEEP=1 then
    # leaves only it.
    newest = engine.local_image(f"{stack.hub}/{repo}:{tag_for(BASE, 1)}")
    assert newest is not None and any(d.endswith(imgs[1].digest) for d in newest.repo_digests)
    assert engine.local_image(f"{stack.hub}/{repo}:{tag_for(BASE, 2)}") is None
    assert engine.local_image(f"{stack.hub}/{repo}:{tag_for(BASE, 3)}") is None
    assert stack.hub_proxy.counted_gets() == 0
    timer = (ROOT / "examples" / "systemd" / "lanmirror-warm.timer").read_text()
    service = (ROOT / "examples" / "systemd" / "lanmirror-warm.service").read_text()
    assert "OnCalendar=" in timer and "ExecStart=/usr/local/lib/lanmirror/lanmirror-warm.sh" in service


def test_workflows_dispatch_inputs_exist():
    for name in ("release-docker-amd-nightly.yml", "release-docker-amd-rocm720-nightly.yml"):
        wf = yaml.safe_load((ROOT / "examples" / "workflows" / name).read_text())
        assert set(wf[True]["workflow_dispatch"]["inputs"]) == {"tag", "backfill-days", "dry-run", "force"}


@pytest.mark.parametrize("script", ["amd_ci_start_container.sh", "amd_ci_start_container_disagg.sh"])
def test_container_start_scripts_resolve_and_pull(stack, script):
    repo = f"rocm/start-{script.split('.')[0].replace('_', '-')}"
    img = publish(stack, repo, "v0.5.5-rocm700-mi35x", 3, hub=True, lan=True)
    bin_dir = str(Path(sys.executable).parent)
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "LANMIRROR_LAN_REGISTRY": stack.lan,
           "LANMIRROR_HUB_REGISTRY": stack.hub, "IMAGE_REPO": repo}
    proc = run_cli(stack, "--version", env=env)  # the CLI is on PATH for the script
    assert proc.returncode == 0
    full = {**stack.env(), **env}
    proc = subprocess.run(["bash", str(ROOT / "examples" / "scripts" / script), "--arch", "mi35x", "--resolve-only"],
                          env=full, text=True, capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    image = f"{stack.hub}/{repo}:{tag_for('v0.5.5-rocm700-mi35x', 3)}"
    assert proc.stdout.strip() == image
    from lanmirror.daemon.engine import Engine

    local = Engine(stack.docker_host).local_image(image)
    assert local is not None and f"{stack.lan}/{repo}@{img.digest}" in local.repo_digests
    bad = subprocess.run(["bash", str(ROOT / "examples" / "scripts" / script), "--arch", "mi999", "--resolve-only"],
                         env=full, text=True, capture_output=True, timeout=60)
    assert bad.returncode != 0 and "unsupported GPU architecture" in bad.stderr


def test_one_job_mirrors_every_line_of_every_repository_under_act(stack, tmp_path):
    """examples/workflows/mirror-all-lines.yml: several lines (ROCm x GPU) in two repositories, one
    job; lines with nothing in the window are no-ops, not failures."""
    published = {}
    lines = (("rocm/sgl-dev", "v0.5.5-rocm700-mi30x", 0), ("rocm/sgl-dev", "v0.5.5-rocm720-mi35x", 1),
             ("rocm/sgl-dev", "v0.5.5-rocm10-mi30x", 0), ("lmsysorg/sglang", "v0.5.5-rocm700-mi35x", 1))
    for repo, base, days in lines:
        published[(repo, tag_for(base, days))] = publish(stack, repo, base, days, hub=True).digest
    publish(stack, "rocm/sgl-dev", "v0.5.5-rocm700-mi30x", 9, hub=True)  # outside the 2 days asked for
    log = run_workflow("mirror-all-lines.yml", stack, tmp_path)
    lan = stack.client(stack.lan)
    for (repo, tag), digest in published.items():
        head = lan.head_manifest(repo, tag)
        assert head is not None and head.digest == digest, (repo, tag)
    assert lan.head_manifest("rocm/sgl-dev", tag_for("v0.5.5-rocm700-mi30x", 9)) is None
    assert "lmsysorg/sglang mirrored=[" in log and HUB_PASSWORD not in log


def test_fleet_report_workflow_reports_real_runs_under_act(stack, repo, tmp_path):
    """Two real resolve steps (a LAN pull, then a cache hit) write their logs; a forged record line
    follows in the second. The example report workflow reads them through the GitHub-shaped server
    under act: two pulls counted, the forgery refused, and the second report all from the cache."""
    import datetime as dt
    import time

    from tests.stack.github import FakeGitHub

    publish(stack, repo, BASE, 1, hub=True, lan=True)
    now = dt.datetime.now(dt.timezone.utc)
    base_id = int(time.time() * 1000) % 10**9  # job ids are cached on the runner: fresh ones per run
    gh = FakeGitHub(repository="acme/sglang").start()
    try:
        for n, run_id in enumerate((base_id, base_id + 1)):
            folder = tmp_path / f"run{n}"
            folder.mkdir()
            env = action_env(stack, folder, {"repo": repo, "base-tag": BASE, "lan-registry": stack.lan,
                                             "hub-registry": stack.hub, "record-key": RECORD_KEY})
            env.update(GITHUB_RUN_ID=str(run_id), GITHUB_RUN_ATTEMPT="1", GITHUB_REPOSITORY="acme/sglang")
            proc = run_action("resolve", env)
            assert proc.returncode == 0, proc.stdout
            printed = proc.stdout.splitlines()
            if n == 1:  # a later step prints a record it made up
                fake = next(line for line in printed if line.startswith(PREFIX)).replace('"seconds":', '"seconds":9')
                printed += ["pytest output", fake]
            gh.job_logs[run_id] = "".join(f"{now:%Y-%m-%dT%H:%M:%S}.1000000Z {line}\n" for line in printed)
            gh.jobs[run_id] = [{"id": run_id, "runner_name": "gpu-7"}]
            gh.run_created[run_id] = f"{now:%Y-%m-%dT%H:%M:%SZ}"
        gh.workflow_runs["ci-amd-test.yml"] = [base_id, base_id + 1]
        log = run_workflow("fleet-report.yml", stack, tmp_path, extra=[
            "--env", f"GITHUB_API_URL={gh.api}", "--env", "GITHUB_REPOSITORY=acme/sglang",
            "-s", f"GITHUB_TOKEN={gh.token}", "-s", f"LANMIRROR_RECORD_KEY={RECORD_KEY}"])
    finally:
        gh.stop()
    assert "2 resolve(s): 2 pulled, 0 without a pull, 0 failed" in log, log[-4000:]
    assert re.search(rf"lan\s+{re.escape(stack.lan)}\s+1\s+0\s+0\s", log), log[-4000:]
    assert re.search(r"local\s+docker\s+1\s+0\s+0\s", log)
    assert "records not counted: 1 forged" in log
    assert "GitHub: 0 job log(s) read, 2 from the cache" in log
    storage = [r for r in gh.requests if r[1].startswith("/storage/")]
    assert len(storage) == 2 and all(auth == "" for _, _, auth in storage)
