"""CLI: ``portone-recon fix plan|apply|journal``, ``portone-recon reverify``, ``portone-recon rebook``.

One switch really sends, on every command that can: ``--apply`` (``fix apply --yes`` is kept as an
alias). Without it every command is a dry-run that prints each request in full, exactly as it would be
sent.

Exit codes: 0 nothing left to do, 1 actions planned/pending/unknown/failed (or a dry-run that would send),
2 errors (raised as PortOneReconError and printed by cli.py).
"""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from portone_recon._time import parse_instant, refuse_far_future
from portone_recon.actions.apply import (
    DEFAULT_MAX_ACTIONS,
    DEFAULT_MAX_AMOUNT,
    DEFAULT_MAX_PLAN_AGE,
    ApplyReport,
    ClientLike,
    apply,
    verify_plan,
    wall_clock,
)
from portone_recon.actions.journal import journal_frame, load_recon, plan_for_store
from portone_recon.actions.model import FixPlan
from portone_recon.actions.record import record_plan
from portone_recon.actions.single import rebook, reverify
from portone_recon.config import Settings
from portone_recon.errors import ActionError, ConfigError
from portone_recon.store import Store, existing_store


def _whole(text: str, least: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"must be {'> 0' if least == 1 else '>= 0'}, got {value}")
    return value


def _positive_int(text: str) -> int:
    return _whole(text, 1)


def _count(text: str) -> int:
    return _whole(text, 0)


def _anchor_day(text: str) -> int:
    value = _positive_int(text)
    if value > 31:
        raise argparse.ArgumentTypeError(f"an anchor day is 1..31, got {value}")
    return value


def _hour(text: str) -> int:
    value = _count(text)
    if value > 23:
        raise argparse.ArgumentTypeError(f"an hour is 0..23, got {value}")
    return value


def _hours(text: str) -> timedelta:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of hours: {text!r}") from None
    if not 0 < value < 24 * 365:
        raise argparse.ArgumentTypeError(f"hours must be > 0 and finite, got {text}")
    return timedelta(hours=value)


def _instant(text: str) -> Any:
    try:
        return parse_instant(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not an ISO 8601 date or instant: {text!r} (e.g. 2026-11-27 or 2026-11-27T06:00:00+09:00)"
        ) from None


def _add_caps(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--max-actions",
        type=_count,
        default=DEFAULT_MAX_ACTIONS,
        help=f"at most N money-moving requests (schedule entries, retries) in this apply (default "
        f"{DEFAULT_MAX_ACTIONS})",
    )
    p.add_argument(
        "--max-amount",
        type=_count,
        default=DEFAULT_MAX_AMOUNT,
        metavar="AMOUNT",
        help=f"at most this much charged or booked per currency (default {DEFAULT_MAX_AMOUNT:,})",
    )


