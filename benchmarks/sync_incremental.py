"""Does an incremental sync cost API calls and seconds in proportion to the change, not to history?

Starts ``portone-recon sandbox serve`` (a subprocess, killed at the end) with about N payments, runs a full
sync (no latency), then makes one day of changes through the sandbox's own API:

  * the clock advances one day: every schedule due that day executes (new payments, executed schedules);
  * new payments: ``POST /subscribe/payments/again`` until the day holds ``--new-share`` x N new payments;
  * partial refunds: ``POST /payments/cancel`` of 1,000 won on ``--refund-share`` x N old paid payments
    (paid 30-80 days ago, inside the sync's default 90-day refund window);
  * new schedules: the next month booked (``POST /subscribe/payments/schedule``) for every executed one;

then, with ``--latency-ms`` per request, an incremental sync (the change) and a second one (no change).
The minimum is the number of listing pages that hold the changes: ceil(new payments / 1000) +
ceil(refunded / 1000) + ceil(changed schedules / 1000); the report gives calls / minimum per stream.

Usage:
  python benchmarks/sync_incremental.py [--payments 1e6] [--latency-ms 50] [--concurrency 4] [--json OUT]
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
import orjson
from _common import Timer, load_average, print_table, write_json
from _sandbox import SandboxProcess, subscribers_for

DAY = 86400


def do_sync(server: SandboxProcess, db: Path, concurrency: int) -> dict[str, Any]:
    from sync_throughput import _Clock

    from portone_recon.api.client import PortOneClient
    from portone_recon.store import Store
    from portone_recon.sync import engine, sync

    client = PortOneClient(
        api_base=server.base_url,
        imp_key=server.imp_key,
        imp_secret=server.imp_secret,
        concurrency=concurrency,
    )
    clock = _Clock()
    names = ("_payments", "_updated", "_schedules", "_billing_keys")
    originals = {n: getattr(engine._Run, n) for n in names}
    for n in names:
        setattr(engine._Run, n, clock.wrap(n.strip("_"), originals[n]))
    try:
        with Timer() as t:
            report = sync(client, Store(db), progress=False)
    finally:
        for n in names:
            setattr(engine._Run, n, originals[n])
        client.close()
    return {
        "s": t.wall,
        "cpu_s": t.cpu,
        "api_calls": report.api_calls,
        "streams": {
            s.stream: {"api_calls": s.api_calls, "pages": s.pages, "items": s.items} for s in report.streams
        },
        "tables": {k: v.to_dict() for k, v in report.tables.items()},
        "steps": clock.rows(),
    }


def make_changes(
    server: SandboxProcess, db: Path, payments: int, new_share: float, refund_share: float, threads: int
) -> dict[str, Any]:
    """One day of changes through the sandbox API; returns what was changed."""
    from portone_recon.store import Store

    before = server.control("GET", "state")
    now = int(before["now"])
    adv = server.control("POST", "advance", {"seconds": DAY})
    bodies = [h.get("body") or {} for h in adv["webhooks"]]
    executed = [b for b in bodies if b.get("status") in ("paid", "failed")]
    executed_mu = sorted({str(b["merchant_uid"]) for b in executed if b.get("merchant_uid")})
    store = Store(db)
    want_new = max(0, round(payments * new_share) - len(executed))
    customers = store.query(
        "SELECT customer_uid, max(amount) AS amount FROM payments WHERE status = 'paid' AND customer_uid IN "
        "(SELECT customer_uid FROM billing_keys WHERE NOT deleted) GROUP BY customer_uid "
        "ORDER BY hash(customer_uid) LIMIT ?",
        [want_new],
    )
    lo = datetime.fromtimestamp(now - 80 * DAY, tz=UTC)
    hi = datetime.fromtimestamp(now - 30 * DAY, tz=UTC)
    refunds = store.query(
        "SELECT imp_uid FROM payments WHERE status = 'paid' AND cancel_amount = 0 AND amount > 1000 "
        "AND paid_at BETWEEN ? AND ? ORDER BY hash(imp_uid) LIMIT ?",
        [lo, hi, round(payments * refund_share)],
    )["imp_uid"].tolist()
    sched = store.query(
        "SELECT merchant_uid, customer_uid, amount, schedule_at FROM schedules WHERE merchant_uid IN "
        "(SELECT unnest(?::VARCHAR[]))",
        [executed_mu],
    )
    token = server.token()
    limits = httpx.Limits(max_connections=threads * 2, max_keepalive_connections=threads * 2)
    errors: list[str] = []
    with httpx.Client(
        base_url=server.base_url, limits=limits, timeout=120, headers={"Authorization": f"Bearer {token}"}
    ) as http:

        def post(path: str, body: dict[str, Any]) -> None:
            r = http.post(path, json=body)
            data = orjson.loads(r.content)
            if r.status_code != 200 or data.get("code") != 0:
                errors.append(f"{path}: {r.status_code} {data.get('message')}")

        jobs: list[tuple[str, dict[str, Any]]] = []
        for i, row in enumerate(customers.itertuples()):
            jobs.append(
                (
                    "/subscribe/payments/again",
                    {
                        "customer_uid": row.customer_uid,
                        "merchant_uid": f"bench-again-{now}-{i}",
                        "amount": int(row.amount),
                        "name": "추가 결제",
                    },
                )
            )
        jobs += [("/payments/cancel", {"imp_uid": u, "amount": 1000, "reason": "부분 환불"}) for u in refunds]
        for row in sched.itertuples():
            at = int(row.schedule_at.timestamp()) + 30 * DAY
            jobs.append(
                (
                    "/subscribe/payments/schedule",
                    {
                        "customer_uid": row.customer_uid,
                        "schedules": [
                            {
                                "merchant_uid": f"{row.merchant_uid}-next",
                                "schedule_at": at,
                                "amount": int(row.amount),
                            }
                        ],
                    },
                )
            )
        with Timer() as t, ThreadPoolExecutor(threads) as pool:
            list(pool.map(lambda j: post(*j), jobs))
    # the sandbox clock stands still: move it a minute on, so the changes lie before the sync's `until`
    server.control("POST", "advance", {"seconds": 60})
    return {
        "executed_schedules": len(executed_mu),
        "new_payments_again": len(customers),
        "new_payments": len(executed) + len(customers),
        "partial_refunds": len(refunds),
        "new_schedules": len(sched),
        "change_requests": len(jobs),
        "change_errors": len(errors),
        "change_error_sample": errors[:3],
        "change_s": t.wall,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--payments", type=float, default=1e6, help="history size (about; default 1e6)")
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--latency-ms", type=float, default=50.0, help="latency during the incremental syncs")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--new-share", type=float, default=0.01, help="new payments / history (default 1%%)")
    parser.add_argument(
        "--refund-share", type=float, default=0.001, help="refunded / history (default 0.1%%)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="write the figures to this JSON file")
    parser.add_argument("--max-seconds", type=float, default=3600, help="hard stop for the server")
    args = parser.parse_args()

    n = int(args.payments)
    load_before = load_average()
    with (
        tempfile.TemporaryDirectory(prefix="sync_inc_") as tmp,
        SandboxProcess(
            subscribers=subscribers_for(n, args.months),
            months=args.months,
            seed=args.seed,
            max_s=args.max_seconds,
        ) as server,
    ):
        db = Path(tmp) / "inc.duckdb"
        server.set_latency(0)
        full = do_sync(server, db, args.concurrency)
        changes = make_changes(server, db, n, args.new_share, args.refund_share, threads=8)
        server.set_latency(args.latency_ms / 1000)
        inc = do_sync(server, db, args.concurrency)
        idle = do_sync(server, db, args.concurrency)
        server.set_latency(0)
        full_payments = full["tables"]["payments"]["new"]

    pay_pages = math.ceil(changes["new_payments"] / 1000)
    ref_pages = math.ceil(changes["partial_refunds"] / 1000)
    sch_pages = math.ceil((changes["executed_schedules"] + changes["new_schedules"]) / 1000)
    minimum = pay_pages + ref_pages + sch_pages
    listing = {k: v for k, v in inc["streams"].items() if k != "billing_keys"}
    listing_calls = sum(v["api_calls"] for v in listing.values())
    figures: dict[str, Any] = {
        "payments": full_payments,
        "latency_ms": args.latency_ms,
        "concurrency": args.concurrency,
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "server_build_s": server.build_s,
        "full": full,
        "changes": changes,
        "incremental": inc,
        "no_change": idle,
        "minimum_pages": minimum,
        "minimum_pages_by_stream": {
            "payments:paid": pay_pages,
            "payments:updated": ref_pages,
            "schedules": sch_pages,
        },
        "incremental_api_calls": inc["api_calls"],
        "incremental_listing_calls": listing_calls,
        "calls_vs_minimum": inc["api_calls"] / minimum if minimum else None,
        "listing_calls_vs_minimum": listing_calls / minimum if minimum else None,
        "incremental_vs_full_s": inc["s"] / full["s"],
        "change_share": (changes["new_payments"] + changes["partial_refunds"]) / max(full_payments, 1),
    }
    print(
        f"history={full_payments:,} payments; change: {changes['new_payments']:,} new payments, "
        f"{changes['partial_refunds']:,} partial refunds, {changes['executed_schedules']:,} executed + "
        f"{changes['new_schedules']:,} new schedules ({changes['change_errors']} errors); load={load_before:.1f}"
    )
    print_table(
        [
            {
                "run": "full (latency 0)",
                "api_calls": full["api_calls"],
                "wall_s": full["s"],
                "cpu_s": full["cpu_s"],
            },
            {
                "run": f"incremental (latency {args.latency_ms:g}ms)",
                "api_calls": inc["api_calls"],
                "wall_s": inc["s"],
                "cpu_s": inc["cpu_s"],
            },
            {
                "run": "incremental, no change",
                "api_calls": idle["api_calls"],
                "wall_s": idle["s"],
                "cpu_s": idle["cpu_s"],
            },
            {"run": "minimum pages holding the change", "api_calls": minimum},
        ],
        ["run", "api_calls", "wall_s", "cpu_s"],
    )
    rows = []
    for stream, v in inc["streams"].items():
        rows.append(
            {
                "stream": stream,
                "calls": v["api_calls"],
                "calls_no_change": idle["streams"].get(stream, {}).get("api_calls"),
                "min_pages": figures["minimum_pages_by_stream"].get(stream, 0),
                "items": v["items"],
            }
        )
    print_table(rows, ["stream", "calls", "calls_no_change", "min_pages", "items"])
    steps = {r["step"]: r for r in idle["steps"]}
    print_table(
        [
            {
                **r,
                "no_change_wall_s": steps[r["step"]]["wall_s"],
                "no_change_cpu_s": steps[r["step"]]["cpu_s"],
            }
            for r in inc["steps"]
        ],
        ["step", "calls", "wall_s", "cpu_s", "no_change_wall_s", "no_change_cpu_s"],
    )
    print(f"tables written by the incremental run: {inc['tables']}")
    print(
        f"calls / minimum: {figures['calls_vs_minimum']:.1f}x (listings only {figures['listing_calls_vs_minimum']:.1f}x)"
    )
    write_json(args.json, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
