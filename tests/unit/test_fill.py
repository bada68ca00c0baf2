"""Reading a blob body into the reader's buffers, for both response shapes: Content-Length (read
straight into the buffer by http.client) and chunked transfer encoding (urllib3's reads). Each
buffer-full is exactly the next bytes of the body, whatever the chunk sizes on the wire."""

import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from lanmirror.remote.fill import fill

BODY = os.urandom(3 * (1 << 20) + 12345)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.send_response(200)
        if self.path == "/chunked":
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, len(BODY), 700_000):  # wire chunks larger than the room left in a buffer
                piece = BODY[i:i + 700_000]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.mark.parametrize("path", ["/sized", "/chunked"])
def test_every_buffer_full_is_exactly_the_next_bytes(server, path):
    with requests.Session() as session:
        resp = session.get(server + path, stream=True)
        out = bytearray()
        buf = bytearray(1 << 20)
        while True:
            n = fill(resp, memoryview(buf)[:1_000_000])
            out += buf[:n]
            if n < 1_000_000:
                break
        resp.close()
    assert bytes(out) == BODY
