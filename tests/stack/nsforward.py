"""Run inside a network namespace: make registries of the root namespace appear on this namespace's
127.0.0.1 at the same ports, through unix sockets (a unix socket path works across network
namespaces). Usage: python -m tests.stack.nsforward PORT=UNIX_PATH [...]. It prints "ready" once
listening and runs until killed.

The tests' runner shapes use it to give a job in its own network namespace the Hub (and, for
docker-in-docker, the LAN) under the very names the rest of the stack uses."""

from __future__ import annotations

import contextlib
import socket
import sys
import threading


def pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(1 << 16):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


def serve(port: int, path: str) -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(128)
    while True:
        conn, _ = listener.accept()
        out = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            out.connect(path)
        except OSError:
            conn.close()
            out.close()
            continue
        threading.Thread(target=pump, args=(conn, out), daemon=True).start()
        threading.Thread(target=pump, args=(out, conn), daemon=True).start()


def main(argv: list[str]) -> None:
    for arg in argv:
        port, path = arg.split("=", 1)
        threading.Thread(target=serve, args=(int(port), path), daemon=True).start()
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main(sys.argv[1:])
