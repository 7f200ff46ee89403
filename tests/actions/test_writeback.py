"""reverify writes a verified payment back to the merchant's SQL orders table (SQLite stands in here)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from portone_recon.actions import apply, plan_fixes
from portone_recon.store import Store

from .conftest import SUBSCRIPTIONS, build_merchant, findings, store_run

pytest.importorskip("sqlalchemy")


def test_reverify_marks_paid_in_the_sql_source_and_the_store(
    world: Any, store: Store, tmp_path: Path
) -> None:
    from portone_recon.orders import load_orders

    ids = build_merchant(world.client(), lambda to: world.advance(to=to))
    db = tmp_path / "shop.sqlite"
    con = sqlite3.connect(db)
    con.execute(
        "CREATE TABLE shop_orders (order_no TEXT PRIMARY KEY, member TEXT, price INTEGER, state TEXT, "
        "pg_id TEXT, paid_time TEXT, refunded INTEGER)"
    )
    con.executemany(
        "INSERT INTO shop_orders VALUES (?, ?, ?, ?, NULL, NULL, 0)",
        [("sub-cus_a-202611", "cus_a", 9900, "결제대기"), ("sub-cus_e-202611", "cus_e", 10900, "결제대기")],
    )
    con.commit()
    con.close()
    mapping = {
        "columns": {
            "merchant_uid": "order_no",
            "customer_uid": "member",
            "amount": "price",
            "status": "state",
            "imp_uid": "pg_id",
            "paid_at": "paid_time",
            "refunded_amount": "refunded",
        },
        "statuses": {"결제대기": "pending", "결제완료": "paid"},
    }
    load_orders(store, f"sqlite:///{db}", mapping, table="shop_orders", progress=False)

    plan = plan_fixes(store_run(store, findings(ids)), ["missed_webhook"], subscriptions=SUBSCRIPTIONS)
    report = apply(plan, world.client(), store, dry_run=False, progress=False)
    st = dict(zip(report.outcomes["key"], report.outcomes["status"], strict=True))
    assert st == {"sub-cus_a-202611": "succeeded", "sub-cus_e-202611": "failed"}
    msg = report.outcomes.set_index("key").loc["sub-cus_a-202611", "message"]
    assert "orders database rows changed: 1" in msg

    rows = dict(
        sqlite3.connect(db).execute("SELECT order_no, state || '|' || coalesce(pg_id, '') FROM shop_orders")
    )
    assert rows["sub-cus_a-202611"] == f"결제완료|{ids['imp_a']}"
    assert rows["sub-cus_e-202611"] == "결제대기|"  # the amount mismatch is never written
    local = store.query("SELECT merchant_uid, status, imp_uid FROM orders ORDER BY merchant_uid")
    assert list(local["status"]) == ["paid", "pending"]
    assert local["imp_uid"][0] == ids["imp_a"]
