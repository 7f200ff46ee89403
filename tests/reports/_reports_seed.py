"""Hand-written store rows for report tests that must not depend on the sandbox or reconcile."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd

from portone_recon._time import KST
from portone_recon.errors import ReportError
from portone_recon.reports import ReportResult
from portone_recon.store import Store

AS_OF = datetime(2026, 11, 27, 6, 0, tzinfo=KST)
CANARY_SECRET = "canary-Sx9-0f3e7b2a-do-not-leak"
CANARY_KEY = "canary-imp-key"


@dataclass
class ReportRun:
    root: Path
    db: Path
    out: Path
    results: dict[str, ReportResult]
    tokens: tuple[str, ...]
    cli_code: int
    cli_stdout: str
    cli_out: Path
    failure: ReportError | None
    labels: pd.DataFrame


def _t(y: int, m: int, d: int, h: int = 10) -> datetime:
    return datetime(y, m, d, h, 0, tzinfo=KST)


def seed_store(store: Store) -> None:
    """Subscriptions, schedules, payments, orders and two reconciliation runs with findings."""
    now = AS_OF
    subs = [
        ("cust-a", "active", 9900, 5, _t(2026, 6, 5), None),
        ("cust-b", "active", 19900, 31, _t(2026, 7, 31), None),
        ("cust-c", "cancelled", 9900, 12, _t(2026, 6, 12), _t(2026, 10, 20)),
        ("cust-d", "active", 9900, 20, _t(2026, 10, 20), None),
    ]
    schedules: list[tuple[object, ...]] = []
    payments: list[tuple[object, ...]] = []
    orders: list[tuple[object, ...]] = []
    n = 0
    for cust, _status, amount, anchor, start, end in subs:
        for month in (7, 8, 9, 10, 11):
            day = min(anchor, 30 if month in (9, 11) else 31)
            at = _t(2026, month, day)
            if at < start or (end is not None and at > end) or at > now:
                continue
            n += 1
            mu = f"sch-{cust}-2026{month:02d}"
            imp = f"imp_{n:04d}"
            failed = cust == "cust-b" and month == 10
            status = "failed" if failed else "paid"
            schedules.append(
                (mu, cust, "executed", status, imp, at, at, amount, "카드 한도 초과" if failed else None)
            )
            payments.append(
                (
                    imp,
                    mu,
                    cust,
                    status,
                    amount,
                    None if failed else at,
                    at if failed else None,
                    "카드 한도 초과" if failed else None,
                )
            )
            orders.append((mu, cust, amount, "failed" if failed else "paid", None if failed else at))
    # cust-b recovered in October with a manual charge of the same amount two days later
    payments.append(("imp_9001", "again-cust-b-202610", "cust-b", "paid", 19900, _t(2026, 11, 2), None, None))
    orders.append(("again-cust-b-202610", "cust-b", 19900, "paid", _t(2026, 11, 2)))
    schedules.append(
        ("sch-cust-a-202612", "cust-a", "scheduled", None, None, _t(2026, 12, 5), None, 9900, None)
    )
    with store.transaction() as con:
        for cust, status, amount, anchor, start, end in subs:
            con.execute(
                "INSERT INTO subscriptions (customer_uid, status, amount, anchor_day, started_at, "
                "cancelled_at, source, loaded_at) VALUES (?, ?, ?, ?, ?, ?, 'test', ?)",
                [cust, status, amount, anchor, start, end, now],
            )
        for mu, cust, sstat, pstat, imp, at, ex, amount, reason in schedules:
            con.execute(
                "INSERT INTO schedules (merchant_uid, customer_uid, schedule_status, payment_status, "
                "imp_uid, schedule_at, executed_at, amount, fail_reason, synced_at) "
                "VALUES (?,?,?,?,?,?,?,?,?,?)",
                [mu, cust, sstat, pstat, imp, at, ex, amount, reason, now],
            )
        for imp, mu, cust, status, amount, paid_at, failed_at, reason in payments:
            con.execute(
                "INSERT INTO payments (imp_uid, merchant_uid, customer_uid, status, amount, paid_at, "
                "failed_at, fail_reason, synced_at) VALUES (?,?,?,?,?,?,?,?,?)",
                [imp, mu, cust, status, amount, paid_at, failed_at, reason, now],
            )
        for mu, cust, amount, status, paid_at in orders:
            con.execute(
                "INSERT INTO orders (merchant_uid, customer_uid, amount, status, paid_at, source, loaded_at) "
                "VALUES (?,?,?,?,?,'test',?)",
                [mu, cust, amount, status, paid_at, now],
            )
        runs = [
            (
                "run-1",
                now - timedelta(days=1),
                [("f-1", "missed_webhook", "high", 9900), ("f-2", "orphan_schedule", "high", 0)],
            ),
            (
                "run-2",
                now,
                [
                    ("f-1", "missed_webhook", "high", 9900),
                    ("f-3", "amount_mismatch", "critical", 15000),
                    ("f-4", "unpaid_renewal", "high", 19900),
                ],
            ),
        ]
        for run_id, as_of, findings in runs:
            con.execute(
                "INSERT INTO recon_runs (run_id, as_of, grace_seconds, params, started_at, finding_count, "
                "amount_at_risk, counts) VALUES (?, ?, 900, ?, ?, ?, ?, ?)",
                [
                    run_id,
                    as_of,
                    json.dumps({}),
                    as_of,
                    len(findings),
                    sum(f[3] for f in findings),
                    json.dumps({}),
                ],
            )
            for fid, kind, sev, risk in findings:
                con.execute(
                    "INSERT INTO findings (run_id, finding_id, kind, severity, customer_uid, merchant_uid, "
                    "portone_amount, local_amount, amount_at_risk, event_at, suggested_action, detail, "
                    "first_seen) VALUES (?, ?, ?, ?, 'cust-a', ?, ?, ?, ?, ?, 'manual', "
                    "'설명 <b>escaped</b>', ?)",
                    [
                        run_id,
                        fid,
                        kind,
                        sev,
                        f"mu-{fid}",
                        risk,
                        risk,
                        risk,
                        as_of - timedelta(hours=5),
                        as_of,
                    ],
                )
