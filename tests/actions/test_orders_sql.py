"""What a fix-up books, it records: the rebooked order is created in the merchant's own SQL orders table
(PostgreSQL and MariaDB) and in the store, and a paid retry marks its order paid there."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from portone_recon.actions import apply, plan_fixes
from portone_recon.store import Store

from .conftest import SUBSCRIPTIONS, build_merchant, findings, load_subs, store_run

sa = pytest.importorskip("sqlalchemy")

pytestmark = pytest.mark.sql

MAPPING = {
    "columns": {
        "merchant_uid": "order_no",
        "customer_uid": "member",
        "amount": "price",
        "status": "state",
        "imp_uid": "pg_id",
        "paid_at": "paid_time",
        "refunded_amount": "refunded",
    },
    "statuses": {"결제대기": "pending", "결제완료": "paid", "결제실패": "failed"},
}


@pytest.fixture
def shop(sql_url: str) -> Iterator[tuple[Any, str]]:
    """The merchant's orders table with the orders of the hand-built merchant, dropped afterwards."""
    name = f"pr_shop_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(sql_url)
    meta = sa.MetaData()
    table = sa.Table(
        name,
        meta,
        sa.Column("order_no", sa.String(40), primary_key=True),
        sa.Column("member", sa.String(40)),
        sa.Column("price", sa.BigInteger()),
        sa.Column("state", sa.String(20)),
        sa.Column("pg_id", sa.String(40)),
        sa.Column("paid_time", sa.DateTime()),
        sa.Column("refunded", sa.Integer()),
    )
    meta.create_all(engine)
    rows = [
        ("sub-cus_a-202611", "cus_a", 9900, "결제대기"),
        ("sub-cus_b-202610", "cus_b", 14900, "결제완료"),
        ("sub-cus_b-202611", "cus_b", 14900, "결제실패"),
        ("sub-cus_e-202611", "cus_e", 10900, "결제대기"),
    ]
    with engine.begin() as con:
        con.execute(
            sa.insert(table),
            [{"order_no": o, "member": m, "price": p, "state": s, "refunded": 0} for o, m, p, s in rows],
        )
    try:
        yield engine, name
    finally:
        meta.drop_all(engine)
        engine.dispose()


def test_rebook_creates_its_order_and_a_paid_retry_marks_its_order_paid(
    world: Any, store: Store, shop: tuple[Any, str], sql_url: str
) -> None:
    from portone_recon.orders import load_orders

    engine, table = shop
    ids = build_merchant(world.client(), lambda to: world.advance(to=to))
    load_orders(store, sql_url, MAPPING, table=table, progress=False)
    load_subs(store)
    plan = plan_fixes(
        store_run(store, findings(ids)),
        ["missing_next_schedule", "unpaid_renewal"],
        subscriptions=SUBSCRIPTIONS,
    )
    report = apply(plan, world.client(), store, dry_run=False, progress=False)
    assert set(report.outcomes["status"]) == {"succeeded"}, report.outcomes[["key", "status", "message"]]
    with engine.connect() as con:
        got = {
            r.order_no: (r.member, int(r.price), r.state)
            for r in con.execute(sa.text(f"SELECT order_no, member, price, state FROM {table}"))
        }
    assert got["rebook-cus_a-202612"] == ("cus_a", 9900, "결제대기")  # the merchant's own pending value
    assert got["rebook-cus_b-202612"] == ("cus_b", 14900, "결제대기")
    assert got["sub-cus_b-202611"] == ("cus_b", 14900, "결제완료")  # the retry paid it
    local = store.query("SELECT merchant_uid, status, amount FROM orders WHERE merchant_uid LIKE 'rebook-%'")
    assert sorted(map(tuple, local.to_numpy().tolist())) == [
        ("rebook-cus_a-202612", "pending", 9900),
        ("rebook-cus_b-202612", "pending", 14900),
    ]
    # applying again writes nothing twice
    again = apply(plan, world.client(), store, dry_run=False, progress=False)
    assert set(again.outcomes["outcome"]) == {"already"}
    with engine.connect() as con:
        n = con.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
    assert n == 6
