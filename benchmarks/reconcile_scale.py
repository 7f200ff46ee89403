"""How fast is the full reconcile at merchant scale, against what an analyst would write in pandas?

Writes a synthetic merchant straight into a store (not through the API): N orders over 10 monthly periods
(N/10 subscribers), one payment per order, executed schedules, the next period's schedules, subscriptions,
and 0.1% of subscribers broken for each of 11 finding kinds (~1.1% in all; charged_after_cancel and
chain_not_started are not injected, every rule still runs). Then, each in a fresh process
so peak RSS is its own:

  reconcile  portone_recon.reconcile.reconcile(): every rule, findings DataFrame materialised and stored;
  pandas     the four basic order/payment comparisons (outer merge with indicator + boolean masks).

The injected anomalies are exact: subscriber c is broken for kind K when hash(c) % 1000 is K's bucket, so
each kind must be reported exactly (bucket size) times; unpaid_renewal also fires for the phantom_paid
bucket (its renewal failed too). The script checks found == expected for every kind and says so.

Figures are wall seconds and CPU seconds (the machine is shared; CPU seconds are the stable number).

Usage:
  python benchmarks/reconcile_scale.py --orders 1e6 [--json out.json] [--keep DB] [--profile]
  --profile  also times each statement of the reconcile (prepare + every rule) in one more child process
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Timer, load_average, peak_rss_mib, print_table, run_child, write_json

MONTHS = 10
AS_OF = "2026-11-01T00:00:00+09:00"

# bucket (hash(c) % 1000) -> the anomaly that subscriber carries in its latest period
BUCKETS = {
    0: "missed_webhook",
    1: "amount_mismatch",
    2: "phantom_paid",
    3: "refund_not_reflected",
    4: "unknown_payment",
    5: "unpaid_renewal",
    6: "missing_next_schedule",
    7: "duplicate_schedule",
    8: "orphan_schedule",
    9: "duplicate_charge",
    10: "schedule_amount_mismatch",
}
# kinds that a bucket's subscriber also (correctly) triggers besides its own
ALSO = {2: ["unpaid_renewal"]}

GENERATE_SQL = """
CREATE TEMP TABLE cust AS
SELECT c,
       'cus_' || lpad(c::VARCHAR, 9, '0') AS customer_uid,
       (c % 31 + 1)::INTEGER AS anchor_day,
       [9900, 14900, 29000][(c % 3) + 1]::BIGINT AS amount,
       (hash(c) % 1000)::INTEGER AS bucket
FROM range($customers) t(c);

CREATE TEMP TABLE periods AS
SELECT c.*, m,
       make_timestamptz(2026, m + 1,
           least(c.anchor_day, day(last_day(make_date(2026, m + 1, 1))))::INTEGER, 10, 0, 0.0, 'Asia/Seoul')
           AS schedule_at,
       'sub-' || c.customer_uid || '-2026' || lpad((m + 1)::VARCHAR, 2, '0') AS merchant_uid,
       'imp_' || lpad((c.c * $months + m)::VARCHAR, 12, '0') AS imp_uid,
       m = $months - 1 AS latest
FROM cust c, range($months + 1) t(m);

INSERT INTO subscriptions (customer_uid, status, status_raw, amount, interval_months, anchor_day, started_at,
                           cancelled_at, source, loaded_at)
SELECT customer_uid, CASE WHEN bucket = 8 THEN 'cancelled' ELSE 'active' END, NULL,
       CASE WHEN bucket = 10 THEN amount + 2000 ELSE amount END, 1, anchor_day,
       TIMESTAMPTZ '2025-12-20 00:00:00+09',
       CASE WHEN bucket = 8 THEN TIMESTAMPTZ '2026-10-31 12:00:00+09' END, 'bench', now()
FROM cust;

INSERT INTO payments (imp_uid, merchant_uid, customer_uid, customer_uid_usage, status, amount, cancel_amount,
                      currency, pay_method, channel, pg_provider, name, started_at, paid_at, failed_at,
                      fail_reason, synced_at)
SELECT imp_uid, merchant_uid, customer_uid, 'payment.scheduled',
       CASE WHEN latest AND bucket IN (2, 5) THEN 'failed' ELSE 'paid' END,
       amount, CASE WHEN latest AND bucket = 3 THEN 1000 ELSE 0 END, 'KRW', 'card', 'api', 'nice_v2',
       '월간 구독', schedule_at + INTERVAL 1 SECOND,
       CASE WHEN latest AND bucket IN (2, 5) THEN NULL ELSE schedule_at + INTERVAL 2 SECOND END,
       CASE WHEN latest AND bucket IN (2, 5) THEN schedule_at + INTERVAL 2 SECOND END,
       CASE WHEN latest AND bucket IN (2, 5) THEN '잔액부족' END, now()
