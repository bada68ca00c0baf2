"""The one place lanmirror reaches into docker-py's private API: a pull whose stream can be cut,
and the credentials docker-py looks up on its own.

docker-py's public `APIClient.pull(stream=True)` returns a generator over the progress stream and
keeps the HTTP response to itself, so nothing can end a pull that stalls: the generator blocks in
a socket read on another thread, and the daemon goes on pulling until the client disconnects. A
watchdog needs the response to shut its socket. This adapter makes the same request `pull` makes
(`POST /images/create`) with the private helpers `pull` itself uses, and nothing else does;
tests/integration/test_dockerpy.py pins what it relies on, on both engines.

docker-py also reads ~/.docker itself when a call carries no explicit auth; lanmirror's rules for
that file (authn.dockerconfig) replace what it read, through the attribute its lookups consult.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import docker


class PullStream:
    """One `POST /images/create`: its decoded progress messages, and a way to cut it."""

    def __init__(self, api: docker.APIClient, params: dict[str, str], headers: dict[str, str]) -> None:
        self._api = api
        # What APIClient.pull does: the stream is read without a timeout (the watchdog bounds it).
        self._resp = api._post(api._url("/images/create"), params=params, headers=headers, stream=True,
                               timeout=None)

    def raise_for_status(self) -> None:
        """docker-py's own mapping of an HTTP error to its exceptions (404 → NotFound, ...)."""
        self._api._raise_for_status(self._resp)

    def messages(self) -> Iterator[dict[str, Any]]:
        """The progress messages, decoded, until the daemon ends the stream."""
        return iter(self._api._stream_helper(self._resp, decode=True))

    def abort(self) -> None:
        """Shut the socket under the stream: the blocked reader wakes, and the daemon cancels the
        pull on disconnect. Safe to call twice, or after the stream ended."""
        try:
            sock = self._api._get_raw_response_socket(self._resp)
            # SocketIO wraps the real socket; shutdown (not close) wakes the blocked reader thread.
            getattr(sock, "_sock", sock).shutdown(socket.SHUT_RDWR)
        except Exception:  # already closed is fine
            pass

    def close(self) -> None:
        self._resp.close()


def pin_auth_configs(api: docker.APIClient, configs: Any) -> None:
    """Make every lookup docker-py makes on its own (a pull or a distribution inspect without
    explicit auth, a login) use `configs` rather than the ~/.docker it loaded by itself."""
    api._auth_configs = configs
