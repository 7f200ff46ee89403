"""Run every reconciliation rule in one read snapshot and record the run.

One write transaction does everything: DuckDB transactions are snapshot-isolated, so every rule sees the
same data even while a sync commits next door, and the ``recon_runs`` row and its ``findings`` are written
all or nothing. The rules write into a TEMP table with ``INSERT ... SELECT``; nothing row-by-row.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from portone_recon._time import KST, instant_arg, now_kst, parse_duration, refuse_far_future
from portone_recon.errors import PortOneReconError, ReconcileError, UsageError
from portone_recon.reconcile import triage
from portone_recon.reconcile.kinds import FINDING_KINDS, KIND_SEVERITY, PRECEDENCE, SEVERITIES
from portone_recon.reconcile.result import (
    FINDING_COLUMNS,
    ReconResult,
    amount_at_risk_once,
    count_quarantined,
)
from portone_recon.reconcile.rules import RULE_COLUMNS, bind, load_rule, load_support, split_statements
from portone_recon.store import Store, existing_store

_log = logging.getLogger(__name__)
_CREATES = re.compile(
    r"(?:CREATE\s+OR\s+REPLACE\s+TEMP\s+(?:TABLE|VIEW|MACRO)|SET\s+VARIABLE)\s+(\w+)", re.IGNORECASE
)

_FOUND_DDL = """
CREATE OR REPLACE TEMP TABLE _recon_found (
    kind VARCHAR, severity VARCHAR, match_key VARCHAR, customer_uid VARCHAR, merchant_uid VARCHAR,
    imp_uid VARCHAR, schedule_merchant_uid VARCHAR, portone_status VARCHAR, local_status VARCHAR,
    portone_amount BIGINT, local_amount BIGINT, amount_at_risk BIGINT, event_at TIMESTAMPTZ,
    suggested_action VARCHAR, subscription_id VARCHAR, period_start DATE, period_end DATE, currency VARCHAR,
    detail VARCHAR, also_kind VARCHAR
)
"""

_INSERT_FINDINGS = """
INSERT INTO findings (
    run_id, finding_id, kind, severity, customer_uid, merchant_uid, imp_uid, schedule_merchant_uid,
    portone_status, local_status, portone_amount, local_amount, amount_at_risk, event_at,
    suggested_action, detail, first_seen, subscription_id, period_start, period_end, currency, also_kind
)
SELECT
    $run_id, f.finding_id, f.kind, f.severity, f.customer_uid, f.merchant_uid, f.imp_uid,
    f.schedule_merchant_uid, f.portone_status, f.local_status, f.portone_amount, f.local_amount,
    coalesce(f.amount_at_risk, 0), f.event_at, f.suggested_action, f.detail,
    coalesce(p.first_seen, $as_of), f.subscription_id, f.period_start, f.period_end,
    coalesce(f.currency, 'KRW'), f.also_kind
FROM (SELECT *, recon_finding_id(kind, match_key) AS finding_id FROM _recon_found) f
LEFT JOIN (SELECT finding_id, first_seen FROM findings WHERE run_id = $prev_run_id) p USING (finding_id)
"""

_SELECT_FINDINGS = """
SELECT
    kind, severity, customer_uid, merchant_uid, imp_uid, schedule_merchant_uid, subscription_id,
    period_start, period_end, portone_status, local_status, portone_amount, local_amount, amount_at_risk,
    coalesce(currency, 'KRW') AS currency, event_at, CAST($as_of - event_at AS INTERVAL) AS age,
    suggested_action, detail, also_kind, finding_id, first_seen
