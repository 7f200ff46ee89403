"""``portone-recon sync [--db PATH] [--since DATE] [--until DATE] [--full] [--quiet]``.

Configured by the ``PORTONE_*`` variables (``PORTONE_API_BASE`` / ``PORTONE_V2_API_BASE`` may point at a
sandbox server). V1 credentials read V1; a V2 secret (``PORTONE_API_SECRET``) reads V2; both read both into
one store (V2 then reads only V2-created payments, so each payment is one row).
Exit codes: 0 synced, 1 synced but some records were quarantined (unreadable; the rest is stored),
2 error (a message naming the stream/endpoint/field; cursors untouched).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from portone_recon._time import KST, instant_arg
from portone_recon.config import Settings
from portone_recon.errors import UsageError


def register(subparsers: Any) -> None:
    """Add the ``sync`` subcommand."""
    p = subparsers.add_parser(
        "sync",
        help="pull payments, cancellations, schedules and billing keys from PortOne into the store",
        description=(
            "Pull PortOne V1 payments (with partial refunds), schedules and billing keys into the DuckDB "
            "store. Incremental from each stream's cursor; --since/--until backfill a range without moving "
            "any cursor backwards. Needs PORTONE_IMP_KEY and PORTONE_IMP_SECRET (V1), PORTONE_API_SECRET "
            "(V2), or both (a merchant moving from V1 to V2)."
        ),
    )
    p.add_argument(
        "--db", metavar="PATH", help="DuckDB file (default PORTONE_RECON_DB, else ./portone_recon.duckdb)"
    )
    p.add_argument("--since", metavar="DATE", help="backfill from this date/instant (KST)")
    p.add_argument(
        "--until", metavar="DATE", help="up to this date/instant (default, and at most: PortOne's now)"
    )
    p.add_argument(
        "--full",
        action="store_true",
        help="also re-read every future schedule (400 days), every billing key and every payment that can "
        "still be refunded now, instead of waiting for the weekly full pass (catches far-future "
        "revocations, silently deleted keys and refunds the listings cannot see)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar and no summary line")
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    """Run one sync and print its one-line summary."""
    from portone_recon.api.client import PortOneClient
    from portone_recon.store.store import open_store
    from portone_recon.sync.engine import sync

    since = instant_arg(args.since, "--since") if args.since is not None else None
    until = instant_arg(args.until, "--until") if args.until is not None else None
    if since is not None and until is not None and since >= until:
        raise UsageError(f"--since {args.since} is not before --until {args.until}")
    settings = Settings.from_env()
    if settings.has_v2 and not settings.has_v1:
        return _handle_v2(args, settings, since, until)
    client = PortOneClient.from_env()
    with client:
        store = open_store(args.db, settings=settings)
        report = sync(
            client,
            store,
            since=since,
            until=until,
            full=bool(getattr(args, "full", False)),
            progress=False if args.quiet else None,
        )
    if settings.has_v2:
        v2_code = _handle_v2(args, settings, since, until, only_v2=True, now=report.now)
        if v2_code:
            return v2_code
    if until is not None and until > report.until:
        print(
            f"portone-recon sync: note: --until {args.until} is later than PortOne's now; synced up to "
            f"{report.until.astimezone(KST):%Y-%m-%d %H:%M:%S} KST instead",
            file=sys.stderr,
        )
    if not args.quiet:
        print(repr(report), file=sys.stdout, flush=True)
    if report.quarantined:
        print(
            f"sync: {report.quarantined} PortOne record(s) could not be read and were quarantined "
            "(the rest is stored and the cursors moved); see the quarantine table for endpoint, reason "
            "and raw JSON",
            file=sys.stderr,
            flush=True,
        )
        return 1
    return 0


def _handle_v2(
    args: argparse.Namespace,
    settings: Settings,
    since: Any,
    until: Any,
    *,
    only_v2: bool = False,
    now: Any = None,
) -> int:
    """The V2 half of ``sync``: same store, same tables, same exit codes."""
    from portone_recon.api.v2 import PortOneV2Client
    from portone_recon.store.store import open_store
    from portone_recon.sync.v2 import sync_v2

    with PortOneV2Client(settings) as client:
        store = open_store(args.db, settings=settings)
        report = sync_v2(
            client, store, since, until, now=now, only_v2=only_v2, full=bool(getattr(args, "full", False))
        )
    if not args.quiet:
        print(repr(report), file=sys.stdout, flush=True)
    if report.quarantined:
        print(
            f"sync (V2): {report.quarantined} PortOne record(s) could not be read and were quarantined; "
            "see the quarantine table for endpoint, reason and raw JSON",
            file=sys.stderr,
            flush=True,
        )
        return 1
    return 0
