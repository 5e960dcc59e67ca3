"""A fault-injecting HTTP proxy for an S3 server on loopback (tests only).

Each request, in the order the proxy receives it, draws from a random
stream seeded by ``seed``: with probability ``rate`` it fails before
reaching the server, as an overloaded or broken store does, with one of a
503 ``SlowDown``, a 500 ``InternalError`` or a reset connection (no
response); otherwise it is forwarded and the server's answer returned. The
failures change nothing on the server, so a retried request is safe.
"""

from __future__ import annotations

import contextlib
import http.client
import random
import socket
import struct
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_BODIES = {
    503: b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>SlowDown</Code>"
         b"<Message>Please reduce your request rate.</Message></Error>",
    500: b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>InternalError</Code>"
         b"<Message>We encountered an internal error. Please try again.</Message></Error>",
}


class FaultyProxy:
    """Counts of what the proxy did, and the knobs (settable while it runs)."""

    def __init__(self, upstream_port: int, rate: float, seed: int):
        self.upstream_port, self.rate = upstream_port, rate
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self.counts = {"forwarded": 0, 503: 0, 500: 0, "reset": 0}

    def draw(self) -> str | int:
        with self._lock:
            if self._random.random() >= self.rate:
                kind: str | int = "forwarded"
            else:
                kind = self._random.choice([503, 500, "reset"])
            self.counts[kind] += 1
            return kind


def _handler(proxy: FaultyProxy) -> type:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # quiet
            pass

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            kind = proxy.draw()
            if kind == "reset":
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                           struct.pack("ii", 1, 0))
                self.close_connection = True
                self.connection.close()
                return
            if kind in _BODIES:
                self.send_response(kind)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(_BODIES[kind])))
                self.end_headers()
                if self.command != "HEAD":  # a HEAD answer has no body
                    self.wfile.write(_BODIES[kind])
                return
            upstream = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port,
                                                  timeout=60)
            headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
            headers["Host"] = f"127.0.0.1:{proxy.upstream_port}"
            upstream.request(self.command, self.path, body=body, headers=headers)
            reply = upstream.getresponse()
            data = reply.read()
            self.send_response(reply.status, reply.reason)
            for k, v in reply.getheaders():
                if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            upstream.close()

        def _safe(self) -> None:
            with contextlib.suppress(ConnectionError):  # the client gave up
                self._serve()

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _safe

    return Handler


@contextlib.contextmanager
def faulty_proxy(upstream_port: int, rate: float, seed: int = 0) -> Iterator[tuple]:
    """Serve the proxy on a free loopback port; yields (endpoint URL, proxy)."""
    proxy = FaultyProxy(upstream_port, rate, seed)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(proxy))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", proxy
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
