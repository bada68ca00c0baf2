"""A network failure says its cause in a few words, and a name that does not resolve is not retried."""

import socket

import pytest
import requests

from lanmirror.cmd.wiring import Clients
from lanmirror.retry import RetryPolicy, UnknownHost, describe, is_transient, network_cause


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_refused_connection_says_refused():
    reg = Clients(daemon=False, policy=RetryPolicy(attempts=1)).registry(f"127.0.0.1:{closed_port()}")
    with pytest.raises(requests.ConnectionError) as caught:
        reg.head_manifest("rocm/sgl-dev", "latest", retry=False)
    assert str(caught.value).endswith("connection refused"), caught.value


def test_an_unknown_host_says_so_and_is_not_retried(monkeypatch):
    lookups = []
    real = socket.getaddrinfo

    def counting(host, *args, **kwargs):  # the suite's guard answers gaierror for this name, as DNS would
        lookups.append(host)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", counting)
    reg = Clients(daemon=False, policy=RetryPolicy(attempts=5, base=0.01, cap=0.02)).registry("registry.invalid:5000")
    with pytest.raises(UnknownHost) as caught:
        reg.head_manifest("rocm/sgl-dev", "latest", retry=True)
    assert "unknown host" in str(caught.value) and not is_transient(caught.value)
    assert len(lookups) <= 2, lookups  # HTTPS then the insecure rule's HTTP at most: no retry loop


def test_causes_are_found_in_the_chain_urllib3_wraps_them_in():
    def wrapped(inner: BaseException) -> requests.ConnectionError:
        outer = requests.ConnectionError(f"HTTPConnectionPool(host='x', port=1): Max retries exceeded ({inner!r})")
        outer.__context__ = inner
        return outer

    assert network_cause(wrapped(ConnectionRefusedError(111, "Connection refused"))) == "connection refused"
    assert network_cause(wrapped(socket.gaierror(-2, "Name or service not known"))) == "unknown host"
    assert network_cause(wrapped(TimeoutError("timed out"))) == "timed out"
    assert network_cause(wrapped(ConnectionResetError(104, "reset"))) == "connection reset"
    assert describe(wrapped(ConnectionRefusedError(111, "x"))) == "ConnectionError: connection refused"