def _add_plan_settings(p: argparse.ArgumentParser) -> None:
    p.add_argument("--prefix", default="rebook", help="merchant_uid prefix of rebooked schedules")
    p.add_argument(
        "--hour",
        type=_hour,
        help="hour (Asia/Seoul) of rebooked schedules (default PORTONE_RECON_SCHEDULE_HOUR, else 10)",
    )
    p.add_argument(
        "--name",
        help="product name of rebooked schedules that have none of their own (default "
        "PORTONE_RECON_SCHEDULE_NAME, else 정기결제)",
    )
    p.add_argument(
        "--notice-url",
        help="webhook URL of rebooked schedules (default PORTONE_NOTICE_URL, else the merchant's)",
    )
    p.add_argument(
        "--allow-inferred",
        action="store_true",
        help="plan retries and rebooks even though no subscriptions are loaded (amounts inferred)",
    )


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
    _add_plan_settings(p)
    p.add_argument(
        "--include-held",
        action="store_true",
        help="also plan money-moving actions held by open manual-review findings (marked held_by)",
    )
    p.add_argument(
        "--max-retries", type=_positive_int, default=3, help="retries per failed schedule (default 3)"
    )
    p.add_argument("--out", metavar="FILE", help="write the plan as JSON to FILE (written before printing)")
    p.set_defaults(func=_plan)

    a = fsub.add_parser("apply", help="apply a saved plan (a dry-run printout unless --apply)")
    a.add_argument("plan", metavar="PLAN_JSON")
    a.add_argument("--db", metavar="PATH", help="the DuckDB store (default PORTONE_RECON_DB)")
    a.add_argument(
        "--apply", "--yes", dest="apply", action="store_true", help="really send (without: dry-run)"
    )
    _add_caps(a)
    a.add_argument(
        "--max-plan-age",
        type=_hours,
        default=DEFAULT_MAX_PLAN_AGE,
        metavar="HOURS",
        help=f"refuse plans older than this (default {DEFAULT_MAX_PLAN_AGE.total_seconds() / 3600:g} h)",
    )
    a.set_defaults(func=_apply)

    j = fsub.add_parser("journal", help="show the action journal")
    j.add_argument("--db", metavar="PATH", help="the DuckDB store (default PORTONE_RECON_DB)")
    j.add_argument(
        "--status",
        choices=("planned", "sending", "succeeded", "failed", "skipped", "unknown", "failed_retryable"),
        help="only this status",
    )
    j.set_defaults(func=_journal)

    r = subparsers.add_parser("reverify", help="re-fetch a payment and mark its order paid (with --apply)")
    r.add_argument("imp_uid", nargs="?", metavar="IMP_UID")
    r.add_argument("--merchant-uid", help="re-verify by order id instead of imp_uid")
    r.add_argument("--db", metavar="PATH", help="the DuckDB store (default PORTONE_RECON_DB)")
    r.add_argument("--apply", action="store_true", help="really mark paid (without it: dry-run)")
    r.set_defaults(func=_reverify)

    b = subparsers.add_parser("rebook", help="book a subscription's next period (with --apply)")
    b.add_argument("customer_uid", metavar="CUSTOMER_UID")
    b.add_argument("--subscription-id", help="which subscription of the customer (when it has several)")
    b.add_argument("--db", metavar="PATH", help="the DuckDB store (default PORTONE_RECON_DB)")
    b.add_argument(
        "--as-of",
        type=_instant,
        help="book the first period whose renewal is after this instant (default now)",
    )
    b.add_argument("--amount", type=_positive_int, help="without loaded subscriptions: the amount (won)")
    b.add_argument("--anchor-day", type=_anchor_day, help="without loaded subscriptions: 1..31")
    b.add_argument(
        "--interval-months", type=_positive_int, default=1, help="without loaded subscriptions (default 1)"
    )
    _add_plan_settings(b)
    b.add_argument(
        "--max-amount",
        type=_count,
        default=DEFAULT_MAX_AMOUNT,
        metavar="AMOUNT",
        help=f"refuse to book more than this (default {DEFAULT_MAX_AMOUNT:,})",
    )
    b.add_argument("--apply", action="store_true", help="really book it (without it: dry-run)")
    b.set_defaults(func=_rebook)


def _store(args: argparse.Namespace) -> Store:
    return existing_store(args.db)


def _schedule_settings(args: argparse.Namespace) -> dict[str, Any]:
    """Name, hour and webhook URL of booked schedules: the command line, else the settings."""
    s = Settings.from_env()
    return {
        "name": args.name if args.name is not None else s.schedule_name,
        "schedule_hour": args.hour if args.hour is not None else s.schedule_hour,
        "notice_url": args.notice_url if args.notice_url is not None else (s.notice_url or None),
    }


def _client(required: bool, store: Store | None = None) -> ClientLike | None:
    """The V1 client; with a V2 secret, a router sending each customer to the API holding its key."""
    from portone_recon.api.client import PortOneClient

    settings = Settings.from_env()
    if settings.has_v2 and store is not None:
        from portone_recon.actions.v2_client import fixup_client

        return fixup_client(settings, store)
    try:
        return PortOneClient.from_env()
    except ConfigError:
        if required:
            raise
        print("(no PortOne credentials: showing the plan without reading PortOne)", file=sys.stderr)
        return None


def _split(text: str | None, what: str) -> list[str] | None:
    """A comma-separated selection; an empty one is an error, not 'everything'."""
    if text is None:
        return None
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if not parts:
        raise ActionError(f"--{what} {text!r} names nothing; leave it out to take all")
    return parts


def _print_frame(frame: pd.DataFrame) -> None:
    with pd.option_context("display.max_rows", 500, "display.max_columns", 20, "display.width", 200):
        print(frame.to_string(index=False, max_colwidth=60))


