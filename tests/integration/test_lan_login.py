"""LAN registries that require a login: htpasswd over TLS and token auth, with the credentials from
`docker login`'s config, from LANMIRROR_LAN_USERNAME/PASSWORD, from an identity token, and from the
action's inputs. The daemon's pull gets the same login (X-Registry-Auth): the test daemon never ran
`docker login` for these registries."""

from __future__ import annotations

import base64
import json

import pytest

from tests.helpers import publish, run_cli, run_cli_isolated, tag_for
from tests.integration.test_actions import action_env, read_outputs, run_action
from tests.stack import LAN_PASSWORD, LAN_USER
from tests.stack.daemons import Registry
from tests.stack.tls import TlsRegistry, make_pki, write_htpasswd
from tests.stack.tokens import ISSUER

pytestmark = pytest.mark.integration
BASE = "v1-login"
LAN_SERVICE = "lan.registry.test"


@pytest.fixture(scope="module")
def basic_lan(_stack, tmp_path_factory):
    """htpasswd over TLS with a private CA (loopback: Docker's insecure rule, HTTPS unverified)."""
    pki = make_pki(tmp_path_factory.mktemp("login-pki"))
    htpasswd = write_htpasswd(pki / "htpasswd", {LAN_USER: LAN_PASSWORD})
    reg = TlsRegistry(_stack.root, "lan-basic", pki, htpasswd=htpasswd).start()
    yield reg
    reg.stop()


@pytest.fixture(scope="module")
def token_lan(_stack):
    """Token auth like the Hub's, from the same token server, as its own service."""
    reg = Registry(_stack.root, "lan-token", token_realm=f"http://{_stack.token_proxy.address}/token",
                   token_cert=_stack.tokens.cert_path, service=LAN_SERVICE, issuer=ISSUER).start()
    yield reg
    reg.stop()


@pytest.fixture
def docker_config(tmp_path):
    """A DOCKER_CONFIG of this test's own, written the way `docker login` writes it."""
    folder = tmp_path / "docker-config"
    folder.mkdir()

    def write(auths: dict[str, dict[str, str]]) -> dict[str, str]:
        (folder / "config.json").write_text(json.dumps({"auths": auths}))
        return {"DOCKER_CONFIG": str(folder)}

    return write


def login_entry(user: str, password: str) -> dict[str, str]:
    return {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}


def mirror(stack, repo, lan, *tags, env):
    args = ["mirror", "--repo", repo, "--source-registry", stack.hub, "--lan-registry", lan, "--json"]
    for tag in tags:
        args += ["--tag", tag]
    return run_cli(stack, *args, env=env)


def resolve(stack, repo, lan, env, *extra):
    return run_cli(stack, "resolve", "--repo", repo, "--base-tag", BASE, "--hub-registry", stack.hub,
                   "--lan-registry", lan, "--json", *extra, env=env)


