"""The daemon's error text is classified for the retry policy; an address's port is not a status."""

from lanmirror.daemon.classify import classify_stream_error
from lanmirror.errors import EngineError, TransientError


def test_a_port_5000_is_not_an_http_500():
    err = classify_stream_error('Get "https://10.0.0.5:5000/v2/": http: server gave HTTP response to HTTPS client',
                                "lan 10.0.0.5:5000")
    assert type(err) is EngineError  # a configuration error: retrying it changes nothing


def test_server_errors_are_transient_however_worded():
    for text in ("received unexpected HTTP status: 503 Service Unavailable", "status code 502 from upstream",
                 "error 500: internal", "HTTP 504 gateway timeout at 127.0.0.1:5002"):
        assert isinstance(classify_stream_error(text, "lan"), TransientError), text
    assert type(classify_stream_error("pulling from 127.0.0.1:5003/x failed: invalid reference", "lan")) is EngineError
