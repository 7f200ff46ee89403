"""``portone-recon reconcile``: run the rules, print or save the findings, exit 1 on serious ones."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from portone_recon.errors import ReconcileError
from portone_recon.reconcile.kinds import SEVERITIES
from portone_recon.reconcile.result import ReconResult
from portone_recon.reconcile.runner import reconcile
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
        description="Run every reconciliation rule on the store and report the findings. Exit code 1 when a "
        "finding at or above --fail-on exists, 0 otherwise, 2 on errors.",
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
        help="ISO 8601 instant or date (KST when no offset); default now",
    )
    p.add_argument("--grace", default="15min", help="grace for fresh events, e.g. 15m, 2h (default 15min)")
    p.add_argument("--format", dest="fmt", choices=("table", "json", "csv", "xlsx"), default="table")
    p.add_argument(
        "--out", type=Path, default=None, help="write to FILE instead of stdout (required for xlsx)"
    )
    p.add_argument(
        "--fail-on",
        dest="fail_on",
        choices=SEVERITIES,
        default="high",
        help="exit 1 at or above (default high)",
    )
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
    store = existing_store(args.db)
    result = reconcile(
        store,
        as_of=args.as_of,
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
    return 1 if result.has_findings(at_least=args.fail_on) else 0


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