def _plan(args: argparse.Namespace) -> int:
    store = _store(args)
    recon = load_recon(store, args.run_id)
    kinds = _split(args.kinds, "kinds")
    customers = _split(args.customers, "customers")
    if customers is not None:
        known = set(recon.findings["customer_uid"].dropna().astype(str))
        unknown = [c for c in customers if c not in known]
        if unknown:
            raise ActionError(
                f"--customers: no finding of run {recon.run_id} names {', '.join(unknown)}; "
                "check the ids (`portone-recon reconcile` lists the findings)"
            )
    plan = plan_for_store(
        store,
        recon,
        kinds,
        customers,
        prefix=args.prefix,
        allow_inferred=args.allow_inferred,
        include_held=args.include_held,
        **_schedule_settings(args),
        max_retries=args.max_retries,
    )
    plan = record_plan(store, plan, now=wall_clock())
    if args.out:
        try:
            plan.save(args.out)
        except OSError as exc:
            raise ActionError(f"{args.out}: cannot write the plan: {exc.strerror}") from exc
    print(repr(plan))
    print(f"plan {plan.plan_id} recorded in {store.path}; digest {plan.digest[:16]}")
    if plan.actions:
        from portone_recon.actions.preview import plan_frame
        from portone_recon.actions.v2_client import fixup_client

        client = fixup_client(Settings.from_env(), store)  # each request in the form apply sends it
        try:
            _print_frame(plan_frame(plan, client).drop(columns=["finding_id", "action_id"]))
        finally:
            _close(client)
    if plan.held:
        print(
            "\nOn hold (a manual-review finding of the same customer is open; acknowledge it or use "
            "--include-held):"
        )
        _print_frame(plan.held_frame())
    if args.out:
        print(f"plan written to {Path(args.out)}")
    return 1 if plan.actions else 0


def _show(report: ApplyReport) -> int:
    print(repr(report))
    if len(report.outcomes):
        _print_frame(report.outcomes.drop(columns=["action_id", "request"]))
        print("\nRequests, in full:")
        for r in report.outcomes.itertuples():
            print(f"  [{r.status}] {r.kind} {r.key}: {r.request}")
    if report.dry_run and report.pending:
        print("dry-run: nothing was sent; add --apply to send")
    return report.exit_code


def _apply(args: argparse.Namespace) -> int:
    plan = FixPlan.load(args.plan)
    store = _store(args)
    verify_plan(plan, store, max_plan_age=args.max_plan_age)  # a refused plan needs no credentials
    client = _client(required=args.apply, store=store)
    try:
        report = apply(
            plan,
            client,
            store,
            dry_run=not args.apply,
            max_actions=args.max_actions,
            max_amount=args.max_amount,
            max_plan_age=args.max_plan_age,
            progress=sys.stderr.isatty(),
        )
    finally:
        _close(client)
    return _show(report)


def _journal(args: argparse.Namespace) -> int:
    frame = journal_frame(_store(args), status=args.status)
    _print_frame(frame.drop(columns=["result"]))
    return (
        1
        if frame["status"].isin(["planned", "sending", "unknown", "failed", "failed_retryable"]).any()
        else 0
    )


def _reverify(args: argparse.Namespace) -> int:
    if not args.imp_uid and not args.merchant_uid:
        raise ActionError("give IMP_UID or --merchant-uid")
    store = _store(args)
    client = _client(required=True)
    try:
        report = reverify(client, store, args.imp_uid, merchant_uid=args.merchant_uid, dry_run=not args.apply)
    finally:
        _close(client)
    return _show(report)


def _rebook(args: argparse.Namespace) -> int:
    if args.as_of is not None:
        refuse_far_future(args.as_of, "--as-of")
    store = _store(args)
    client = _client(required=args.apply, store=store)
    try:
        report = rebook(
            client,
            store,
            args.customer_uid,
            subscription_id=args.subscription_id,
            dry_run=not args.apply,
            as_of=args.as_of,
            amount=args.amount,
            anchor_day=args.anchor_day,
            interval_months=args.interval_months,
            allow_inferred=args.allow_inferred,
            prefix=args.prefix,
            max_amount=args.max_amount,
            **_schedule_settings(args),
        )
    finally:
        _close(client)
    return _show(report)


def _close(client: Any) -> None:
    close = getattr(client, "close", None)
    if callable(close):
        close()
