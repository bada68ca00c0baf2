import datetime as dt
import logging
import random

import pytest
import requests

from lanmirror.errors import AuthError, NotFound, PullLimitExceeded, TransientError
from lanmirror.retry import RetryPolicy, is_transient, parse_retry_after


def make_policy(**kw):
    sleeps: list[float] = []
    policy = RetryPolicy(rng=random.Random(7), sleep=sleeps.append, **kw)
    return policy, sleeps


def flaky(errors):
    """A callable that raises each error in turn, then returns 'ok'."""
    calls = []

    def fn():
        calls.append(1)
        if len(calls) <= len(errors):
            raise errors[len(calls) - 1]
        return "ok"

    return fn, calls


def http_error(status):
    resp = requests.Response()
    resp.status_code = status
    return requests.HTTPError(f"HTTP {status}", response=resp)


@pytest.mark.parametrize(
    "exc",
    [TransientError("503", status=503), requests.ConnectionError("reset"), requests.Timeout("slow"),
     http_error(500), http_error(429), ConnectionResetError("reset")],
)
def test_transient_failures_are_retried(exc):
    policy, sleeps = make_policy(attempts=3)
    fn, calls = flaky([exc, exc])
    assert policy.call(fn, "op") == "ok"
    assert len(calls) == 3 and len(sleeps) == 2


@pytest.mark.parametrize(
    "exc",
    [AuthError("401", status=401), NotFound("404", status=404), PullLimitExceeded("429", status=429),
     http_error(400), http_error(401), http_error(403), http_error(404), ValueError("bug")],
)
def test_permanent_failures_are_not_retried(exc):
    policy, sleeps = make_policy(attempts=5)
    fn, calls = flaky([exc])
    with pytest.raises(type(exc)):
        policy.call(fn, "op")
    assert len(calls) == 1 and sleeps == []


def test_gives_up_after_attempts_and_reraises_last():
    policy, sleeps = make_policy(attempts=4)
    errors = [TransientError(f"e{i}") for i in range(10)]
    fn, calls = flaky(errors)
    with pytest.raises(TransientError, match="e3"):
        policy.call(fn, "op")
    assert len(calls) == 4 and len(sleeps) == 3


def test_full_jitter_within_exponential_bounds_and_cap():
    policy = RetryPolicy(base=0.5, cap=4.0, rng=random.Random(1))
    for attempt in range(1, 12):
        ceiling = min(4.0, 0.5 * 2 ** (attempt - 1))
        waits = [policy.backoff(attempt) for _ in range(200)]
        assert all(0 <= w <= ceiling for w in waits)
        # Full jitter: the spread covers most of [0, ceiling], not a fixed value.
        assert max(waits) - min(waits) > ceiling * 0.8


def test_retry_after_is_honoured_and_capped():
    policy, sleeps = make_policy(attempts=3, base=0.1, max_retry_after=5)
    fn, _ = flaky([TransientError("429", status=429, retry_after=2), TransientError("429", retry_after=600)])
    assert policy.call(fn, "op") == "ok"
    assert 2.0 <= sleeps[0] <= 2.1
    assert 5.0 <= sleeps[1] <= 5.1


def test_deadline_stops_retrying():
    policy = RetryPolicy(attempts=100, base=0.01, cap=0.01)
    fn, calls = flaky([TransientError("x")] * 1000)
    with pytest.raises(TransientError):
        policy.call(fn, "op", deadline=0.2)
    assert 2 <= len(calls) < 100


def test_each_wait_is_logged(caplog):
    policy, sleeps = make_policy(attempts=3)
    fn, _ = flaky([TransientError("HTTP 503")])
    with caplog.at_level(logging.WARNING, logger="lanmirror.retry"):
        policy.call(fn, "HEAD hub/x")
    msg = caplog.records[0].getMessage()
    assert msg.startswith("HEAD hub/x: attempt 1/3 failed (TransientError: HTTP 503); retrying in ")
    assert msg.endswith(f"{sleeps[0]:.1f}s")


def test_parse_retry_after_seconds_and_http_date():
    now = dt.datetime(2026, 11, 29, 12, 0, 0, tzinfo=dt.timezone.utc)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Sun, 29 Nov 2026 12:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Sun, 29 Nov 2026 11:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_is_transient_classification():
    assert is_transient(TransientError("x"))
    assert not is_transient(AuthError("x"))
    assert not is_transient(KeyError("x"))
