"""`lanmirror` command line: parse flags, call one use case, print the result. No logic here.

Exit codes (a contract that scripts rely on): 0 success, 1 nothing found / something failed,
2 bad input.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

from lanmirror import __version__
from lanmirror.engine import Engine
from lanmirror.errors import BadInput, LanmirrorError
from lanmirror.progress import Progress
from lanmirror.reference import normalize_registry
from lanmirror.resolve import POLICIES, NothingFound, ResolveOptions, resolve
from lanmirror.settings import hub_credentials, hub_registry, lan_registries, split_list

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse exits 2 too; keep its message, add the hint
        self.print_usage(sys.stderr)
        sys.stderr.write(f"{self.prog}: error: {message}\n(see `{self.prog} --help`)\n")
        raise SystemExit(EXIT_BAD_INPUT)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive")
    return value


def _days(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 366:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of days from 1 to 366")
    return int(text)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object with every output on stdout")
    p.add_argument("--insecure-registry", action="append", default=[], metavar="HOST[:PORT]",
                   help="allow plain HTTP to this registry (loopback and the daemon's insecure-registries "
                        "are allowed already)")
    p.add_argument("-v", "--verbose", action="store_true", help="log every request decision")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="lanmirror",
        description="Keep nightly container images on the LAN: mirror them from Docker Hub to a LAN registry, "
                    "and resolve the newest one for a CI job without spending Docker Hub pull quota.",
    )
    parser.add_argument("--version", action="version", version=f"lanmirror {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    r = sub.add_parser(
        "resolve", help="pick the newest nightly (cache → LAN → Hub) and pull it",
        description="Find the newest tag <base-tag>-<YYYYMMDD> of the last N days (UTC), preferring the local "
                    "Docker cache, then the LAN registries, then the Hub; probe with manifest HEADs only (free on "
                    "Docker Hub); verify a LAN copy against the Hub's digest; pull with a stall guard. Prints the "
                    "image to `docker run` on the last line of stdout. Exit 0 found, 1 nothing in the window (or "
                    "nothing could be pulled), 2 bad input.",
    )
    r.add_argument("--repo", required=True, help="repository, e.g. rocm/sgl-dev")
    r.add_argument("--base-tag", action="append", default=[], metavar="TAG",
                   help="nightly tag prefix, e.g. v0.5.5-rocm700-mi30x; repeat for fallbacks in preference order")
    r.add_argument("--days", type=_days, default=7, help="how many days back to look (default 7, today included)")
    r.add_argument("--lan-registry", action="append", default=[], metavar="HOST[:PORT]",
                   help="LAN registry, repeat for several in preference order (default: $LANMIRROR_LAN_REGISTRY "
                        "or $LOCAL_DOCKER_REGISTRY)")
    r.add_argument("--hub-registry", metavar="HOST[:PORT]",
                   help="upstream registry (default: $LANMIRROR_HUB_REGISTRY or docker.io)")
    r.add_argument("--policy", choices=POLICIES, default="cache-first",
                   help="cache-first: any cached candidate wins, then the LAN's newest, then the Hub's; "
                        "newest: the newest candidate anywhere, from the nearest source (default cache-first)")
    r.add_argument("--no-pull", dest="pull", action="store_false", help="only resolve; do not pull")
    r.add_argument("--no-verify", dest="verify", action="store_false",
                   help="do not compare a LAN copy's digest with the Hub's")
    r.add_argument("--image", help="skip the search and use this image (still looked up, pulled and reported)")
    r.add_argument("--probe-timeout", type=_positive_float, default=3.0,
                   help="seconds a LAN registry gets to answer all probes before it is skipped (default 3)")
    r.add_argument("--stall-timeout", type=_positive_float, default=120.0,
                   help="abort a pull that makes no progress for this many seconds and try the next source "
                        "(default 120)")
    r.add_argument("--pull-timeout", type=_positive_float, default=3600.0,
                   help="abort any pull that takes longer than this (default 3600)")
    r.add_argument("--hub-username", help="Hub user (default: $DOCKERHUB_USERNAME, else `docker login`'s store)")
    r.add_argument("--no-daemon-probe", dest="daemon_probe", action="store_false",
                   help="do not ask the Docker daemon to probe a LAN registry this process cannot reach")
    _common(r)
    r.set_defaults(func=cmd_resolve)
    return parser


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr,
                        format="%(message)s" if not verbose else "%(asctime)s %(name)s %(message)s")
    for noisy in ("urllib3", "docker"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _pull_progress() -> tuple[Callable[[int, int, str], None], Progress]:
    prog = Progress("pull")
    return (lambda done, total, _status: prog.set(done, total)), prog


def cmd_resolve(args: argparse.Namespace) -> int:
    hub = hub_registry(args.hub_registry)
    opts = ResolveOptions(
        repo=args.repo, base_tags=split_list(args.base_tag), days=args.days,
        lan_registries=lan_registries(args.lan_registry), hub_registry=hub, policy=args.policy, pull=args.pull,
        verify=args.verify, image=args.image, probe_timeout=args.probe_timeout, stall_timeout=args.stall_timeout,
        pull_timeout=args.pull_timeout, hub_credentials=hub_credentials(normalize_registry(hub), args.hub_username),
        insecure_registries=split_list(args.insecure_registry), daemon_probe=args.daemon_probe,
    )
    on_progress, prog = _pull_progress()
    try:
        result = resolve(opts, engine=Engine(), on_progress=on_progress,
                         on_event=lambda msg: logging.getLogger("lanmirror").info("%s", msg))
    except NothingFound as exc:
        prog.close()
        if args.json:
            print(json.dumps({"error": str(exc), "attempts": [a.__dict__ for a in exc.attempts]}))
        logging.getLogger("lanmirror").error("error: %s", exc)
        return EXIT_FAILED
    prog.close()
    log = logging.getLogger("lanmirror")
    log.info("resolved %s from %s (%s, %s day(s) old, %s)", result.image, result.source, result.digest[:19],
             result.age_days if result.age_days is not None else "?",
             {True: "verified against the Hub", False: "UNVERIFIED", None: "no verification"}[result.verified])
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        print(result.image)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_BAD_INPUT
    _setup_logging(args.verbose)
    try:
        return int(args.func(args))
    except BadInput as exc:
        logging.getLogger("lanmirror").error("error: %s", exc)
        return EXIT_BAD_INPUT
    except LanmirrorError as exc:
        logging.getLogger("lanmirror").error("error: %s", exc)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
