"""The record line: `lanmirror-record/1 ` and one JSON object, signed when a key is set.

Why a signature and not only a marker: a job log is written by every step of the job, and a step
can print any text, including a perfect copy of a record line, a nonce it saw earlier in the same
log, or a step header. Nothing in the text of a log tells lanmirror's line from a copy. What a
copy cannot make is an HMAC under a key it does not have: the key (LANMIRROR_RECORD_KEY, a
repository secret) is handed only to lanmirror's own steps and to the report, masked, and blanked
for credential helpers. Each record also carries a random per-run nonce (a replayed genuine line
counts once) and the run it was written in (a line copied from another run's log is not counted).
Without a key, records are read but counted as unsigned, and the report says so."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import math
import re
from typing import Any

SCHEMA = 1
PREFIX = f"lanmirror-record/{SCHEMA} "
KINDS = ("resolve", "mirror", "serve")  # serve: the node mirror, one per pull and one per blob read
MAX_LINE = 64 * 1024
_NONCE = re.compile(r"[0-9a-f]{32}")
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._:/@+=-]")


class Rejected(ValueError):
    """A line that looks like a record but does not count; `reason` is one of malformed,
    unsigned, forged, foreign (another run's), duplicate."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


def canonical(record: dict[str, Any]) -> bytes:
    """The bytes the signature covers: the record without its `mac`, keys sorted, ASCII only."""
    body = {k: v for k, v in record.items() if k != "mac"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def mac(record: dict[str, Any], key: str) -> str:
    return "hmac-sha256:" + hmac.new(key.encode(), canonical(record), hashlib.sha256).hexdigest()


def safe_name(text: object) -> str:
    """A runner, registry, job or workflow name, kept to a plain charset: it comes from the
    environment or from a record anyone may have written, and ends up in logs and labels."""
    return _UNSAFE_NAME.sub("_", str(text))[:100]


def to_line(record: dict[str, Any], key: str = "") -> str:
    """One line, whatever the record quotes: JSON escapes every control character, ASCII only
    leaves nothing a terminal could read as more than text, and the legacy `##[` command prefix
    (which older runners honour anywhere in a line) is written `#\u0023[`, which JSON reads back
    as the same text."""
    body = {k: v for k, v in record.items() if k != "mac"}
    if key:
        body["mac"] = mac(body, key)
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return PREFIX + text.replace("##[", "#\\u0023[")


def from_line(line: str, key: str = "") -> dict[str, Any]:
    """The record on `line` (which must start with PREFIX), checked for shape and, with `key`, for
    its signature. Raises Rejected."""
    if not line.startswith(PREFIX):
        raise Rejected("malformed", "no record prefix")
    if len(line) > MAX_LINE:
        raise Rejected("malformed", f"longer than {MAX_LINE} characters")
    try:
        record = json.loads(line[len(PREFIX):], parse_constant=_no_constant, parse_float=_finite)
    except (ValueError, RecursionError):  # not JSON, NaN/Infinity, or nested deeper than the parser goes
        raise Rejected("malformed", "not JSON") from None
    check_shape(record)
    if key:
        given = record.get("mac")
        if not isinstance(given, str):
            raise Rejected("unsigned", "a key was given and the record carries no signature")
        # compare_digest raises on non-ASCII text: such a signature is simply not ours.
        if not given.isascii() or not hmac.compare_digest(given, mac(record, key)):
            raise Rejected("forged", "the signature does not match")
    return dict(record)


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not a number a record holds")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):  # 1e999
        raise ValueError(f"{text[:20]} is not a number a record holds")
    return number


def check_shape(record: object) -> None:
    """The fields every reader relies on; anything else is optional and read defensively."""
    if not isinstance(record, dict):
        raise Rejected("malformed", "not an object")
    if record.get("schema") != SCHEMA or record.get("kind") not in KINDS:
        raise Rejected("malformed", "unknown schema or kind")
    if not isinstance(record.get("nonce"), str) or not _NONCE.fullmatch(record["nonce"]):
        raise Rejected("malformed", "bad nonce")
    if not isinstance(record.get("time"), str) or not _TIME.fullmatch(record["time"]):
        raise Rejected("malformed", "bad time")
    try:
        dt.date.fromisoformat(record["time"][:10])
    except ValueError:
        raise Rejected("malformed", "impossible date") from None
    if not isinstance(record.get(record["kind"]), dict):
        raise Rejected("malformed", f"no {record['kind']} section")
    if not isinstance(record.get("github") or {}, dict):
        raise Rejected("malformed", "github is not an object")


def finite(value: object) -> float | None:
    """A count, size or duration from a record: a finite number at least 0, else None (a record's
    numbers may be anything: 1e999 reads as infinity, which no int() takes)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value) if not isinstance(value, int) or abs(value) < 1 << 63 else math.inf
    return number if math.isfinite(number) and number >= 0 else None
