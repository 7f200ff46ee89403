"""In-process httpx transport over a :class:`SandboxWorld` (no sockets, no event loop)."""

from __future__ import annotations

import httpx

from portone_recon.sandbox.http_api import handle
from portone_recon.sandbox.world import SandboxWorld


class SandboxTransport(httpx.BaseTransport):
    """Serve ``world`` to an ``httpx.Client`` in the calling thread.

    A dropped-response fault raises :class:`httpx.ReadTimeout` after the write was applied, as a real
    network would leave the caller: the outcome is unknown.
    """

    def __init__(self, world: SandboxWorld) -> None:
        self.world = world

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in request.headers.raw}
        url = request.url
        reply = handle(self.world, request.method, url.path, url.params.multi_items(), body, headers)
        if reply.drop:
            raise httpx.ReadTimeout(
                "sandbox fault: the write was applied but the response was dropped", request=request
            )
        return httpx.Response(reply.status, headers=list(reply.headers), content=reply.body, request=request)

    def __repr__(self) -> str:
        return f"SandboxTransport({self.world!r})"