FROM periods WHERE m < $months
UNION ALL  -- an operator's manual charge nobody recorded (unknown_payment)
SELECT 'imp_x' || lpad(c::VARCHAR, 11, '0'), 'manual-' || customer_uid, customer_uid, 'payment', 'paid', 5000, 0,
       'KRW', 'card', 'api', 'nice_v2', '추가 결제', TIMESTAMPTZ '2026-10-20 11:00:00+09',
       TIMESTAMPTZ '2026-10-20 11:00:02+09', NULL, NULL, now()
FROM cust WHERE bucket = 4
UNION ALL  -- a second renewal charge in the same period (duplicate_charge)
SELECT 'imp_d' || lpad(c::VARCHAR, 11, '0'), merchant_uid || '-again', customer_uid, 'payment', 'paid', amount, 0,
       'KRW', 'card', 'api', 'nice_v2', '월간 구독', schedule_at + INTERVAL 3 HOUR,
       schedule_at + INTERVAL 3 HOUR, NULL, NULL, now()
FROM periods WHERE latest AND bucket = 9;

INSERT INTO payment_cancellations
SELECT imp_uid, 'cxl_' || imp_uid, 'pgc_' || imp_uid, 1000, schedule_at + INTERVAL 5 HOUR, '부분 환불', NULL, now()
FROM periods WHERE latest AND bucket = 3;

INSERT INTO orders (merchant_uid, customer_uid, amount, currency, status, status_raw, imp_uid, paid_at,
                    refunded_amount, source, loaded_at)
SELECT merchant_uid, customer_uid,
       CASE WHEN latest AND bucket = 1 THEN amount + 1000 ELSE amount END, 'KRW',
       CASE WHEN latest AND bucket = 0 THEN 'pending'
            WHEN latest AND bucket = 5 THEN 'failed' ELSE 'paid' END, NULL,
       CASE WHEN latest AND bucket IN (0, 1, 5) THEN NULL ELSE imp_uid END,
       CASE WHEN latest AND bucket IN (0, 1, 5) THEN NULL ELSE schedule_at + INTERVAL 2 SECOND END,
       0, 'bench', now()
FROM periods WHERE m < $months
UNION ALL
SELECT merchant_uid || '-again', customer_uid, amount, 'KRW', 'paid', NULL, 'imp_d' || lpad(c::VARCHAR, 11, '0'),
       schedule_at + INTERVAL 3 HOUR, 0, 'bench', now()
FROM periods WHERE latest AND bucket = 9;

INSERT INTO schedules (merchant_uid, customer_uid, schedule_status, payment_status, imp_uid, schedule_at,
                       executed_at, amount, currency, name, fail_reason, synced_at)
SELECT merchant_uid, customer_uid, 'executed',
       CASE WHEN latest AND bucket IN (2, 5) THEN 'failed' ELSE 'paid' END, imp_uid, schedule_at,
       schedule_at + INTERVAL 2 SECOND, amount, 'KRW', '월간 구독',
       CASE WHEN latest AND bucket IN (2, 5) THEN '잔액부족' END, now()
FROM periods WHERE m < $months
UNION ALL  -- the next period's booking (none for missing_next_schedule; none after a failed renewal)
SELECT merchant_uid, customer_uid, 'scheduled', NULL, NULL, schedule_at, NULL, amount, 'KRW', '월간 구독', NULL, now()
FROM periods WHERE m = $months AND bucket NOT IN (2, 5, 6)
UNION ALL  -- a double booking of the same period
SELECT merchant_uid || '-dup', customer_uid, 'scheduled', NULL, NULL, schedule_at + INTERVAL 1 HOUR, NULL, amount,
       'KRW', '월간 구독', NULL, now()
