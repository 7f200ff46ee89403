"""``portone-recon ack``, ``unack`` and ``findings``: the analyst's triage from the command line."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from portone_recon._time import now_kst
from portone_recon.errors import ReconcileError
from portone_recon.reconcile.resolution import how_resolved
from portone_recon.reconcile.result import finding_records
from portone_recon.reconcile.runner import load_result
from portone_recon.reconcile.triage import TRIAGE_STATES, acknowledge, unacknowledge
from portone_recon.store import existing_store

FINDING_STATES = ("open", "acknowledged", "resolved", "all")
_TABLE_COLUMNS = (
    "status",
    "finding_id",
    "severity",
    "kind",
    "customer_uid",
    "merchant_uid",
    "amount_at_risk",
    "age_days",
    "triage_state",
    "triage_by",
    "triage_until",
    "triage_note",
    "resolved_how",
)


def _db_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--db",
        type=Path,
        default=None,
        help="DuckDB file (default: PORTONE_RECON_DB or ./portone_recon.duckdb)",
    )


def register(subparsers: Any) -> None:
    """Add the ``ack``, ``unack`` and ``findings`` subcommands."""
    ack = subparsers.add_parser(
        "ack",
        help="acknowledge findings: seen, owned, out of the alerts (optionally until a date)",
        description="Record a decision for findings (by finding_id, as `findings` lists them). They stay "
        "in reports but no longer trip --fail-on until the --until day has passed, someone runs `unack`, "
        "or the finding resolves. Unknown ids are refused and nothing is written.",
    )
    ack.add_argument("finding_ids", nargs="+", metavar="FINDING_ID")
    ack.add_argument(
        "--note", required=True, help="what was seen or agreed (the reason for explained/wont_fix)"
    )
    ack.add_argument(
        "--until", default=None, help="YYYY-MM-DD: the last day (KST) it holds; open again after"
    )
    ack.add_argument("--by", default=None, help="who decides (default: your user name)")
    ack.add_argument(
        "--state",
        choices=TRIAGE_STATES,
        default="acknowledged",
        help="acknowledged (default), explained or wont_fix",
    )
    _db_argument(ack)
    ack.set_defaults(func=run_ack)

    unack = subparsers.add_parser(
        "unack",
        help="make acknowledged findings open again",
        description="Remove the decision of findings: they count in --fail-on again. History is kept.",
    )
    unack.add_argument("finding_ids", nargs="+", metavar="FINDING_ID")
    _db_argument(unack)
    unack.set_defaults(func=run_unack)

    listing = subparsers.add_parser(
        "findings",
        help="list the latest run's findings: open, acknowledged, resolved since the previous run, or all",
        description="Findings of the latest stored reconciliation run with their triage (state, note, by, "
        "until), first_seen and age in days; resolved ones say how (fix-up action or gone from the data).",
    )
    listing.add_argument(
        "--state", choices=FINDING_STATES, default="open", help="which findings (default open)"
    )
    listing.add_argument("--format", dest="fmt", choices=("table", "json", "csv"), default="table")
    _db_argument(listing)
    listing.set_defaults(func=run_findings)


def run_ack(args: argparse.Namespace) -> int:
    """Handler of ``portone-recon ack``."""
    store = existing_store(args.db)
    entries = acknowledge(
        store, args.finding_ids, note=args.note, until=args.until, by=args.by, state=args.state
    )
    first = entries[0]
    until = f" until {first.until.isoformat()}" if first.until else ""
    who = f" by {first.by}" if first.by else ""
    print(f"{first.state} {len(entries)} finding(s){until}{who}: {', '.join(e.finding_id for e in entries)}")
    today = now_kst().date()
    if first.until is not None and first.until < today:
        print(
            f"note: --until {first.until.isoformat()} is before today ({today.isoformat()} KST): "
            "for runs as of today these findings are open and alert as before",
            file=sys.stderr,
        )
    return 0


def run_unack(args: argparse.Namespace) -> int:
    """Handler of ``portone-recon unack``."""
    store = existing_store(args.db)
    had = unacknowledge(store, args.finding_ids)
    print(f"open again: {len(set(args.finding_ids))} finding(s) ({had} had a decision in effect)")
    return 0


def findings_frame(store: Any, state: str) -> pd.DataFrame:
    """The latest run's findings in ``state`` with a ``status`` column (open, acknowledged, resolved)."""
    if state not in FINDING_STATES:
        raise ReconcileError(f"unknown state {state!r}; states: {', '.join(FINDING_STATES)}")
    result = load_result(store)
    current = result.findings.copy()
    current.insert(0, "status", ["open" if pd.isna(s) else "acknowledged" for s in current["triage_state"]])
    parts: list[pd.DataFrame] = []
    if state in ("open", "all"):
        parts.append(current[current["status"] == "open"])
    if state in ("acknowledged", "all"):
        parts.append(current[current["status"] == "acknowledged"])
    if state in ("resolved", "all"):
        gone = how_resolved(store, result.resolved)
        gone.insert(0, "status", "resolved")
        parts.append(gone)
    parts = [p for p in parts if len(p)] or [current.iloc[0:0]]
    return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0].reset_index(drop=True)


def run_findings(args: argparse.Namespace) -> int:
    """Handler of ``portone-recon findings``."""
    store = existing_store(args.db)
    df = findings_frame(store, args.state)
    if args.fmt == "json":
        sys.stdout.write(json.dumps(finding_records(df), ensure_ascii=False, indent=1) + "\n")
    elif args.fmt == "csv":
        sys.stdout.write(_csv(df))
    else:
        sys.stdout.write(_table(df, args.state))
    return 0


def _csv(df: pd.DataFrame) -> str:
    rows = pd.DataFrame(finding_records(df), columns=list(df.columns))
    return str(rows.rename(columns={"age": "age_seconds"}).to_csv(index=False))


def _table(df: pd.DataFrame, state: str) -> str:
    if not len(df):
        return f"no {state if state != 'all' else ''} findings in the latest run".replace("  ", " ") + "\n"
    shown = df[[c for c in _TABLE_COLUMNS if c in df.columns]].copy()
    shown["amount_at_risk"] = [f"{int(v):,}" for v in shown["amount_at_risk"].fillna(0)]
    if "triage_until" in shown:
        shown["triage_until"] = [
            v.isoformat() if v is not None and not pd.isna(v) else "" for v in shown["triage_until"]
        ]
    shown = shown.astype("object").where(shown.notna(), "")
    return f"{len(df):,} finding(s)\n" + str(shown.to_string(index=False)) + "\n"
