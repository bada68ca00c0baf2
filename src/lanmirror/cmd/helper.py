"""`python -m lanmirror.cmd.helper`: the entry point of the helper container (docker outside of
docker). It reads one JSON spec line from standard input, never from its command line or
environment (which `docker inspect` and `ps` show): the sources of one digest, their logins, and a
deadline. Then it serves that one pull (`serve.onepull`) until SIGTERM or the deadline.

Exit codes: 0 served and stopped, 2 a bad spec, 3 a version other than the job's (the protocol
between them is not promised across versions), 1 the sources failed."""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from typing import Any

from lanmirror import __version__
from lanmirror.authn import Credentials
from lanmirror.cmd.wiring import Clients
from lanmirror.errors import LanmirrorError
from lanmirror.remote.ranges import RangeSettings
from lanmirror.retry import DEFAULT_POLICY, describe
from lanmirror.serve.feed import Source
from lanmirror.serve.onepull import serve_pull

SPEC_MAX = 64 * 1024


def say(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def read_spec(raw: bytes) -> dict[str, Any]:
    spec = json.loads(raw.decode())
    ok = (isinstance(spec, dict) and isinstance(spec.get("repo"), str) and isinstance(spec.get("digest"), str)
          and isinstance(spec.get("sources"), list) and spec["sources"]
          and all(isinstance(s, dict) and all(isinstance(s.get(k), str) for k in ("kind", "registry", "repo"))
                  for s in spec["sources"])
          and isinstance(spec.get("seconds"), (int, float)) and isinstance(spec.get("credentials", {}), dict)
          and isinstance(spec.get("insecure", []), list))
    if not ok:
        raise ValueError("the spec is not of the expected shape")
    return dict(spec)


def watch_stdin(stop: threading.Event) -> None:
    """"stop" from the job, or the end of stdin: the job is done, or gone (the daemon closes the
    attach connection of a job that was killed)."""
    for line in sys.stdin.buffer:
        if line.strip() == b"stop":
            break
    stop.set()


def main() -> int:
    try:
        spec = read_spec(sys.stdin.buffer.readline(SPEC_MAX))
    except (ValueError, UnicodeDecodeError) as exc:
        say({"error": f"bad spec: {exc}"})
        return 2
    if spec.get("version") != __version__:
        say({"error": f"this helper image is lanmirror {__version__}, the job runs lanmirror {spec.get('version')}"})
        return 3
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    threading.Thread(target=watch_stdin, args=(stop,), name="stdin", daemon=True).start()
    creds = {reg: Credentials(str(c.get("username", "")), str(c.get("password", "")), "the job")
             for reg, c in spec.get("credentials", {}).items() if isinstance(c, dict)}
    settings = RangeSettings(**{k: v for k, v in (spec.get("range") or {}).items()
                                if k in RangeSettings.__dataclass_fields__})
    with Clients(credentials=creds, insecure=[str(i) for i in spec.get("insecure", [])], daemon=False,
                 policy=DEFAULT_POLICY) as clients:
        sources = [Source(s["kind"], clients.registry(s["registry"]), s["repo"]) for s in spec["sources"]]
        try:
            serve_pull(spec["repo"], spec["digest"], sources, DEFAULT_POLICY, settings,
                       manifest_deadline=float(spec.get("manifest_seconds", 10.0)), stop=stop,
                       until=time.monotonic() + float(spec["seconds"]), say=say)
        except LanmirrorError as exc:
            say({"error": describe(exc)})
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
