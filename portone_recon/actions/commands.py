"""CLI: ``portone-recon fix plan|apply|journal``, ``portone-recon reverify``, ``portone-recon rebook``.

Exit codes: 0 nothing left to do, 1 actions planned/pending/unknown/failed (or a dry-run that would send),
2 errors (raised as PortOneReconError and printed by cli.py).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import pandas as pd

from portone_recon._time import parse_instant
from portone_recon.actions.apply import ApplyReport, ClientLike, apply
from portone_recon.actions.journal import journal_frame, load_recon, load_subscriptions_frame
from portone_recon.actions.plan import FixPlan, plan_fixes
from portone_recon.actions.single import rebook, reverify
from portone_recon.errors import ConfigError
from portone_recon.store import Store, existing_store


def register(subparsers: Any) -> None:
    """Add ``fix`` (plan, apply, journal), ``reverify`` and ``rebook``."""
    fix = subparsers.add_parser("fix", help="plan and apply fix-ups for the findings of the latest reconcile")
    fsub = fix.add_subparsers(dest="fix_command", metavar="ACTION")
    fsub.required = True

    p = fsub.add_parser("plan", help="plan fix-ups from the latest reconciliation stored in the DB")
    p.add_argument("--db", metavar="PATH", help="the DuckDB store (default PORTONE_RECON_DB)")
    p.add_argument("--kinds", help="comma-separated finding kinds or action kinds to plan (default all)")
    p.add_argument("--customers", help="comma-separated customer_uids to plan for (default all)")
    p.add_argument("--run-id", help="plan from this reconciliation run (default the latest)")
    p.add_argument("--prefix", default="rebook", help="merchant_uid prefix of rebooked schedules")
    p.add_argument(
        "--hour", type=int, default=10, help="hour (Asia/Seoul) of rebooked schedules (default 10)"
    )
    p.add_argument("--out", metavar="FILE", help="write the plan as JSON to FILE")
    p.set_defaults(func=_plan)

    a = fsub.add_parser("apply", help="apply a saved plan (a dry-run printout unless --yes)")
    a.add_argument("plan", metavar="PLAN_JSON")
    a.add_argument("--db", metavar="PATH", help="the DuckDB store (default PORTONE_RECON_DB)")
    a.add_argument("--yes", action="store_true", help="really send (without it: dry-run)")
    a.add_argument("--max-actions", type=int, default=50, help="at most N actions in this apply (default 50)")
    a.add_argument("--max-amount", type=int, default=None, metavar="KRW", help="at most KRW charged")
    a.set_defaults(func=_apply)

    j = fsub.add_parser("journal", help="show the action journal")
    j.add_argument("--db", metavar="PATH", help="the DuckDB store (default PORTONE_RECON_DB)")
    j.add_argument(
        "--status", help="only this status (planned, sending, succeeded, failed, skipped, unknown)"
    )
    j.set_defaults(func=_journal)

    r = subparsers.add_parser("reverify", help="re-fetch a payment and mark its order paid (with --apply)")
    r.add_argument("imp_uid", nargs="?", metavar="IMP_UID")
    r.add_argument("--merchant-uid", help="re-verify by order id instead of imp_uid")
    r.add_argument("--db", metavar="PATH", help="the DuckDB store (default PORTONE_RECON_DB)")
    r.add_argument("--apply", action="store_true", help="really mark paid (without it: dry-run)")
    r.set_defaults(func=_reverify)

    b = subparsers.add_parser("rebook", help="book a customer's next period (with --apply)")
    b.add_argument("customer_uid", metavar="CUSTOMER_UID")
    b.add_argument("--db", metavar="PATH", help="the DuckDB store (default PORTONE_RECON_DB)")
    b.add_argument("--as-of", help="book the first anchored date after this instant (default now)")
    b.add_argument("--amount", type=int, help="KRW (default: the subscription's amount)")
    b.add_argument("--anchor-day", type=int, help="1..31 (default: the subscription's anchor day)")
    b.add_argument("--prefix", default="rebook", help="merchant_uid prefix")
    b.add_argument("--hour", type=int, default=10, help="hour (Asia/Seoul) of the schedule (default 10)")
    b.add_argument("--apply", action="store_true", help="really book it (without it: dry-run)")
    b.set_defaults(func=_rebook)


def _store(args: argparse.Namespace) -> Store:
    return existing_store(args.db)


def _client(required: bool) -> ClientLike | None:
    from portone_recon.api.client import PortOneClient

    try:
        return PortOneClient.from_env()
    except ConfigError:
        if required:
            raise
        print("(no PortOne credentials: showing the plan without reading PortOne)", file=sys.stderr)
        return None


def _split(text: str | None) -> list[str] | None:
    if not text:
        return None
    return [part.strip() for part in text.split(",") if part.strip()]


def _print_frame(frame: pd.DataFrame) -> None:
    with pd.option_context("display.max_rows", 500, "display.max_columns", 20, "display.width", 200):
        print(frame.to_string(index=False, max_colwidth=80))


def _plan(args: argparse.Namespace) -> int:
    store = _store(args)
    recon = load_recon(store, args.run_id)
    subs = load_subscriptions_frame(store)
    plan = plan_fixes(
        recon,
        _split(args.kinds),
        _split(args.customers),
        subscriptions=subs if len(subs) else None,
        prefix=args.prefix,
        schedule_hour=args.hour,
    )
    print(repr(plan))
    if plan.actions:
        _print_frame(plan.to_frame().drop(columns=["finding_id"]))
    if args.out:
        plan.save(args.out)
        print(f"plan written to {args.out}")
    return 1 if plan.actions else 0


def _show(report: ApplyReport) -> int:
    print(repr(report))
    if len(report.outcomes):
        _print_frame(report.outcomes.drop(columns=["action_id"]))
    if report.dry_run and report.pending:
        print("dry-run: nothing was sent; add --yes (fix apply) or --apply to send")
    return report.exit_code


def _apply(args: argparse.Namespace) -> int:
    plan = FixPlan.load(args.plan)
    store = _store(args)
    client = _client(required=args.yes)
    try:
        report = apply(
            plan,
            client,
            store,
            dry_run=not args.yes,
            max_actions=args.max_actions,
            max_amount=args.max_amount,
            progress=sys.stderr.isatty(),
        )
    finally:
        _close(client)
    return _show(report)


def _journal(args: argparse.Namespace) -> int:
    frame = journal_frame(_store(args), status=args.status)
    _print_frame(frame.drop(columns=["result"]))
    return 1 if frame["status"].isin(["planned", "sending", "unknown", "failed"]).any() else 0


def _reverify(args: argparse.Namespace) -> int:
    if not args.imp_uid and not args.merchant_uid:
        print("portone-recon reverify: give IMP_UID or --merchant-uid", file=sys.stderr)
        return 2
    client = _client(required=True)
    try:
        report = reverify(
            client, _store(args), args.imp_uid, merchant_uid=args.merchant_uid, dry_run=not args.apply
        )
    finally:
        _close(client)
    return _show(report)


def _rebook(args: argparse.Namespace) -> int:
    client = _client(required=args.apply)
    try:
        report = rebook(
            client,
            _store(args),
            args.customer_uid,
            dry_run=not args.apply,
            as_of=parse_instant(args.as_of) if args.as_of else None,
            amount=args.amount,
            anchor_day=args.anchor_day,
            prefix=args.prefix,
            schedule_hour=args.hour,
        )
    finally:
        _close(client)
    return _show(report)


def _close(client: Any) -> None:
    close = getattr(client, "close", None)
    if callable(close):
        close()