FROM periods WHERE m = $months AND bucket = 7;
"""


def generate(db: Path, orders: int) -> dict[str, object]:
    from portone_recon.store import Store

    customers = max(orders // MONTHS, 1)
    store = Store(db)
    with Timer() as t:
        params = {"customers": customers, "months": MONTHS}
        with store.transaction() as con:
            for statement in GENERATE_SQL.split(";\n"):
                if statement.strip():
                    con.execute(statement, {k: v for k, v in params.items() if f"${k}" in statement})
            sizes = dict(
                con.execute(
                    "SELECT bucket, count(*) FROM cust WHERE bucket < $n GROUP BY bucket", {"n": len(BUCKETS)}
                ).fetchall()
            )
        with store.connect() as con:
            con.execute("CHECKPOINT")
    expected = {kind: int(sizes.get(b, 0)) for b, kind in BUCKETS.items()}
    for b, kinds in ALSO.items():
        for kind in kinds:
            expected[kind] += int(sizes.get(b, 0))
    counts = store.counts()
    return {
        "generate_s": t.wall,
        "customers": customers,
        "expected_by_kind": expected,
        "db_mib": db.stat().st_size / 2**20,
        **{f"rows_{k}": v for k, v in counts.items() if v},
    }


def _apply_settings(settings: list[str]) -> None:
    """What-if experiments: run ``SET key = value`` on every store connection (patches Store._open)."""
    if not settings:
        return
    from portone_recon.store import store as store_module

    original = store_module.Store._open

    def _open(self: object, *, read_only: bool) -> object:
        con = original(self, read_only=read_only)  # type: ignore[arg-type]
        for item in settings:
            key, _, value = item.partition("=")
            con.execute(f"SET {key} = '{value}'")
        return con

    store_module.Store._open = _open  # type: ignore[method-assign,assignment]


def child_reconcile(db: str) -> None:
    from portone_recon.reconcile import reconcile
    from portone_recon.store import Store

    store = Store(db)
    with Timer() as t:
        result = reconcile(store, as_of=AS_OF, grace="15min", progress=False)
        frame = result.findings
    counts = frame.groupby("kind").size().to_dict() if len(frame) else {}
    stored = store.query("SELECT count(*) AS n FROM findings WHERE run_id = ?", [result.run_id])["n"].iloc[0]
    print(
        json.dumps(
            {
                "reconcile_s": t.wall,
                "reconcile_cpu_s": t.cpu,
                "reconcile_peak_rss_mib": peak_rss_mib(),
                "findings": len(frame),
                "findings_stored": int(stored),
                "by_kind": {str(k): int(v) for k, v in counts.items()},
            }
        )
    )


def child_profile(db: str) -> None:
    """Time every statement the runner executes (same SQL, same binding), in a throw-away transaction."""
    from portone_recon._time import parse_duration, parse_instant
    from portone_recon.reconcile import FINDING_KINDS
    from portone_recon.reconcile.rules import RULE_COLUMNS, bind, load_rule, load_support, split_statements
    from portone_recon.reconcile.runner import _FOUND_DDL, _INSERT_FINDINGS, coverage_bounds
    from portone_recon.store import Store

    params = {
        "as_of": parse_instant(AS_OF),
        "grace": parse_duration("15min"),
        "run_id": "profile",
        "inferred": False,
        "prev_run_id": None,
    }
    steps: list[dict[str, object]] = []
    con_cm = Store(db).connect()
    con = con_cm.__enter__()
    try:
        params.update(coverage_bounds(con))
        con.execute("BEGIN TRANSACTION")
        for name in ("_macros", "_prepare"):
            for i, st in enumerate(split_statements(load_support(name)), start=1):
                with Timer() as t:
                    used = bind(st, params)
                    con.execute(st, used) if used else con.execute(st)
                steps.append({"step": f"{name}.{i}", "wall_s": t.wall, "cpu_s": t.cpu})
        con.execute(_FOUND_DDL)
        for kind in FINDING_KINDS:
            sql = load_rule(kind).strip().rstrip(";")
            with Timer() as t:
                con.execute(
                    f"INSERT INTO _recon_found BY NAME SELECT {', '.join(RULE_COLUMNS)} FROM ({sql}\n)",
                    bind(sql, params),
                )
            steps.append({"step": kind, "wall_s": t.wall, "cpu_s": t.cpu})
        with Timer() as t:
            con.execute(_INSERT_FINDINGS, bind(_INSERT_FINDINGS, params))
        steps.append({"step": "insert findings", "wall_s": t.wall, "cpu_s": t.cpu})
        con.execute("ROLLBACK")
    finally:
        con_cm.__exit__(None, None, None)
    print(json.dumps({"profile": steps, "profile_peak_rss_mib": peak_rss_mib()}))


def child_pandas(db: str) -> None:
    import duckdb
    import numpy as np

    with Timer() as load:
        con = duckdb.connect(db, read_only=True)
        orders = con.sql("SELECT merchant_uid, amount, status FROM orders").df()
        payments = con.sql("SELECT imp_uid, merchant_uid, amount, status FROM payments").df()
        con.close()
    with Timer() as t:
        merged = orders.merge(
            payments, on="merchant_uid", how="outer", suffixes=("_order", "_pg"), indicator=True
        )
        expected = merged["status_order"].map({"paid": "paid", "pending": "ready", "failed": "failed"})
        conditions = [
            merged["_merge"] == "left_only",
            merged["_merge"] == "right_only",
            (merged["_merge"] == "both") & (merged["amount_order"] != merged["amount_pg"]),
            (merged["_merge"] == "both") & (expected != merged["status_pg"]),
        ]
        labels = ["order_without_payment", "payment_without_order", "amount_mismatch", "status_mismatch"]
        merged["category"] = np.select(conditions, labels, default="ok")
        exceptions = merged[merged["category"] != "ok"]
        counts = exceptions["category"].value_counts().to_dict()
    print(
        json.dumps(
            {
                "pandas_load_s": load.wall,
                "pandas_s": t.wall,
                "pandas_cpu_s": t.cpu,
                "pandas_peak_rss_mib": peak_rss_mib(),
                "pandas_exceptions": len(exceptions),
                "pandas_by_category": {str(k): int(v) for k, v in counts.items()},
            }
        )
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=float, default=1e5, help="number of orders (1e5, 1e6, 1e7)")
    parser.add_argument("--json", help="write the figures to this JSON file")
    parser.add_argument("--keep", help="write the store here and keep it (default: a temp folder)")
    parser.add_argument("--reuse", action="store_true", help="with --keep: reuse an existing store as is")
    parser.add_argument("--profile", action="store_true", help="also time each reconcile statement")
    parser.add_argument("--skip-pandas", action="store_true", help="do not run the pandas baseline")
    parser.add_argument(
        "--duckdb-setting",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="what-if: SET this on every store connection of the reconcile (e.g. memory_limit=2GB)",
    )
    parser.add_argument("--child", choices=["reconcile", "pandas", "profile"], help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _apply_settings(args.duckdb_setting)
        {"reconcile": child_reconcile, "pandas": child_pandas, "profile": child_profile}[args.child](args.db)
        return 0

    n = int(args.orders)
    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="recon_scale_") as tmp:
        db = Path(args.keep) if args.keep else Path(tmp) / "scale.duckdb"
        if args.reuse and db.exists():
            gen = json.loads(db.with_suffix(".gen.json").read_text())
        else:
            if db.exists():
                db.unlink()
            gen = generate(db, n)
            if args.keep:
                db.with_suffix(".gen.json").write_text(json.dumps(gen))
        me = str(Path(__file__).resolve())
        extra = [f"--duckdb-setting={x}" for x in args.duckdb_setting]
        rec = run_child([me, "--child", "reconcile", "--db", str(db), *extra])
        pan = {} if args.skip_pandas else run_child([me, "--child", "pandas", "--db", str(db)])
        prof = run_child([me, "--child", "profile", "--db", str(db), *extra]) if args.profile else {}
    expected: dict[str, int] = gen["expected_by_kind"]  # type: ignore[assignment]
    found: dict[str, int] = rec["by_kind"]
    anomalies_ok = all(found.get(k, 0) == v for k, v in expected.items()) and set(found) <= set(expected)
    figures: dict[str, object] = {
        "n": n,
        "load_average_before": load_before,
        "load_average_after": load_average(),
        **gen,
        **rec,
        **pan,
        **prof,
        "anomalies_found_as_injected": anomalies_ok,
        "duckdb_settings": args.duckdb_setting,
    }
    if pan:
        figures["speedup_vs_pandas"] = pan["pandas_s"] / rec["reconcile_s"]
        figures["cpu_ratio_vs_pandas"] = pan["pandas_cpu_s"] / rec["reconcile_cpu_s"]
        figures["rss_ratio_vs_pandas"] = pan["pandas_peak_rss_mib"] / rec["reconcile_peak_rss_mib"]
    rows = [
        {
            "what": "full reconcile (all 13 kinds)",
            "wall_s": rec["reconcile_s"],
            "cpu_s": rec["reconcile_cpu_s"],
            "peak_rss_mib": rec["reconcile_peak_rss_mib"],
        }
    ]
    if pan:
        rows.append(
            {
                "what": "pandas, 4 basic comparisons",
                "wall_s": pan["pandas_s"],
                "cpu_s": pan["pandas_cpu_s"],
                "peak_rss_mib": pan["pandas_peak_rss_mib"],
            }
        )
    print(
        f"orders={n:,}  generate={gen['generate_s']:.1f}s  findings={rec['findings']:,}  load={load_before:.1f}"
    )
    print_table(rows, ["what", "wall_s", "cpu_s", "peak_rss_mib"])
    if pan:
        print(
            f"reconcile vs pandas: {figures['speedup_vs_pandas']:.2f}x wall, "
            f"{figures['cpu_ratio_vs_pandas']:.2f}x CPU, {figures['rss_ratio_vs_pandas']:.2f}x less peak RSS"
        )
    print_table(
        [
            {"kind": k, "expected": v, "found": found.get(k, 0), "ok": found.get(k, 0) == v}
            for k, v in expected.items()
        ],
        ["kind", "expected", "found", "ok"],
    )
    if prof:
        print_table(prof["profile"], ["step", "wall_s", "cpu_s"])
    write_json(args.json, figures)
    return 0 if anomalies_ok else 1


if __name__ == "__main__":
    sys.exit(main())