def test_htpasswd_tls_lan_with_the_login_from_docker_config(stack, repo, basic_lan, docker_config, engine):
    """Before: mirror could not push, resolve could not probe, the daemon's pull had no login.
    Neither engine ever ran `docker login` for this registry: the pull carries it."""
    img = publish(stack, repo, BASE, 2)
    env = {**docker_config({basic_lan.address: login_entry(LAN_USER, LAN_PASSWORD)}), "DOCKER_HOST": engine}
    proc = mirror(stack, repo, basic_lan.address, tag_for(BASE, 2), env=env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["results"][0]["status"] == "copied"
    proc = resolve(stack, repo, basic_lan.address, env)
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout)
    assert (res["source"], res["registry"], res["digest"], res["pulled"]) == ("lan", basic_lan.address, img.digest,
                                                                               True)
    proc = run_cli(stack, "prune", "--repo", repo, "--lan-registry", basic_lan.address, "--keep-days", "1", "--json",
                   env=env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["deleted"] == [tag_for(BASE, 2)]


def test_without_a_login_the_lan_says_so_and_resolve_uses_the_hub(stack, repo, basic_lan, docker_config):
    publish(stack, repo, BASE, 1)
    env = docker_config({})
    proc = mirror(stack, repo, basic_lan.address, tag_for(BASE, 1), env=env)
    assert proc.returncode == 1
    assert "needs a login" in proc.stderr and "Traceback" not in proc.stderr
    proc = resolve(stack, repo, basic_lan.address, env)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["source"] == "hub"


def test_a_wrong_password_is_one_clear_error_and_one_request(stack, repo, basic_lan, docker_config):
    publish(stack, repo, BASE, 1)
    publish(stack, repo, BASE, 2)
    before = len(basic_lan.access_log())
    env = {**docker_config({}), "LANMIRROR_LAN_USERNAME": LAN_USER, "LANMIRROR_LAN_PASSWORD": "wrong-password"}
    proc = mirror(stack, repo, basic_lan.address, tag_for(BASE, 1), tag_for(BASE, 2), env=env)
    assert proc.returncode == 1
    refused = [line for line in proc.stderr.splitlines() if "authentication failed" in line]
    assert refused and all(f"authentication failed for user '{LAN_USER}'" in line for line in refused), proc.stderr
    assert "$LANMIRROR_LAN_USERNAME/$LANMIRROR_LAN_PASSWORD" in refused[0]
    assert "Traceback" not in proc.stderr
    requests_made = basic_lan.access_log()[before:]
    # The scheme probe (GET /v2/) and the first HEAD are anonymous and learn the challenge; the HEAD
    # again with the password is the only request that carries it. The second tag is never tried.
    assert len(requests_made) == 3 and all(" 401 " in line for line in requests_made), requests_made
    assert '"GET /v2/ ' in requests_made[0] and tag_for(BASE, 2) not in "".join(requests_made)
    assert [line.split('"')[1] for line in requests_made[1:]] == [
        f"HEAD /v2/{repo}/manifests/{tag_for(BASE, 1)} HTTP/1.1"] * 2


def test_token_auth_lan_with_the_login_from_the_environment(stack, repo, token_lan, docker_config, engine):
    img = publish(stack, repo, BASE, 1)
    env = {**docker_config({}), "LANMIRROR_LAN_USERNAME": LAN_USER, "LANMIRROR_LAN_PASSWORD": LAN_PASSWORD,
           "DOCKER_HOST": engine}
    start = len(stack.tokens.requests)
    proc = mirror(stack, repo, token_lan.address, tag_for(BASE, 1), env=env)
    assert proc.returncode == 0, proc.stderr
    lan_tokens = [r for r in stack.tokens.requests[start:] if r["service"] == LAN_SERVICE]
    assert lan_tokens and {r["user"] for r in lan_tokens} == {LAN_USER}
    # The Hub's token requests never carried the LAN's login, and the LAN's never the Hub's.
    assert all(r["user"] != LAN_USER for r in stack.tokens.requests[start:] if r["service"] != LAN_SERVICE)
    proc = resolve(stack, repo, token_lan.address, env)
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout)
    assert (res["source"], res["digest"], res["pulled"]) == ("lan", img.digest, True)


def test_token_auth_lan_with_an_identity_token(stack, repo, token_lan, docker_config, engine):
    """`docker login` through SSO stores an identity token: it is exchanged with the OAuth2
    refresh_token grant (POST), by lanmirror and by the daemon's pull."""
    img = publish(stack, repo, BASE, 1)
    stack.tokens.refresh_tokens["idt-" + LAN_PASSWORD] = LAN_USER
    env = {**docker_config({token_lan.address: {"identitytoken": "idt-" + LAN_PASSWORD}}), "DOCKER_HOST": engine}
    start = len(stack.tokens.requests)
    proc = mirror(stack, repo, token_lan.address, tag_for(BASE, 1), env=env)
    assert proc.returncode == 0, proc.stderr
    grants = {r["grant"] for r in stack.tokens.requests[start:] if r["service"] == LAN_SERVICE}
    assert grants == {"refresh_token"}
    proc = resolve(stack, repo, token_lan.address, env)
    assert proc.returncode == 0, proc.stderr
    assert (json.loads(proc.stdout)["source"], json.loads(proc.stdout)["digest"]) == ("lan", img.digest)


