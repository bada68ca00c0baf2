"""The helper container: lanmirror's own image, run by the daemon with `--network host` for the
length of one pull, when the job's loopback is not the daemon's (docker outside of docker).

Everything goes through the container's attached standard streams, the one channel the job has
through the daemon's socket: the spec (logins included) is the first line of its stdin, never its
command line or environment, which `docker inspect` and `ps` show; "stop", or the end of stdin,
stops it. So a job that is killed, whose attach connection the daemon then closes, stops its
helper at once, and the daemon removes it (`AutoRemove`). A deadline in the spec is the backstop,
and a label lets the next run remove any helper left past its deadline (a daemon restart, say).

The stream framing is docker-py's (`docker.utils.socket`); writing to the attach socket and closing
its write side go through the raw socket, the one thing docker-py offers no call for."""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import socket
import time
from types import TracebackType
from typing import Any

import docker.utils.socket as frames

from lanmirror.daemon.engine import Engine
from lanmirror.errors import EngineError, LanmirrorError

log = logging.getLogger("lanmirror.daemon.helper")

LABEL = "io.lanmirror.helper"
DEADLINE = "io.lanmirror.helper.deadline"  # epoch seconds after which any run may remove it
VERSION_LABEL = "org.opencontainers.image.version"
ENTRYPOINT = ["/opt/lanmirror/bin/python", "-I", "-m", "lanmirror.cmd.helper"]


def image_version(engine: Engine, image: str) -> str | None:
    """The lanmirror version an image says it holds (its OCI version label); None if the daemon
    does not have the image."""
    try:
        data = engine.api.inspect_image(image)
    except Exception as exc:  # docker-py's NotFound, or the daemon gone: both mean "not at hand"
        log.debug("helper image %s: %s", image, exc)
        return None
    labels = (data.get("Config") or {}).get("Labels") or {}
    return str(labels.get(VERSION_LABEL, ""))


def reap(engine: Engine, now: float | None = None, grace: float = 60.0) -> int:
    """Remove helpers past their deadline, or not running for over `grace` seconds since they were
    created (another job's helper between its creation and its start is left alone): what a
    killed job or a daemon restart left behind. Returns how many."""
    now = time.time() if now is None else now
    removed = 0
    for c in engine.api.containers(all=True, filters={"label": LABEL}):
        labels = c.get("Labels") or {}
        try:
            deadline = float(labels.get(DEADLINE, "0"))
        except ValueError:
            deadline = 0.0
        idle = c.get("State") != "running" and float(c.get("Created") or 0) < now - grace
        if deadline < now or idle:
            try:
                engine.api.remove_container(c["Id"], force=True)
                removed += 1
            except Exception as exc:
                log.debug("could not remove helper %s: %s", str(c.get("Id", ""))[:12], exc)
    return removed


class Helper:
    """One helper container serving one pull. `ready` holds its first message (port, prefix);
    `done` its last (what each source delivered), once stopped."""

    def __init__(self, engine: Engine, image: str, spec: dict[str, Any], seconds: float,
                 start_timeout: float = 60.0) -> None:
        self.engine, self.image, self.spec, self.seconds = engine, image, spec, seconds
        self.start_timeout = start_timeout
        self.ready: dict[str, Any] = {}
        self.done: dict[str, Any] = {}
        self.started_in = 0.0
        self._id = ""
        self._sock: Any = None
        self._raw: socket.socket | None = None
        self._buf = b""
        self._frames: Any = None

    def start(self) -> dict[str, Any]:
        began = time.monotonic()
        api = self.engine.api
        try:
            created = api.create_container(
                self.image, entrypoint=ENTRYPOINT, command=[], stdin_open=True,  # not detached: StdinOnce
                name=f"lanmirror-helper-{secrets.token_hex(6)}",
                labels={LABEL: "1", DEADLINE: str(int(time.time() + self.seconds + 30))},
                host_config=api.create_host_config(network_mode="host", auto_remove=True))
            self._id = created["Id"]
            self._sock = api.attach_socket(self._id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
            self._raw = getattr(self._sock, "_sock", self._sock)
            api.start(self._id)
            assert self._raw is not None
            self._raw.settimeout(self.start_timeout)
            self._raw.sendall(json.dumps(self.spec, separators=(",", ":")).encode() + b"\n")
            self._frames = frames.frames_iter(self._sock, tty=False)
            self.ready = self._message()
        except LanmirrorError:
            self.close()
            raise
        except Exception as exc:  # docker-py's errors, a socket timeout: the helper did not come up
            self.close()
            raise EngineError(f"the helper container ({self.image}) did not start: {exc}") from None
        if "error" in self.ready or not self.ready.get("ready"):
            self.close()
            raise EngineError(f"the helper container ({self.image}) said: {self.ready.get('error', self.ready)}")
        self.started_in = time.monotonic() - began
        return self.ready

    def _message(self) -> dict[str, Any]:
        """The next JSON line on the helper's stdout; its stderr lines are logged on the way."""
        while b"\n" not in self._buf:
            try:
                stream, data = next(self._frames)
            except StopIteration:
                raise EngineError(f"the helper container ({self.image}) ended without a word") from None
            if stream == frames.STDERR:
                for line in data.decode("utf-8", "replace").splitlines():
                    log.info("helper: %s", line[:500])
                continue
            self._buf += data
        line, self._buf = self._buf.split(b"\n", 1)
        try:
            message = json.loads(line)
        except ValueError:
            raise EngineError(f"the helper container ({self.image}) said something else than JSON") from None
        if not isinstance(message, dict):
            raise EngineError(f"the helper container ({self.image}) said something else than an object")
        return message

    def stop(self, timeout: float = 15.0) -> dict[str, Any]:
        """Ask it to stop and read what it delivered (empty when it did not say in time)."""
        if self._raw is None:
            return {}
        try:
            self._raw.settimeout(timeout)
            self._raw.sendall(b"stop\n")
            self.done = self._message()
        except Exception as exc:
            log.info("the helper did not report (%s)", exc)
        return self.done

    def close(self) -> None:
        """End the attach connection (the helper stops at its stdin's end and the daemon removes it);
        a helper that was created but never started is removed here."""
        if self._raw is not None:
            with contextlib.suppress(OSError):
                self._raw.close()
            self._raw = None
        if self._id:
            try:
                state = self.engine.api.inspect_container(self._id).get("State") or {}
                if not state.get("Running"):
                    self.engine.api.remove_container(self._id, force=True)
            except Exception as exc:  # already gone: AutoRemove did it
                log.debug("helper %s: %s", self._id[:12], exc)

    def __enter__(self) -> Helper:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()



