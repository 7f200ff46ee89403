"""``portone-recon reconcile``: run the rules, print or save the findings, exit 1 on serious ones."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from portone_recon._time import instant_arg, refuse_far_future
from portone_recon.errors import ReconcileError
from portone_recon.reconcile.result import ReconResult
from portone_recon.reconcile.runner import reconcile
from portone_recon.reconcile.triage import DEFAULT_FAIL_ON, FAIL_ON_CHOICES
from portone_recon.store import existing_store

_TABLE_COLUMNS = (
    "severity",
    "kind",
    "customer_uid",
    "merchant_uid",
    "imp_uid",
    "amount_at_risk",
    "suggested_action",
)


def register(subparsers: Any) -> None:
    """Add the ``reconcile`` subcommand."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "reconcile",
        help="find missed webhooks, unpaid renewals, missing schedules and the rest",
        description="Run every reconciliation rule on the store and report the findings. Exit code 1 when an "
        "open finding (not acknowledged, explained or won't-fix; new ones included) at or above --fail-on "
        "exists (with --fail-on-all: any finding), 0 otherwise, 2 on errors.",
    )
    p.add_argument(
        "--db",
        type=Path,
        default=None,
        help="DuckDB file (default: PORTONE_RECON_DB or ./portone_recon.duckdb)",
    )
    p.add_argument(
        "--as-of",
        dest="as_of",
        default=None,
        help="ISO 8601 instant or date (KST when no offset); default now, at most a day ahead of now",
    )
    p.add_argument("--grace", default="15min", help="grace for fresh events, e.g. 15m, 2h (default 15min)")
    p.add_argument("--format", dest="fmt", choices=("table", "json", "csv", "xlsx"), default="table")
    p.add_argument(
        "--out", type=Path, default=None, help="write to FILE instead of stdout (required for xlsx)"
    )
    add_fail_on_arguments(p)
    p.add_argument(
        "--profile",
        action="store_true",
        help="print the seconds of every step (prepare, each rule, storing) to stderr",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Handler of ``portone-recon reconcile``."""
    if args.fmt == "xlsx" and args.out is None:
        raise ReconcileError("--format xlsx needs --out FILE.xlsx")
    as_of = None
    if args.as_of is not None:
        as_of = refuse_far_future(instant_arg(args.as_of, "--as-of"), "--as-of")
    store = existing_store(args.db)
    result = reconcile(
        store,
        as_of=as_of,
        grace=args.grace,
        progress=False,
        profile=bool(getattr(args, "profile", False)),
    )
    if args.fmt == "xlsx":
        result.to_excel(args.out)
        print(f"{result.headline()}\nwrote {args.out}", file=sys.stderr)
    else:
        text = render(result, args.fmt)
        if args.out is not None:
            try:
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(text, encoding="utf-8")
            except OSError as exc:
                raise ReconcileError(f"{args.out}: cannot write: {exc}") from exc
            print(f"{result.headline()}\nwrote {args.out}", file=sys.stderr)
        else:
            sys.stdout.write(text)
    return alert_code(result, args.fail_on, every=args.fail_on_all)


def add_fail_on_arguments(p: argparse.ArgumentParser) -> None:
    """``--fail-on`` and ``--fail-on-all``: the same options (and default) on reconcile and report."""
    p.add_argument(
        "--fail-on",
        dest="fail_on",
        choices=FAIL_ON_CHOICES,
        default=DEFAULT_FAIL_ON,
        help=f"exit 1 when an open (untriaged) finding of this severity or worse exists "
        f"(default {DEFAULT_FAIL_ON}; none: never)",
    )
    p.add_argument(
        "--fail-on-all",
        dest="fail_on_all",
        action="store_true",
        help="count acknowledged/explained findings too (every finding at or above --fail-on)",
    )


def alert_code(result: ReconResult, fail_on: str, *, every: bool = False) -> int:
    """1 when ``result`` has findings at or above ``fail_on`` to alert on (open ones unless ``every``)."""
    if fail_on == "none":
        return 0
    found = result.has_findings(at_least=fail_on) if every else result.has_open_findings(at_least=fail_on)
    return 1 if found else 0


def render(result: ReconResult, fmt: str) -> str:
    """The findings as text: "table" (headline + table), "json" (one array) or "csv"."""
    if fmt == "json":
        return result.to_json() + "\n"
    if fmt == "csv":
        df = result.findings.copy()
        for col in ("event_at", "first_seen"):
            df[col] = [None if v is None or v is pd.NaT else v.isoformat() for v in df[col]]
        df["age"] = [None if v is None or v is pd.NaT else int(v.total_seconds()) for v in df["age"]]
        df = df.rename(columns={"age": "age_seconds"})
        return str(df.to_csv(index=False))
    if fmt == "table":
        lines = [f"{result.run_id}: {result.headline()}"]
        lines += [f"not judged: {note}" for note in result.coverage_notes()]
        if len(result.findings):
            df = result.findings[list(_TABLE_COLUMNS)].copy()
            df["amount_at_risk"] = [f"{int(v):,}" for v in df["amount_at_risk"].fillna(0)]
            df = df.fillna("")
            lines.append(df.to_string(index=False))
        return "\n".join(lines) + "\n"
    raise ReconcileError(f"unknown format {fmt!r}")
