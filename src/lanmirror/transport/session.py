"""The one kind of HTTP session lanmirror opens to a registry or a token realm.

requests reads `~/.netrc` whenever a request carries no `auth=`, and then *replaces* the
Authorization header the caller set; on a redirect it looks the new host up there again. On a
shared runner that file may be another job's, so it could make Docker Hub refuse us (and a refused
Hub must never look like an absent one) or catch a token meant for another host. The environment
is still honoured for proxies (HTTP_PROXY, HTTPS_PROXY, NO_PROXY): those are set by the workflow,
not left on disk."""

from __future__ import annotations

import requests


def _no_netrc_auth(request: requests.PreparedRequest) -> requests.PreparedRequest:
    """A session-wide auth that changes nothing: its presence is what stops requests from
    consulting ~/.netrc (a per-request `auth=` still wins over it)."""
    return request


class NoNetrcSession(requests.Session):
    """requests.Session with ~/.netrc switched off, on the first request and on every redirect."""

    def __init__(self) -> None:
        super().__init__()
        self.auth = _no_netrc_auth

    def rebuild_auth(self, prepared_request: requests.PreparedRequest, response: requests.Response) -> None:
        # requests' own version strips Authorization on a host change, then adds ~/.netrc's entry for
        # the new host: keep the first half only.
        before, after = response.request.url or "", prepared_request.url or ""
        if "Authorization" in prepared_request.headers and self.should_strip_auth(before, after):  # type: ignore[no-untyped-call]
            del prepared_request.headers["Authorization"]
