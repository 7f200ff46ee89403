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
        v2_path = self.server.v2_path(parts.path)
        if self.server.v2 is not None and v2_path is not None:  # V2 ids stay percent-escaped until matched
            # the world's latency faults hold for V2 routes too (matched against the V2 path)
            self.server.world.faults.delay(self.command, v2_path, v2_path)
            reply = self.server.v2.handle(self.command, v2_path, query, body, headers)
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
    """A threading HTTP server bound to 127.0.0.1 serving one world: its V1 surface, ``v2``'s, or both.

    With ``v2`` and no ``v2_prefix`` every request goes to the V2 surface. With a ``v2_prefix`` (e.g.
    ``/v2``) requests under it go to the V2 surface (the prefix removed) and all others to the V1 surface
    and the ``/__sandbox/`` controls: one port serves a migrating merchant through both APIs.
    """

    daemon_threads = True
    request_queue_size = 256
    allow_reuse_address = True

    def __init__(
        self,
        world: SandboxWorld,
        port: int = 0,
        host: str = "127.0.0.1",
        *,
        v2: SandboxV2 | None = None,
        v2_prefix: str | None = None,
    ) -> None:
        if v2_prefix is not None and (not v2_prefix.startswith("/") or v2_prefix.endswith("/")):
            raise ValueError(f"v2_prefix must start with '/' and not end with one, got {v2_prefix!r}")
        self.world = world
        self.v2 = v2
        self.v2_prefix = v2_prefix
        super().__init__((host, port), _Handler)

    def v2_path(self, path: str) -> str | None:
        """The V2 surface's path of a request path, or None when the request is for the V1 surface."""
        if self.v2 is None:
            return None
        if self.v2_prefix is None:
            return path
        if path == self.v2_prefix or path.startswith(self.v2_prefix + "/"):
            return path[len(self.v2_prefix) :] or "/"
        return None

    @property
    def v2_base_url(self) -> str | None:
        """Where the V2 surface is served (None without one)."""
        if self.v2 is None:
            return None
        return self.base_url + (self.v2_prefix or "")

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
