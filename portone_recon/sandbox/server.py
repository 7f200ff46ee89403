"""Serve a :class:`SandboxWorld` on 127.0.0.1 for any HTTP client (HTTP/1.1 keep-alive, backlog 256)."""

from __future__ import annotations

import contextlib
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from portone_recon.sandbox.http_api import handle
from portone_recon.sandbox.v2_api import SandboxV2
from portone_recon.sandbox.world import SandboxWorld


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # TCP_NODELAY, as production HTTP servers set it: headers and body go out in two writes, and with
    # Nagle's algorithm the second small segment waited for the client's delayed ACK (~40 ms on every
    # small answer over loopback: a billing-key lookup at 50 ms latency took 95 ms).
    disable_nagle_algorithm = True
    server: SandboxServer

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        query = parse_qsl(parts.query, keep_blank_values=True)
        headers = {k.lower(): v for k, v in self.headers.items()}
        if self.server.v2 is not None:  # V2 ids stay percent-escaped until matched
            reply = self.server.v2.handle(self.command, parts.path, query, body, headers)
        else:
            reply = handle(self.server.world, self.command, unquote(parts.path), query, body, headers)
        if reply.drop:
            # the write is applied; the caller gets no answer at all (unknown outcome)
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.send_response(reply.status)
        for name, value in reply.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    do_GET = _serve  # noqa: N815
    do_POST = _serve  # noqa: N815
    do_PUT = _serve  # noqa: N815
    do_DELETE = _serve  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the request log lives in the world (``GET /__sandbox/requests``)."""


class SandboxServer(ThreadingHTTPServer):
    """A threading HTTP server bound to 127.0.0.1 serving one world (its V1 surface, or ``v2``'s)."""

    daemon_threads = True
    request_queue_size = 256
    allow_reuse_address = True

    def __init__(
        self, world: SandboxWorld, port: int = 0, host: str = "127.0.0.1", *, v2: SandboxV2 | None = None
    ) -> None:
        self.world = world
        self.v2 = v2
        super().__init__((host, port), _Handler)

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def start_background(self) -> threading.Thread:
        """Serve in a daemon thread (tests); stop with :meth:`stop`."""
        thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, name="sandbox-server", daemon=True
        )
        thread.start()
        return thread

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.shutdown()
        self.server_close()
