"""Runner shapes built with network namespaces, as fleets have them.

* `DooD` (docker outside of docker): the job runs in a network namespace of its own and drives the
  host's daemon through its unix socket. From the job, the Hub (and its token service) answer on
  the same 127.0.0.1 ports as everywhere (forwarded through unix sockets); the LAN registries do
  not: only the daemon reaches them, and the daemon does not reach the job's 127.0.0.1.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import uuid
from pathlib import Path

from .nsforward import pump

ROOT = Path(__file__).resolve().parents[2]


class _UnixToTcp:
    """In the root namespace: each connection on a unix socket goes on to 127.0.0.1:port."""

    def __init__(self, path: str, port: int) -> None:
        self.path, self.port = path, port
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(128)
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            try:
                out = socket.create_connection(("127.0.0.1", self.port), timeout=10)
                out.settimeout(None)
            except OSError:
                conn.close()
                continue
            threading.Thread(target=pump, args=(conn, out), daemon=True).start()
            threading.Thread(target=pump, args=(out, conn), daemon=True).start()

    def close(self) -> None:
        self.sock.close()


class Namespace:
    """A network namespace with loopback up, where `ports` of the root namespace's 127.0.0.1 answer
    too; commands run in it with `prefix`."""

    def __init__(self, ports: list[int]) -> None:
        self.name = f"lmx{uuid.uuid4().hex[:8]}"
        self.dir = tempfile.mkdtemp(prefix="lmx-shape-")
        self.ports = ports
        self.bridges: list[_UnixToTcp] = []
        self.proc: subprocess.Popen[str] | None = None

    @property
    def prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.name]

    def __enter__(self) -> Namespace:
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        subprocess.run([*self.prefix, "ip", "link", "set", "lo", "up"], check=True)
        pairs = []
        for port in self.ports:
            path = os.path.join(self.dir, f"{port}.sock")
            self.bridges.append(_UnixToTcp(path, port))
            pairs.append(f"{port}={path}")
        self.proc = subprocess.Popen([*self.prefix, sys.executable, "-m", "tests.stack.nsforward", *pairs],
                                     cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "ready"
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
        for b in self.bridges:
            b.close()
        subprocess.run(["ip", "netns", "delete", self.name], check=False)
