"""``portone-recon sandbox serve``: the simulator on 127.0.0.1 for any HTTP client."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from datetime import datetime
from typing import Any

import orjson

from portone_recon._time import parse_instant
from portone_recon.errors import SandboxError

DEFAULT_START = "2026-11-27T06:00:00+09:00"
#: The V2 surface's path on the served port.
V2_PREFIX = "/v2"
#: The sandbox's own V2 API secret (a fake: it opens only this simulator).
SANDBOX_V2_SECRET = "sandbox_v2_secret"


def register(subparsers: Any) -> None:
    """Add ``sandbox serve`` to the CLI."""
    sandbox = subparsers.add_parser("sandbox", help="run the PortOne simulator (V1, and V2 with --v2)")
    sub = sandbox.add_subparsers(dest="sandbox_command", metavar="SUBCOMMAND")
    sub.required = True
    serve = sub.add_parser(
        "serve",
        help="serve the simulator on 127.0.0.1",
        description=(
            "Serve a PortOne V1 sandbox on 127.0.0.1. Prints one JSON line "
            '{"base_url", "imp_key", "imp_secret"} and serves until SIGINT/SIGTERM. Control it under '
            "/__sandbox/ (POST advance, POST faults, GET outbox, GET requests, GET state)."
        ),
    )
    serve.add_argument("--port", type=int, default=8099, help="TCP port (0 picks a free one; default 8099)")
    serve.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    serve.add_argument("--subscribers", type=int, default=None, help="build a scenario with K subscribers")
    serve.add_argument("--months", type=int, default=None, help="months of scenario history")
    serve.add_argument(
        "--start", default=None, help=f"clock start for an empty world (default {DEFAULT_START})"
    )
    serve.add_argument(
        "--merchant-files",
        metavar="DIR",
        default=None,
        help="with --subscribers: write the merchant's orders.csv, subscriptions.csv and the ground-truth "
        "labels.csv into DIR (for load-orders / load-subscriptions)",
    )
    serve.add_argument(
        "--deliver-webhooks",
        action="store_true",
        help="POST webhooks to their notice_url (default: keep them in the outbox only)",
    )
    serve.add_argument(
        "--v2",
        nargs="?",
        const="v2",
        choices=("v2", "mixed"),
        default=None,
        help="also serve the world over PortOne V2 under /v2 on the same port (the ready line adds "
        "v2_base_url, v2_api_secret and store_id): 'v2' (the default) a V2 merchant, every customer on a "
        "V2 billing key; 'mixed' a migrating merchant, every other customer (sorted) keeping its V1 key",
    )
    serve.set_defaults(func=run_serve)


def build_world(args: argparse.Namespace) -> Any:
    """The world to serve: a generated scenario's, or an empty one."""
    if (args.subscribers is None) != (args.months is None):
        raise SandboxError("give both --subscribers and --months, or neither")
    merchant_files = getattr(args, "merchant_files", None)
    if merchant_files is not None and args.subscribers is None:
        raise SandboxError("--merchant-files needs --subscribers and --months")
    if args.subscribers is not None:
        import importlib

        scenario = importlib.import_module("portone_recon.sandbox.scenario")  # lazily: a separate module
        built = scenario.generate_merchant(subscribers=args.subscribers, months=args.months, seed=args.seed)
        if merchant_files is not None:
            built.write(merchant_files, format="csv")
        return built.world
    from portone_recon.sandbox.world import SandboxWorld

    try:
        start: datetime = parse_instant(args.start or DEFAULT_START)
    except ValueError as exc:
        raise SandboxError(f"--start: {exc}") from None
    return SandboxWorld(start=start, seed=args.seed)


def v2_surface(world: Any, mode: str | None) -> Any:
    """The V2 surface to serve beside V1 (None: V1 only). ``mixed``: every other customer, in sorted
    order of those with a billing key or a payment, keeps its V1 key (as the demo's mixed merchant)."""
    if mode is None:
        return None
    from portone_recon.sandbox.v2_api import SandboxV2

    v1_customers: list[str] = []
    if mode == "mixed":
        known = set(world.billing_keys) | set(world.deleted_billing_keys)
        known |= {p["customer_uid"] for p in world.payments.values() if p.get("customer_uid")}
        v1_customers = sorted(known)[::2]
    return SandboxV2(world, api_secret=SANDBOX_V2_SECRET, v1_customers=v1_customers)


def run_serve(args: argparse.Namespace) -> int:
    """Serve until SIGINT/SIGTERM; returns 0."""
    from portone_recon.sandbox.server import SandboxServer

    world = build_world(args)
    world.warm()  # indexes built before "ready": the first listing costs what every other one does
    if args.deliver_webhooks and world.webhook_sink is None:
        import httpx

        world.webhook_sink = httpx.HTTPTransport()
    if not 0 <= args.port <= 65535:
        raise SandboxError(f"--port must be 0..65535 (0 picks a free one), got {args.port}")
    v2 = v2_surface(world, getattr(args, "v2", None))
    if v2 is not None:
        v2.warm()  # rendered before "ready", as the V1 surface's JSON is held ready
    try:
        server = SandboxServer(world, port=args.port, v2=v2, v2_prefix=V2_PREFIX if v2 is not None else None)
    except OSError as exc:
        raise SandboxError(f"cannot listen on 127.0.0.1:{args.port}: {exc}") from None
    line = {"base_url": server.base_url, "imp_key": world.imp_key, "imp_secret": world.imp_secret}
    if v2 is not None:
        line.update(
            v2_base_url=server.v2_base_url,
            v2_api_secret=SANDBOX_V2_SECRET,
            store_id=v2.store_id,
            v1_customers=sorted(v2.v1_customers),
        )
    sys.stdout.write(orjson.dumps(line).decode() + "\n")
    sys.stdout.flush()

    def stop(_signum: int, _frame: Any) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.serve_forever()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        server.server_close()
    return 0
