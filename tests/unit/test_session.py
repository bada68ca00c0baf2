"""The registry session: ~/.netrc never supplies credentials; proxy variables still apply."""

import requests

from lanmirror.transport.session import NoNetrcSession

URL = "http://127.0.0.1:5000/v2/rocm/sgl-dev/manifests/latest"


def planted_netrc(tmp_path, monkeypatch) -> None:
    (tmp_path / ".netrc").write_text("machine 127.0.0.1 login netrc-user password netrc-planted\n")
    (tmp_path / ".netrc").chmod(0o600)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("NETRC", raising=False)


def prepared(session: requests.Session, **kwargs: object) -> requests.PreparedRequest:
    return session.prepare_request(requests.Request("GET", URL, **kwargs))  # type: ignore[arg-type]


def test_netrc_never_replaces_our_authorization_nor_adds_one(tmp_path, monkeypatch):
    planted_netrc(tmp_path, monkeypatch)
    assert prepared(requests.Session()).headers.get("Authorization", "").startswith("Basic ")  # the hole
    ours = NoNetrcSession()
    assert prepared(ours, headers={"Authorization": "Bearer ours"}).headers["Authorization"] == "Bearer ours"
    assert "Authorization" not in prepared(ours).headers
    assert prepared(ours, auth=("u", "p")).headers["Authorization"].startswith("Basic ")  # explicit auth still wins


def test_a_redirect_gets_no_netrc_entry_for_its_new_host(tmp_path, monkeypatch):
    planted_netrc(tmp_path, monkeypatch)
    ours = NoNetrcSession()
    first = prepared(ours, headers={"Authorization": "Bearer ours"})
    response = requests.Response()
    response.request = first
    moved = first.copy()
    moved.prepare_url("http://127.0.0.1:6000/storage/blob", None)  # another port: another host
    ours.rebuild_auth(moved, response)
    assert "Authorization" not in moved.headers


def test_proxy_variables_still_apply(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
    monkeypatch.setenv("NO_PROXY", "")
    settings = NoNetrcSession().merge_environment_settings("https://registry.example:5000/v2/", {}, None, None, None)
    assert settings["proxies"].get("https") == "http://127.0.0.1:3128"
