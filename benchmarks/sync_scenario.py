"""API calls and seconds of a full and an incremental sync of a generated merchant (in-process sandbox).

A 10,000-subscriber x 12-month scenario synced into a fresh store, its
orders and subscriptions loaded and reconciled at the scenario's as_of (findings must equal the labels),
then one sandbox day later (renewals execute and the merchant's handler books the next ones; 5 partial and
3 full console refunds; 5 new schedules) synced again; the store must equal the world afterwards.

Usage:
  python benchmarks/sync_scenario.py [--subscribers 10000] [--months 12] [--seed 5] [--json OUT]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _common import write_json  # noqa: E402

from portone_recon.api.client import PortOneClient  # noqa: E402
from portone_recon.orders import load_orders, load_subscriptions  # noqa: E402
from portone_recon.reconcile import reconcile  # noqa: E402
from portone_recon.sandbox.scenario import MATCH_KEY, generate_merchant  # noqa: E402
from portone_recon.store import Store  # noqa: E402
from portone_recon.sync import SyncReport, sync  # noqa: E402


def run(label: str, world: Any, store: Store) -> tuple[SyncReport, float]:
    with PortOneClient(
        imp_key=world.imp_key, imp_secret=world.imp_secret, transport=world.transport(), sleep=lambda _s: None
    ) as client:
        cpu0 = time.process_time()
        report = sync(client, store, progress=False)
        cpu = time.process_time() - cpu0
    print(f"{label}: {report!r} cpu {cpu:.2f}s")
    for st in report.streams:
        print(f"   {st.stream:18} calls {st.api_calls:4} pages {st.pages:4} items {st.items:7} {st.note}")
    return report, cpu


def one_day_of_changes(world: Any) -> None:
    world.advance(seconds=86400)
    paid = sorted(
        (p for p in world.payments.values() if p["status"] == "paid" and not p["cancel_history"]),
        key=lambda p: p["paid_at"],
    )
    for p in paid[-40:-35]:
        world.cancel_payment(imp_uid=p["imp_uid"], amount=1000, reason="콘솔 부분 환불", from_console=True)
    for p in paid[len(paid) // 2 : len(paid) // 2 + 3]:
        world.cancel_payment(imp_uid=p["imp_uid"], reason="콘솔 전액 환불", from_console=True)
    for i, cu in enumerate(sorted(world.billing_keys)[:5]):
        entry = {
            "merchant_uid": f"extra-{cu}-{i}",
            "schedule_at": int(world.clock.now_unix) + 20 * 86400,
            "amount": 4900,
            "name": "추가 예약",
        }
        world.create_schedules(cu, [entry])
    world.advance(seconds=60)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--json", help="write the figures to this JSON file")
    args = parser.parse_args()

    from tests.sync._world import store_tables, world_tables

    t0 = time.perf_counter()
    scenario = generate_merchant(args.subscribers, args.months, seed=args.seed)
    world = scenario.world
    print(f"generated in {time.perf_counter() - t0:.1f}s: {len(world.payments):,} payments")
    with tempfile.TemporaryDirectory(prefix="sync_scenario_") as tmp:
        store = Store(Path(tmp) / "s.duckdb")
        store.migrate()
        full, full_cpu = run("full", world, store)
        load_orders(store, scenario.orders)
        load_subscriptions(store, scenario.subscriptions)
        recon_s = []
        for _ in range(3):
            t = time.perf_counter()
            result = reconcile(store, as_of=scenario.as_of)
            recon_s.append(time.perf_counter() - t)
        found = {(r.kind, getattr(r, MATCH_KEY[r.kind])) for r in result.findings.itertuples()}
        labels = {(r.kind, getattr(r, MATCH_KEY[r.kind])) for r in scenario.labels.itertuples()}
        print(
            f"reconcile: {len(result.findings)} findings, labels {len(labels)}, equal: {found == labels}; "
            f"seconds {', '.join(f'{x:.2f}' for x in recon_s)}"
        )
        one_day_of_changes(world)
        inc, inc_cpu = run("incremental (+1 day)", world, store)
        expected, got = world_tables(world), store_tables(store)
        equal = all(expected[k] == got[k] for k in expected)
    print(f"store == world after the incremental sync: {equal}")
    write_json(
        args.json,
        {
            "subscribers": args.subscribers,
            "months": args.months,
            "full_api_calls": full.api_calls,
            "full_s": full.seconds,
            "full_cpu_s": full_cpu,
            "incremental_api_calls": inc.api_calls,
            "incremental_s": inc.seconds,
            "incremental_cpu_s": inc_cpu,
            "store_equals_world": equal,
            "reconcile_s": sorted(recon_s)[1],
            "findings_equal_labels": found == labels,
        },
    )
    return 0 if equal and found == labels else 1


if __name__ == "__main__":
    sys.exit(main())