def test_action_inputs_lan_username_and_password_are_used_and_masked(stack, repo, basic_lan, docker_config,
                                                                      tmp_path):
    img = publish(stack, repo, BASE, 1)
    env = action_env(stack, tmp_path, {"repo": repo, "tags": tag_for(BASE, 1), "lan-registry": basic_lan.address,
                                       "source-registry": stack.hub, "lan-username": LAN_USER,
                                       "lan-password": LAN_PASSWORD})
    env.update(docker_config({}))
    proc = run_action("mirror", env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"::add-mask::{LAN_PASSWORD}" in proc.stdout
    assert json.loads(read_outputs(tmp_path / "GITHUB_OUTPUT")["mirrored"]) == [{"tag": tag_for(BASE, 1),
                                                                                "digest": img.digest}]
    env = action_env(stack, tmp_path, {"repo": repo, "base-tag": BASE, "lan-registry": basic_lan.address,
                                       "hub-registry": stack.hub, "lan-username": LAN_USER,
                                       "lan-password": LAN_PASSWORD})
    env.update(docker_config({}))
    proc = run_action("resolve", env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = read_outputs(tmp_path / "GITHUB_OUTPUT")
    assert (out["source"], out["digest"]) == ("lan", img.digest)


def test_htpasswd_lan_with_a_credential_helper(stack, repo, basic_lan, tmp_path):
    """`credHelpers` (and `credsStore`) run docker-credential-NAME, as the Docker CLI does."""
    img = publish(stack, repo, BASE, 1)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    helper = bin_dir / "docker-credential-lmtest"
    secret = json.dumps({"ServerURL": basic_lan.address, "Username": LAN_USER, "Secret": LAN_PASSWORD})
    helper.write_text(f"#!/bin/sh\n[ \"$1\" = get ] || exit 1\ncat >/dev/null\necho '{secret}'\n")
    helper.chmod(0o755)
    config = tmp_path / "docker-config"
    config.mkdir()
    (config / "config.json").write_text(json.dumps({"credHelpers": {basic_lan.address: "lmtest"}}))
    env = {"DOCKER_CONFIG": str(config), "PATH": f"{bin_dir}:{stack.env()['PATH']}"}
    proc = mirror(stack, repo, basic_lan.address, tag_for(BASE, 1), env=env)
    assert proc.returncode == 0, proc.stderr
    proc = resolve(stack, repo, basic_lan.address, env, "--no-pull")
    assert proc.returncode == 0, proc.stderr
    assert (json.loads(proc.stdout)["source"], json.loads(proc.stdout)["digest"]) == ("lan", img.digest)


@pytest.mark.parametrize("login, status, says", [
    (None, "warn", "asks for a login and none is configured"),
    (LAN_PASSWORD, "ok", f"user '{LAN_USER}' (from $LANMIRROR_LAN_USERNAME/$LANMIRROR_LAN_PASSWORD) accepted"),
    ("wrong-password", "fail", f"authentication failed for user '{LAN_USER}'"),
])
def test_doctor_checks_the_lan_login_and_the_daemon_uses_it(stack, basic_lan, docker_config, login, status, says):
    env = docker_config({})
    if login:
        env.update({"LANMIRROR_LAN_USERNAME": LAN_USER, "LANMIRROR_LAN_PASSWORD": login})
    proc = run_cli(stack, "doctor", "--hub-registry", stack.hub, "--lan-registry", basic_lan.address,
                   "--timeout", "3", "--json", env=env)
    checks = {c["name"]: c for c in json.loads(proc.stdout)["checks"]}
    check = checks[f"LAN {basic_lan.address} login"]
    assert check["status"] == status and says in check["detail"], check
    # The daemon's own probe carries the same login (it never ran `docker login` for this registry).
    daemon = checks[f"LAN {basic_lan.address} from the daemon"]
    assert (daemon["status"] == "ok") == (login == LAN_PASSWORD), daemon


def test_the_daemon_side_probe_carries_the_lan_login(stack, repo, basic_lan, docker_config):
    """From a network namespace (a job container) only the daemon reaches the LAN: its probe of a
    registry that wants a login must carry it, since the daemon never ran `docker login`."""
    img = publish(stack, repo, BASE, 1)
    env = {**docker_config({}), "LANMIRROR_LAN_USERNAME": LAN_USER, "LANMIRROR_LAN_PASSWORD": LAN_PASSWORD}
    assert mirror(stack, repo, basic_lan.address, tag_for(BASE, 1), env=env).returncode == 0
    proc = run_cli_isolated(stack, "resolve", "--repo", repo, "--base-tag", BASE, "--lan-registry",
                            basic_lan.address, "--hub-registry", stack.hub, "--no-pull", "--no-verify",
                            "--probe-timeout", "3", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert (out["source"], out["digest"]) == ("lan", img.digest)
    assert "lan-daemon" in [a["source"] for a in out["attempts"]]
