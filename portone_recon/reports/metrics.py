"""Report metrics: SQL over the store (files in ``sql/``) returning DataFrames.

Every month is a calendar month in Asia/Seoul; every amount is integer KRW.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

import pandas as pd

from portone_recon._time import KST, add_months, now_kst
from portone_recon.errors import ReportError
from portone_recon.reports._sql import run_sql
from portone_recon.store import Store

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def parse_month(value: str | date) -> date:
    """``'2026-10'`` (or a date) to the first day of that month."""
    if isinstance(value, date):
        return date(value.year, value.month, 1)
    m = _MONTH.match(value.strip())
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise ReportError(f"month must be YYYY-MM, got {value!r}")
    return date(int(m.group(1)), int(m.group(2)), 1)


def default_month(as_of: datetime) -> date:
    """The last complete month before ``as_of`` (KST)."""
    local = as_of.astimezone(KST)
    y, m = add_months(local.year, local.month, -1)
    return date(y, m, 1)


def month_list(month: date, months: int) -> list[date]:
    """``months`` month starts ending with ``month``, oldest first."""
    out = []
    for k in range(months - 1, -1, -1):
        y, mo = add_months(month.year, month.month, -k)
        out.append(date(y, mo, 1))
    return out


# -- daily: runs and findings ----------------------------------------------------------------------


def latest_run_id(store: Store, as_of: datetime) -> str | None:
    """The latest reconciliation run with ``as_of`` at or before the given instant."""
    df = run_sql(store, "latest_run", {"as_of": as_of})
    return None if df.empty else str(df["run_id"].iloc[0])


def run_info(store: Store, run_id: str) -> dict[str, Any]:
    """The ``recon_runs`` row of a run plus ``previous_run_id``."""
    df = run_sql(store, "run", {"run_id": run_id})
    if df.empty:
        raise ReportError(f"{store.path}: no reconciliation run {run_id!r} in recon_runs")
    row = df.iloc[0].to_dict()
    return {
        str(k): (None if v is pd.NaT or (isinstance(v, float) and pd.isna(v)) else v) for k, v in row.items()
    }


def run_findings(store: Store, run_id: str, previous_run_id: str | None) -> pd.DataFrame:
    """Every finding of a run with ``is_new`` (absent from the previous run)."""
    return run_sql(store, "findings", {"run_id": run_id, "previous_run_id": previous_run_id})


def resolved_findings(store: Store, run_id: str, previous_run_id: str | None) -> pd.DataFrame:
    """Findings of the previous run that this run no longer reports."""
    return run_sql(store, "resolved", {"run_id": run_id, "previous_run_id": previous_run_id})


def findings_trend(store: Store, as_of: datetime, days: int = 30) -> pd.DataFrame:
    """Open findings per KST day (latest run of each day) over the last ``days`` days."""
    return run_sql(store, "trend", {"as_of": as_of, "days": days})


def source_counts(store: Store) -> pd.DataFrame:
    """Per PortOne API read (``source_api``): payments, schedules and billing keys in the store."""
    return run_sql(store, "sources")


def sync_streams(store: Store) -> pd.DataFrame:
    """Every sync stream with its API, last successful sync, cursor and last error."""
    return run_sql(store, "sync_streams")


# -- monthly: subscribers, MRR, renewals ---------------------------------------------------------


def subscriptions_loaded(store: Store) -> bool:
    """Whether a local subscriptions table was loaded (else subscribers are inferred from payments)."""
    with store.connect(read_only=True) as con:
        row = con.execute("SELECT count(*) FROM subscriptions").fetchone()
    return bool(row and row[0])


def renewals(store: Store, month: date, *, months: int = 1, now: datetime | None = None) -> pd.DataFrame:
    """One row per renewal (schedule) due in the ``months`` months ending with ``month``.

    Columns: month_start, merchant_uid, customer_uid, amount, schedule_at, attempted, failed, paid,
    recovered, unpaid, stuck, fail_reason (see ``sql/renewals.sql`` for the definitions).
    """
    now = now or now_kst()
    df = run_sql(store, "renewals", {"months": month_list(month, months), "now": now})
    paid = df["paid_direct"].astype(bool) | df["paid_elsewhere"].astype(bool)
    df["paid"] = paid
    df["recovered"] = df["failed"].astype(bool) & paid
    df["unpaid"] = (df["attempted"].astype(bool) | df["stuck"].astype(bool)) & ~paid
    return df.drop(columns=["paid_direct", "paid_elsewhere"])


def monthly_series(
    store: Store, month: date, *, months: int = 13, now: datetime | None = None
) -> tuple[pd.DataFrame, bool]:
    """Monthly KPIs for the ``months`` months ending with ``month`` and whether subscribers were inferred.

    Columns: month_start, active_start, active_end, new_subscribers, churned, churn_rate, mrr, mrr_change,
    mrr_change_pct, attempted, paid, failed, recovered, unpaid, stuck, paid_amount, unpaid_amount,
    recovery_rate.
    """
    now = now or now_kst()
    inferred = not subscriptions_loaded(store)
    subs = run_sql(
        store,
        "subscribers_inferred" if inferred else "subscribers",
        {"months": month_list(month, months), "now": now},
    )
    ren = renewals(store, month, months=months, now=now)
    ren["paid_amount"] = ren["amount"].where(ren["paid"], 0)
    ren["unpaid_amount"] = ren["amount"].where(ren["unpaid"], 0)
    agg = (
        ren.groupby("month_start")
        .agg(
            attempted=("attempted", "sum"),
            paid=("paid", "sum"),
            failed=("failed", "sum"),
            recovered=("recovered", "sum"),
            unpaid=("unpaid", "sum"),
            stuck=("stuck", "sum"),
            paid_amount=("paid_amount", "sum"),
            unpaid_amount=("unpaid_amount", "sum"),
        )
        .reset_index()
    )
    subs["month_start"] = pd.to_datetime(subs["month_start"]).dt.date
    if len(agg):
        agg["month_start"] = pd.to_datetime(agg["month_start"]).dt.date
    out = subs.merge(agg, on="month_start", how="left")
    count_cols = [
        "attempted",
        "paid",
        "failed",
        "recovered",
        "unpaid",
        "stuck",
        "paid_amount",
        "unpaid_amount",
    ]
    for col in count_cols:
        out[col] = out[col].fillna(0).astype("int64")
    for col in ("active_start", "active_end", "new_subscribers", "churned", "mrr"):
        out[col] = out[col].astype("int64")
    out["churn_rate"] = [
        c / a if a else float("nan") for c, a in zip(out["churned"], out["active_start"], strict=True)
    ]
    out["mrr_change"] = out["mrr"].diff().astype("Int64")
    prev = out["mrr"].shift(1)
    out["mrr_change_pct"] = [
        (m - p) / p if pd.notna(p) and p else float("nan") for m, p in zip(out["mrr"], prev, strict=True)
    ]
    out["recovery_rate"] = [
        r / f if f else float("nan") for r, f in zip(out["recovered"], out["failed"], strict=True)
    ]
    return out, inferred


def failure_reasons(store: Store, month: date, *, top: int = 10, now: datetime | None = None) -> pd.DataFrame:
    """Failed renewals of ``month`` grouped by reason: fail_reason, failures, recovered, amount (KRW)."""
    ren = renewals(store, month, now=now)
    failed = ren[ren["failed"].astype(bool)].copy()
    if failed.empty:
        return pd.DataFrame({"fail_reason": [], "failures": [], "recovered": [], "amount": []}).astype(
            {"failures": "int64", "recovered": "int64", "amount": "int64"}
        )
    failed["fail_reason"] = failed["fail_reason"].fillna("(사유 없음)").astype(str)
    out = (
        failed.groupby("fail_reason")
        .agg(failures=("merchant_uid", "count"), recovered=("recovered", "sum"), amount=("amount", "sum"))
        .reset_index()
        .sort_values(["failures", "amount", "fail_reason"], ascending=[False, False, True])
        .head(top)
        .reset_index(drop=True)
    )
    return out.astype({"failures": "int64", "recovered": "int64", "amount": "int64"})


def month_end(month: date) -> datetime:
    """The first instant (Asia/Seoul) after ``month``."""
    y, m = add_months(month.year, month.month, 1)
    return datetime(y, m, 1, tzinfo=KST)
