"""The parser's building blocks: the error a refused flag raises, the help formatter, and the
value types every command shares (seconds, MB/s, days, a date)."""

from __future__ import annotations

import argparse
import datetime as dt
import textwrap
from typing import NoReturn

from lanmirror.errors import BadInput


class UsageError(BadInput):
    """A flag argparse refused. The CLI prints usage and exits 2; the action names the input."""

    def __init__(self, message: str, parser: argparse.ArgumentParser) -> None:
        super().__init__(message)
        self.parser = parser


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message, self)


class HelpFormatter(argparse.HelpFormatter):
    """Wraps at spaces only (a default such as `mi300=mi30x,…` stays whole), and keeps indented
    lines of a description or epilog as written, so examples read as commands."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        return textwrap.wrap(" ".join(text.split()), width, break_long_words=False, break_on_hyphens=False)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        out: list[str] = []
        for block in text.split("\n\n"):
            lines = block.splitlines()
            if len(lines) > 1:  # written line by line (examples): kept as written
                out.append("\n".join(indent + line for line in lines))
            else:
                out.append(textwrap.fill(" ".join(block.split()), width, initial_indent=indent,
                                         subsequent_indent=indent, break_long_words=False,
                                         break_on_hyphens=False))
        return "\n\n".join(out)


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive")
    return value


def rate_mbps(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a rate in MB/s") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 (no floor) or a positive rate in MB/s")
    return value


def days(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 366:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of days from 1 to 366")
    return int(text)


def iso_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD") from None


_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def byte_size(text: str) -> int:
    """`200G`, `512M`, `1.5T` or a number of bytes (binary units, as `df -h` prints them)."""
    value, unit = text.strip().upper().rstrip("B").rstrip("I"), ""
    if value and value[-1] in _UNITS:
        value, unit = value[:-1], value[-1]
    try:
        size = int(float(value) * _UNITS[unit])
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size such as 200G, 512M or a number of bytes") from None
    if size < 1 << 20:
        raise argparse.ArgumentTypeError(f"{text!r} is below 1M: too small for a cache of image layers")
    return size


def host_port(text: str) -> tuple[str, int]:
    """HOST:PORT to listen on (HOST may be 0.0.0.0 or a node address)."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT, e.g. 127.0.0.1:5080")
    return host.strip("[]"), int(port)
