"""The one retry policy, for every caller: HTTP requests, blob copies, engine pulls, logins.

Exponential backoff with *full jitter* (a uniform wait in [0, min(cap, base * 2**n)]) so that a
fleet of runners hit by the same outage does not come back in lock-step; `Retry-After` wins
when the server sends one. Only transient failures are retried: a 401 or a 404 will not change
by waiting, and Docker Hub's pull limit lasts hours, so those fail (or fall back) at once.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import random
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import requests
import tenacity

from lanmirror.errors import TransientError

log = logging.getLogger("lanmirror.retry")

T = TypeVar("T")


def parse_retry_after(value: str | None, now: dt.datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or HTTP-date); None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    current = now or dt.datetime.now(dt.timezone.utc)
    return max(0.0, (when - current).total_seconds())


class UnknownHost(requests.ConnectionError):
    """The registry's name did not resolve: a typo or a missing DNS entry, which no retry fixes."""


def network_cause(exc: BaseException) -> str:
    """The cause of a network failure in a few words (connection refused, unknown host, timed out,
    TLS: …, connection reset, no route to host), from the chain requests and urllib3 wrap it in;
    the exception's type name when none is recognised."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        e = todo.pop(0)
        if id(e) in seen:
            continue
        seen.add(id(e))
        text = str(e)
        if isinstance(e, socket.gaierror) or "NameResolutionError" in type(e).__name__ or any(
                s in text for s in ("Name or service not known", "Temporary failure in name resolution",
                                    "nodename nor servname", "No address associated")):
            return "unknown host"
        if isinstance(e, ConnectionRefusedError) or "Connection refused" in text:
            return "connection refused"
        if isinstance(e, ssl.SSLError) or (isinstance(e, requests.exceptions.SSLError) and e is not exc):
            return f"TLS: {getattr(e, 'reason', None) or text.splitlines()[0][:120] if text else 'handshake failed'}"
        if isinstance(e, (TimeoutError, requests.Timeout)) or "timed out" in text:
            return "timed out"
        if isinstance(e, ConnectionResetError) or "Connection reset" in text:
            return "connection reset"
        if "No route to host" in text or "Network is unreachable" in text:
            return "no route to host"
        todo += [a for a in e.args if isinstance(a, BaseException)]
        todo += [x for x in (getattr(e, "reason", None), e.__cause__, e.__context__) if isinstance(x, BaseException)]
    return type(exc).__name__


def is_transient(exc: BaseException) -> bool:
    """True for failures that may succeed on a later attempt."""
    if isinstance(exc, TransientError):
        return True
    if isinstance(exc, UnknownHost):
        return False
    if isinstance(exc, (requests.ConnectionError, requests.Timeout)):
        return True
    # docker-py raises APIError subclasses of requests.HTTPError; only 429/5xx are transient.
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        status = exc.response.status_code
        return status == 429 or status >= 500
    return isinstance(exc, (ConnectionError, TimeoutError))


def describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, (requests.ConnectionError, requests.Timeout)) and ("Pool(" in text or "Max retries" in text):
        text = network_cause(exc)  # urllib3's pool message buries the cause at its end
    name = type(exc).__name__
    return f"{name}: {text}"[:300] if text else name


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry. One instance is passed down to every layer."""

    attempts: int = 5
    base: float = 0.5
    cap: float = 30.0
    max_retry_after: float = 120.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False, repr=False)

    def backoff(self, attempt: int) -> float:
        """Full-jitter wait after failed attempt number `attempt` (1-based)."""
        ceiling = min(self.cap, self.base * (2 ** (attempt - 1)))
        return self.rng.uniform(0, ceiling)

    def wait_for(self, attempt: int, exc: BaseException | None) -> float:
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            # Honour the server, plus a little jitter so a fleet does not return at one instant.
            return min(self.max_retry_after, float(retry_after)) + self.rng.uniform(0, min(1.0, self.base))
        return self.backoff(attempt)

    def _log(self, what: str, attempt: int, exc: BaseException | None, wait: float) -> None:
        log.warning("%s: attempt %d/%d failed (%s); retrying in %.1fs",
                    what, attempt, self.attempts, describe(exc) if exc else "?", wait)

    def pause(self, what: str, attempt: int, exc: BaseException) -> None:
        """For loops that resume rather than restart (a stream picking up at the byte where it
        broke): raise `exc` once the attempts are spent, else log and wait like `call` does."""
        if attempt >= self.attempts or not is_transient(exc):
            raise exc
        wait = self.wait_for(attempt, exc)
        self._log(what, attempt, exc, wait)
        self.sleep(wait)

    def call(
        self,
        fn: Callable[[], T],
        what: str,
        *,
        deadline: float | None = None,
        retry_if: Callable[[BaseException], bool] = is_transient,
    ) -> T:
        """Run `fn` until it succeeds, fails permanently, runs out of attempts or passes `deadline`
        (seconds from now). The last exception is re-raised unchanged."""
        attempts = self.attempts
        start = time.monotonic()

        def _wait(state: tenacity.RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            wait = self.wait_for(state.attempt_number, exc)
            if deadline is not None:
                wait = max(0.0, min(wait, deadline - (time.monotonic() - start)))
            return wait

        def _stop(state: tenacity.RetryCallState) -> bool:
            if state.attempt_number >= attempts:
                return True
            return deadline is not None and time.monotonic() - start >= deadline

        def _before_sleep(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            wait = state.next_action.sleep if state.next_action else 0.0
            self._log(what, state.attempt_number, exc, wait)

        retrying = tenacity.Retrying(
            stop=_stop,
            wait=_wait,
            retry=tenacity.retry_if_exception(retry_if),
            before_sleep=_before_sleep,
            sleep=self.sleep,
            reraise=True,
        )
        return retrying(fn)


DEFAULT_POLICY = RetryPolicy()


def run_bounded(tasks: list[Callable[[], Any]], deadline: float) -> list[tuple[bool, Any]]:
    """Run every task at once on daemon threads; return (finished, result-or-exception) per task
    after at most `deadline` seconds. Daemon threads, because a probe stuck on a dead registry
    must not hold the process open after the answer is known (a ThreadPoolExecutor joins its
    threads at exit)."""
    results: list[tuple[bool, Any]] = [(False, None)] * len(tasks)
    done = threading.Semaphore(0)

    def work(i: int, task: Callable[[], Any]) -> None:
        try:
            results[i] = (True, task())
        except BaseException as exc:
            results[i] = (True, exc)
        finally:
            done.release()

    for i, task in enumerate(tasks):
        threading.Thread(target=work, args=(i, task), name="probe", daemon=True).start()
    end = time.monotonic() + deadline
    for _ in tasks:
        if not done.acquire(timeout=max(0.0, end - time.monotonic())):
            break
    return list(results)