FROM findings
WHERE run_id = $run_id {extra}
ORDER BY list_position($severities, severity) DESC, list_position($kinds, kind), event_at, finding_id
"""


# One root cause, one finding: among findings of the PRECEDENCE kinds sharing a merchant_uid, keep the first
# kind in that order and note the others in its also_kind.
_DEDUPE = """
CREATE OR REPLACE TEMP TABLE _recon_same AS
SELECT merchant_uid, kind, pos, best, kinds
FROM (
    SELECT merchant_uid, kind, list_position($precedence, kind) AS pos,
           min(list_position($precedence, kind)) OVER (PARTITION BY merchant_uid) AS best,
           list(kind) OVER (PARTITION BY merchant_uid ORDER BY list_position($precedence, kind)
                            ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS kinds,
           count(*) OVER (PARTITION BY merchant_uid) AS n
    FROM _recon_found
    WHERE merchant_uid IS NOT NULL AND list_contains($precedence, kind)
)
WHERE n > 1
"""
_DEDUPE_APPLY = (
    "UPDATE _recon_found SET also_kind = array_to_string(s.kinds[2:], ',') FROM _recon_same s "
    "WHERE s.merchant_uid = _recon_found.merchant_uid AND s.kind = _recon_found.kind AND s.pos = s.best",
    "DELETE FROM _recon_found WHERE EXISTS (SELECT 1 FROM _recon_same s "
    "WHERE s.merchant_uid = _recon_found.merchant_uid AND s.kind = _recon_found.kind AND s.pos > s.best)",
)

# The baseline of "new / resolved / first_seen": the latest full (not ad-hoc) run at an as_of not after
# this one's.
_BASELINE = (
    "SELECT run_id, as_of FROM recon_runs WHERE NOT adhoc AND as_of <= $as_of AND run_id <> $run_id "
    "ORDER BY as_of DESC, started_at DESC, run_id DESC LIMIT 1"
)


def reconcile(
    store: Store | str | Path | None = None,
    as_of: datetime | date | str | None = None,
    grace: str | timedelta | float = "15min",
    *,
    kinds: Iterable[str] | None = None,
    progress: bool | None = None,
    profile: bool = False,
) -> ReconResult:
    """Run the reconciliation rules, record the run and its findings, and compare with the previous run.

    Args:
        store: a :class:`~portone_recon.store.Store`, a path to the DuckDB file, or None for the default
            (``PORTONE_RECON_DB`` or ``./portone_recon.duckdb``).
        as_of: the instant to reconcile at (ISO 8601 text, a date meaning 00:00 KST, or an aware datetime;
            naive means Asia/Seoul). Default: now. More than a day ahead of the wall clock is refused:
            such a run would become the latest and call every renewal due until then unpaid.
        grace: how long a fresh event may go unreflected before it is a finding ("15min", "2h", seconds).
        kinds: run only these kinds (default: all); "resolved" then only considers these kinds.
        progress: show a tqdm.auto bar (default: only when attached to a terminal or notebook).
        profile: also print the seconds of every step (prepare statements, each rule, storing, fetching) to
            stderr. They are always in ``ReconResult.timings`` and in the run's stored params.

    Returns:
        The :class:`ReconResult` (also stored in ``recon_runs`` / ``findings``).

    Raises:
        ReconcileError: a rule failed, or the arguments are invalid.
        StoreError: the store cannot be opened (e.g. held by another process).
    """
    started = time.perf_counter()
    st = _as_store(store)
    try:
        at = now_kst() if as_of is None else refuse_far_future(instant_arg(as_of, "as_of"), "as_of")
        grace_td = parse_duration(grace)
    except UsageError as exc:
        raise ReconcileError(str(exc)) from None
    except ValueError as exc:
        raise ReconcileError(f"grace: {exc}") from None
    if grace_td < timedelta(0):
        raise ReconcileError(f"grace must not be negative (got {grace!r})")
    at = at.astimezone(KST).replace(microsecond=0) if as_of is None else at.astimezone(KST)
    selected = _select_kinds(kinds)
    run_id = f"run-{at:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    params: dict[str, Any] = {"as_of": at, "grace": grace_td, "run_id": run_id}

    timings: dict[str, float] = {}
    with st.transaction() as con, _converted("reconcile"):
        _tune(con)
        n_subs = _scalar(con, "SELECT count(*) FROM subscriptions")
        params["inferred"] = n_subs == 0
        latest_full = _scalar(con, "SELECT max(as_of) FROM recon_runs WHERE NOT adhoc")
        adhoc = selected != FINDING_KINDS or (latest_full is not None and at < latest_full)
        prev = con.execute(_BASELINE, {"as_of": at, "run_id": run_id}).fetchone()
        params["prev_run_id"] = prev[0] if prev else None
        params.update(coverage_bounds(con))

        with _timed(timings, "macros"):
            _run_script(con, load_support("_macros"), params, "_macros")
        _run_script(con, load_support("_prepare"), params, "_prepare", timings)
        con.execute(_FOUND_DDL)
        for kind in _progress(selected, progress):
            sql = load_rule(kind).strip().rstrip(";")
            with _converted(f"rule {kind}"), _timed(timings, f"rule {kind}"):
                con.execute(
                    f"INSERT INTO _recon_found BY NAME SELECT {', '.join(RULE_COLUMNS)} FROM ({sql}\n)",
                    bind(sql, params),
                )
        with _timed(timings, "one finding per cause"):
            prec = {"precedence": list(PRECEDENCE)}
            con.execute(_DEDUPE, prec)
            for statement in _DEDUPE_APPLY:
                con.execute(statement)
        with _timed(timings, "coverage"):
            coverage = _coverage(con, params)
        with _timed(timings, "check findings"):
            _check_found(con, selected)
        with _timed(timings, "store findings"):
            con.execute(_INSERT_FINDINGS, bind(_INSERT_FINDINGS, params))
        with _timed(timings, "triage"):
            decided = triage.active_in(con, at)
            if not adhoc:  # an ad-hoc run (subset of kinds, earlier as_of) must not clear decisions
                triage.clear_resolved(con, run_id, selected)

        fetch_started = time.perf_counter()
        findings, new, resolved = _with_triage(_fetch_run(con, params, selected), decided, at)
        quarantined = count_quarantined(con)

        timings["fetch findings"] = time.perf_counter() - fetch_started
        by_kind = findings["kind"].value_counts()
        counts = {k: int(by_kind.get(k, 0)) for k in selected}
        at_risk = amount_at_risk_once(findings)
        duration = time.perf_counter() - started
        timings["total"] = duration
        run_params = {
            "kinds": list(selected),
            "grace": str(grace),
            "previous_run_id": params["prev_run_id"],
            "adhoc": adhoc,
            "coverage": coverage,
            "new": len(new),
            "resolved": len(resolved),
            "timings": {k: round(v, 4) for k, v in timings.items()},
        }
        con.execute(
            "INSERT INTO recon_runs (run_id, as_of, grace_seconds, params, subscriptions_inferred,"
            " started_at, duration_s, finding_count, amount_at_risk, counts, adhoc)"
            " VALUES (?, ?, ?, ?, ?, now(), ?, ?, ?, ?, ?)",
            [
                run_id,
                at,
                int(grace_td.total_seconds()),
                json.dumps(run_params),
                params["inferred"],
                duration,
                len(findings),
                at_risk,
                json.dumps(counts),
                adhoc,
            ],
        )
    result = ReconResult(
        run_id=run_id,
        as_of=at,
        grace=grace_td,
        subscriptions_inferred=bool(params["inferred"]),
        duration_s=duration,
        findings=findings,
        new=new,
        resolved=resolved,
        previous_run_id=params["prev_run_id"],
        kinds=selected,
        timings=timings,
        adhoc=adhoc,
        coverage=coverage,
        quarantined=quarantined,
    )
    _log.debug("reconcile %s timings: %s", run_id, timings)
    if profile:
        print(format_timings(timings), file=sys.stderr)
    return result


def format_timings(timings: dict[str, float]) -> str:
    """The step timings of a run as an aligned text table (seconds, slowest steps easy to spot)."""
    if not timings:
        return "(no timings)"
    width = max(len(k) for k in timings)
    return "\n".join(f"{name:<{width}}  {seconds:8.3f} s" for name, seconds in timings.items())


def load_result(store: Store | str | Path | None = None, run_id: str | None = None) -> ReconResult:
    """Rebuild the :class:`ReconResult` of a stored run (default: the latest) without re-running rules.

    Raises:
        ReconcileError: no such run (or no run at all).
    """
    st = _as_store(store)
    with st.connect(read_only=True) as con, _converted("load_result"):
        if run_id is None:
            row = con.execute(
                "SELECT run_id FROM recon_runs ORDER BY started_at DESC, run_id DESC LIMIT 1"
            ).fetchone()
            if row is None:
                raise ReconcileError(f"{st.path}: no reconciliation run yet; run `portone-recon reconcile`")
            run_id = str(row[0])
        run = con.execute(
            "SELECT as_of, grace_seconds, subscriptions_inferred, duration_s, params, started_at "
            "FROM recon_runs WHERE run_id = ?",
            [run_id],
        ).fetchone()
        if run is None:
            raise ReconcileError(f"{st.path}: no reconciliation run {run_id!r}")
        as_of, grace_s, inferred, duration, raw_params, started_at = run
        run_params = json.loads(raw_params) if raw_params else {}
        selected = tuple(k for k in run_params.get("kinds", FINDING_KINDS) if k in FINDING_KINDS)
        if "previous_run_id" in run_params:
            prev_id = run_params["previous_run_id"]
        else:
            prev = con.execute(
                "SELECT run_id FROM recon_runs WHERE started_at < ? OR (started_at = ? AND run_id < ?) "
                "ORDER BY started_at DESC, run_id DESC LIMIT 1",
                [started_at, started_at, run_id],
            ).fetchone()
            prev_id = prev[0] if prev else None
        params: dict[str, Any] = {"as_of": as_of, "run_id": run_id, "prev_run_id": prev_id}
        decided = triage.active_in(con, as_of)
        findings, new, resolved = _with_triage(_fetch_run(con, params, selected), decided, as_of)
        quarantined = count_quarantined(con)
    return ReconResult(
        run_id=run_id,
        as_of=as_of.astimezone(KST),
        grace=timedelta(seconds=int(grace_s)),
        subscriptions_inferred=bool(inferred),
        duration_s=float(duration or 0.0),
        findings=findings,
        new=new,
        resolved=resolved,
        previous_run_id=params["prev_run_id"],
        kinds=selected,
        timings={str(k): float(v) for k, v in (run_params.get("timings") or {}).items()},
        adhoc=bool(run_params.get("adhoc", False)),
        coverage=dict(run_params.get("coverage") or {}),
        quarantined=quarantined,
    )


# -- helpers -----------------------------------------------------------------------------------------


def _as_store(store: Store | str | Path | None) -> Store:
    """The store itself, or the existing one at a path: a mistyped path (Jupyter's working folder is the
    notebook's) is an error, never a silently created empty store with 0 findings."""
    if isinstance(store, Store):
        return store
    try:
        return existing_store(store)
    except PortOneReconError as exc:
        raise ReconcileError(str(exc)) from None


def coverage_bounds(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """What both sides cover, as rule parameters.

    ``sync_from`` / ``sync_to``: the range the payment streams (V1 paid and cancelled: every payment that
    reached paid; V2 payments) were synced over, from ``sync_state`` (None: unknown, e.g. rows written by
    hand).
    ``orders_from``: the earliest loaded order's time (ordered_at, else paid_at). ``has_orders``: any order
    loaded. ``orders_tagged``: some order names its subscription (an order naming none is a one-off).
    """
    row = con.execute(
        "SELECT max(covered_from), min(cursor), count(*) FROM sync_state "
        "WHERE stream IN ('payments:paid', 'payments:cancelled', 'v2:payments') AND cursor IS NOT NULL"
    ).fetchone()
    sync_from, sync_to, n = row if row else (None, None, 0)
    if not n:
        sync_from = sync_to = None
    orow = con.execute(
        "SELECT count(*), min(coalesce(ordered_at, paid_at)), count(subscription_id) FROM orders"
    ).fetchone()
    n_orders, orders_from, tagged = orow if orow else (0, None, 0)
    return {
        "sync_from": sync_from,
        "sync_to": sync_to,
        "orders_from": orders_from,
        "has_orders": bool(n_orders),
        "orders_tagged": bool(tagged),
    }


def _coverage(con: duckdb.DuckDBPyConnection, params: dict[str, Any]) -> dict[str, Any]:
    """What the rules left out and why (JSON-ready): orders outside the synced range, payments outside the
    orders' range, issuance and test-channel payments."""
    orders_out = con.execute(
        "SELECT count(*) FILTER (WHERE coalesce(ordered_at, paid_at) < getvariable('recon_sync_from')), "
        "count(*) FILTER (WHERE coalesce(ordered_at, paid_at) >= getvariable('recon_sync_to')) FROM orders"
    ).fetchone()
    pays = con.execute(
        "SELECT count(*) FILTER (WHERE customer_uid_usage = 'issue' AND NOT coalesce(sandbox, false)), "
        "count(*) FILTER (WHERE coalesce(sandbox, false)), "
        "count(*) FILTER (WHERE coalesce(customer_uid_usage, '') <> 'issue' AND NOT coalesce(sandbox, false) "
        "AND (status = 'paid' OR (status = 'cancelled' AND paid_at IS NOT NULL)) "
        "AND NOT recon_payment_covered(coalesce(paid_at, started_at))) FROM payments"
    ).fetchone()
    before, after = orders_out if orders_out else (0, 0)
    issue, sandbox, pay_out = pays if pays else (0, 0, 0)

    def iso(v: Any) -> str | None:
        return v.astimezone(KST).isoformat() if isinstance(v, datetime) else None

    return {
        "sync_from": iso(params["sync_from"]),
        "sync_to": iso(params["sync_to"]),
        "orders_from": iso(params["orders_from"]),
        "has_orders": params["has_orders"],
        "orders_before_sync": int(before or 0),
        "orders_after_sync": int(after or 0),
        "payments_outside_orders": int(pay_out or 0),
        "issuance_payments": int(issue or 0),
        "sandbox_payments": int(sandbox or 0),
    }


def _select_kinds(kinds: Iterable[str] | None) -> tuple[str, ...]:
    if kinds is None:
        return FINDING_KINDS
    wanted = [kinds] if isinstance(kinds, str) else list(kinds)
    unknown = [k for k in wanted if k not in FINDING_KINDS]
    if unknown:
        raise ReconcileError(
            f"unknown finding kind(s) {', '.join(unknown)}; kinds: {', '.join(FINDING_KINDS)}"
        )
    return tuple(k for k in FINDING_KINDS if k in wanted)


@contextmanager
def _converted(what: str) -> Iterator[None]:
    """Turn DuckDB errors into ReconcileError naming what failed."""
    try:
        yield
    except PortOneReconError:
        raise
    except duckdb.Error as exc:
        raise ReconcileError(f"{what} failed: {exc}") from exc


def _scalar(con: duckdb.DuckDBPyConnection, sql: str) -> Any:
    row = con.execute(sql).fetchone()
    return row[0] if row else None


def _tune(con: duckdb.DuckDBPyConnection) -> None:
    """Use every core and skip insertion-order bookkeeping.

    The rules never rely on insertion order (every ordering is an explicit ORDER BY / window ORDER BY), and
    preserving it costs memory in large joins and aggregates. (DuckDB's own progress bar is left alone:
    changing it fails, and aborts the transaction, in a Jupyter kernel without ipywidgets.)
    """
    import os

    cores = os.cpu_count() or 1
    threads = _scalar(con, "SELECT current_setting('threads')")
    if threads is not None and int(threads) < cores:
        con.execute(f"SET threads = {int(cores)}")
    con.execute("SET preserve_insertion_order = false")


@contextmanager
def _timed(timings: dict[str, float], name: str) -> Iterator[None]:
    """Add the wall seconds of the block to ``timings[name]``."""
    t0 = time.perf_counter()
    try:
        yield
    finally:
        timings[name] = timings.get(name, 0.0) + time.perf_counter() - t0


def _run_script(
    con: duckdb.DuckDBPyConnection,
    sql: str,
    params: dict[str, Any],
    name: str,
    timings: dict[str, float] | None = None,
) -> None:
    for i, statement in enumerate(split_statements(sql), start=1):
        label = _CREATES.search(statement)
        step = f"{name.lstrip('_')} {label.group(1) if label else f'statement {i}'}"
        t0 = time.perf_counter()
        with _converted(f"{name}.sql statement {i}"):
            used = bind(statement, params)
            if used:
                con.execute(statement, used)
            else:
                con.execute(statement)
        if timings is not None:
            timings[step] = timings.get(step, 0.0) + time.perf_counter() - t0


def _check_found(con: duckdb.DuckDBPyConnection, selected: tuple[str, ...]) -> None:
    """Every finding has a known kind/severity and a unique key within its kind."""
    bad = con.execute(
        "SELECT kind, severity, count(*) FROM _recon_found WHERE match_key IS NULL "
        "OR NOT list_contains($kinds, kind) OR NOT list_contains($severities, severity) GROUP BY ALL LIMIT 1",
        {"kinds": list(selected), "severities": list(SEVERITIES)},
    ).fetchone()
    if bad:
        raise ReconcileError(f"rule {bad[0]} produced {bad[2]} finding(s) with a bad kind/severity/key")
    wrong = [
        (k, s)
        for k, s in con.execute("SELECT DISTINCT kind, severity FROM _recon_found").fetchall()
        if KIND_SEVERITY[k] != s
    ]
    if wrong:
        raise ReconcileError(
            f"rule {wrong[0][0]} reports severity {wrong[0][1]}, expected {KIND_SEVERITY[wrong[0][0]]}"
        )
    dup = con.execute(
        "SELECT kind, match_key, count(*) FROM _recon_found"
        " GROUP BY kind, match_key HAVING count(*) > 1 LIMIT 1"
    ).fetchone()
    if dup:
        raise ReconcileError(
            f"rule {dup[0]} reported {dup[1]!r} {dup[2]} times (a finding key must be unique)"
        )


def _fetch(con: duckdb.DuckDBPyConnection, params: dict[str, Any], extra: str) -> pd.DataFrame:
    sql = _SELECT_FINDINGS.format(extra=extra)
    full = {**params, "severities": list(SEVERITIES), "kinds": list(FINDING_KINDS)}
    df = con.execute(sql, bind(sql, full)).df()
    return _normalise(df)


def _fetch_run(
    con: duckdb.DuckDBPyConnection, params: dict[str, Any], selected: tuple[str, ...]
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """A stored run's findings, those new since the previous run, and the previous run's now resolved."""
    findings = _fetch(con, params, "")
    if params["prev_run_id"] is None:
        return findings, findings.copy(), findings.iloc[0:0].copy()
    new = _fetch(
        con,
        params,
        "AND finding_id NOT IN (SELECT finding_id FROM findings WHERE run_id = $prev_run_id)",
    )
    return findings, new, _fetch_resolved(con, params, selected)


def _fetch_resolved(
    con: duckdb.DuckDBPyConnection, params: dict[str, Any], selected: tuple[str, ...]
) -> pd.DataFrame:
    """Findings of the previous run (of the kinds run now) that this run no longer reports."""
    sql = _SELECT_FINDINGS.format(
        extra="AND list_contains($selected, kind) "
        "AND finding_id NOT IN (SELECT finding_id FROM findings WHERE run_id = $this_run_id)"
    ).replace("WHERE run_id = $run_id", "WHERE run_id = $prev_run_id")
    full = {
        **params,
        "this_run_id": params["run_id"],
        "selected": list(selected),
        "severities": list(SEVERITIES),
        "kinds": list(FINDING_KINDS),
    }
    return _normalise(con.execute(sql, bind(sql, full)).df())


def _with_triage(
    frames: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame],
    decided: dict[str, triage.TriageEntry],
    at: datetime,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Findings and new ones with the decisions in effect; resolved ones are open by definition."""
    findings, new, resolved = frames
    return (
        triage.with_triage(findings, decided, at),
        triage.with_triage(new, decided, at),
        triage.with_triage(resolved, {}, at),
    )


def _normalise(df: pd.DataFrame) -> pd.DataFrame:
    """Column order of FINDING_COLUMNS, times in Asia/Seoul, nullable integer amounts."""
    for col in ("portone_amount", "local_amount", "amount_at_risk"):
        df[col] = df[col].astype("Int64")
    for col in ("period_start", "period_end"):
        df[col] = [
            None if v is None or v is pd.NaT or pd.isna(v) else pd.Timestamp(v).date() for v in df[col]
        ]
    for col in ("event_at", "first_seen"):
        if isinstance(df[col].dtype, pd.DatetimeTZDtype):
            df[col] = df[col].dt.tz_convert(KST)
    return df[list(FINDING_COLUMNS)].reset_index(drop=True)


def _progress(kinds: tuple[str, ...], progress: bool | None) -> Iterable[str]:
    if progress is False:
        return kinds
    from tqdm.auto import tqdm

    bar: Iterable[str] = tqdm(
        kinds, desc="reconcile", unit="rule", disable=None if progress is None else not progress
    )
    return bar
