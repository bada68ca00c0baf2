"""The endpoint is a small, hard server: any local process can find its port."""

from __future__ import annotations

import http.client
import socket
import time
import tracemalloc

import pytest

from lanmirror.retry import RetryPolicy
from lanmirror.serve import BlobSources, Endpoint, Source
from lanmirror.serve.endpoint import LOG_KEEP, MAX_PATH
from lanmirror.serve.image import ServedImage


def endpoint(**kw: object) -> Endpoint:
    def no_manifest(digest: str):
        raise AssertionError("no manifest is loaded in these tests")

    feed = BlobSources([Source("lan", None, "r/x")], RetryPolicy(attempts=1))  # type: ignore[arg-type]
    return Endpoint("rocm/sgl-dev", ServedImage(no_manifest), feed, **kw)  # type: ignore[arg-type]


def pipelined(port: int, count: int, path: str) -> int:
    """`count` GETs on one connection, sent at once; returns how many answers came back."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode() * count)
        data = b""
        while data.count(b"HTTP/1.1 ") < count:
            more = conn.recv(1 << 16)
            if not more:
                break
            data += more
    return data.count(b"HTTP/1.1 ")


def test_a_local_flood_of_bogus_requests_is_counted_not_stored():
    with endpoint() as ep:
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        bogus = "/v2/other/" + "a" * (MAX_PATH - 20)  # long, but under the limit: answered 404
        answered = sum(pipelined(ep.port, 500, bogus) for _ in range(6))
        grown = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        assert answered == 3000 and ep.refused == 3000
        assert len(ep.requests) == 0  # nothing of another path is kept
        assert grown < 2 << 20, grown  # 3,000 paths of 1 KB kept would be 3 MB, and the old log kept 64 KB each
        own = f"/v2/{ep.prefix}/rocm/sgl-dev/blobs/sha256:{'0' * 64}"
        assert pipelined(ep.port, LOG_KEEP + 50, own) == LOG_KEEP + 50
        assert len(ep.requests) == LOG_KEEP  # the last ones, bounded


def test_an_overlong_path_gets_414():
    with endpoint() as ep:
        conn = http.client.HTTPConnection("127.0.0.1", ep.port, timeout=5)
        conn.request("GET", f"/v2/{ep.prefix}/rocm/sgl-dev/blobs/" + "a" * MAX_PATH)
        assert conn.getresponse().status == 414
        assert ep.refused == 1


def test_idle_connections_up_to_the_cap_then_turned_away_and_timed_out():
    with endpoint(max_connections=4, idle_timeout=1.0) as ep:
        idle = [socket.create_connection(("127.0.0.1", ep.port), timeout=5) for _ in range(4)]
        time.sleep(0.3)  # the server has taken them
        extra = socket.create_connection(("127.0.0.1", ep.port), timeout=5)
        assert extra.recv(1) == b""  # over the cap: closed at once
        assert ep.turned_away >= 1
        for conn in idle:  # idle past the timeout: closed by the server
            assert conn.recv(1) == b""
        conn = http.client.HTTPConnection("127.0.0.1", ep.port, timeout=5)
        conn.request("GET", "/v2/")
        assert conn.getresponse().status == 200  # the slots came back
        for c in [*idle, extra]:
            c.close()


def test_a_kept_alive_connection_gets_nothing_after_close():
    ep = endpoint().start()
    conn = http.client.HTTPConnection("127.0.0.1", ep.port, timeout=5)
    conn.request("GET", "/v2/")
    first = conn.getresponse()
    first.read()
    assert first.status == 200 and not first.will_close
    ep.close()
    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        conn.request("GET", "/v2/")
        conn.getresponse()
