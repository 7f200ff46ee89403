"""The bulk sync's SQL reader and the reference readers of ``api.v2.records`` agree on every odd record:
the same records stored (with the same values) and the same ones refused."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

import duckdb
import orjson
import pytest

from portone_recon.api.v2.records import read_billing_key, read_cancellations, read_payment, read_schedule
from portone_recon.sync import v2_sql
from portone_recon.sync.v2_sql import BILLING_KEYS, PAYMENTS, SCHEDULES, V2Entity


def _paid(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "status": "PAID",
        "id": "order-1",
        "transactionId": "tx-1",
        "storeId": "store-1",
        "version": "V2",
        "channel": {"type": "TEST", "pgProvider": "TOSSPAYMENTS"},
        "billingKey": "bk-1",
        "scheduleId": "sch-1",
        "requestedAt": "2026-03-01T00:59:59.123Z",
        "statusChangedAt": "2026-03-01T01:00:00Z",
        "paidAt": "2026-03-01T01:00:00+09:00",
        "orderName": '월간 "구독"',
        "amount": {"total": 9900, "cancelled": 0},
        "currency": "KRW",
        "customer": {"id": "cust-1", "name": {"full": "홍길동"}, "email": "a@b.c", "phoneNumber": "010"},
        "origin": {"platformType": "API"},
        "method": {"type": "PaymentMethodCard", "card": {"number": "1234****", "name": "KB"}},
        "webhooks": [{"status": "FAILED_NOT_OK_RESPONSE"}, {"status": "SUCCEEDED"}],
        "aFieldFromTheFuture": {"x": [1, 2]},
    }
    base.update(over)
    return base


def _without(data: dict[str, Any], *path: str) -> dict[str, Any]:
    out = copy.deepcopy(data)
    node = out
    for k in path[:-1]:
        node = node[k]
    del node[path[-1]]
    return out


_CANCELS = [
    {"id": "c1", "status": "SUCCEEDED", "totalAmount": 1000, "reason": "first", "cancelledAt": ""},
    {"id": "c1", "status": "SUCCEEDED", "totalAmount": 1000, "requestedAt": "2026-03-02T00:00:00Z"},
    {"id": "c2", "status": "REQUESTED", "totalAmount": 500},
    {"id": "c3", "status": "SUCCEEDED", "totalAmount": "700"},
    {"id": 4, "status": "SUCCEEDED", "totalAmount": 700},
    {
        "id": "c5",
        "status": "SUCCEEDED",
        "totalAmount": 300,
        "reason": "last",
        "cancelledAt": "soon",
        "pgCancellationId": "pg-5",
        "receiptUrl": "https://r",
    },
    "not an object",
]

PAYMENT_CASES: list[Any] = [
    _paid(),
    # customer.name is a string in PortOne's schema; the input form {full} is read too
    _paid(customer={"id": "cust-1", "name": "홍길동"}),
    _paid(customer={"id": "cust-1", "name": 7}),
    # a zero amount no schedule made: a billing-key issuance; with a schedule: a zero-amount charge
    _paid(amount={"total": 0, "cancelled": 0}, scheduleId=None),
    _paid(amount={"total": 0, "cancelled": 0}),
    # a schedule's payment before it runs (kept by the readers; the sync leaves it out afterwards)
    _paid(status="READY", paidAt=None),
    _paid(status="PARTIAL_CANCELLED", amount={"total": 9900, "cancelled": 3000}, cancellations=_CANCELS),
    _paid(status="PAY_PENDING", webhooks=[]),
    _paid(status="VIRTUAL_ACCOUNT_ISSUED", webhooks=[{"status": 5}, "x"]),
    _paid(status="CANCELLED", cancelledAt="2026-03-02T00:00:00.1234567Z"),
    _paid(status="FAILED", failure={"reason": "한도 초과"}, failedAt="2026-03-01 01:00:00-05:30"),
    _paid(status="SOMETHING_NEW"),
    _paid(status=""),
    _paid(status=None),
    _without(_paid(), "status"),
    _paid(transactionId=None),
    _paid(transactionId=""),
    _paid(transactionId=7),
    _paid(id=["x"]),
    _paid(amount={"total": "9900"}),
    _paid(amount={"total": 9900.0}),
    _paid(amount={"total": 99.5}),
    _paid(amount={"total": True}),
    _paid(amount={"total": 10**15}),
    _paid(amount={"cancelled": 1}),
    _paid(amount={"total": 9900, "cancelled": "0"}),
    _paid(amount={"total": 9900, "cancelled": None}),
    _paid(amount="9900"),
    _without(_paid(), "amount"),
    _paid(currency="USD", amount={"total": 999, "cancelled": 0}),
    _paid(currency="USD", amount={"total": -200, "cancelled": 0}),
    _paid(currency="KWD", amount={"total": 1234, "cancelled": 0}),
    _paid(currency="usd"),
    _paid(currency="ÄÖÜ"),
    _paid(currency=5),
    _paid(customer="cust-1"),
    _paid(customer={"id": 5}),
    _paid(customer={"name": "plain", "email": 5}),
    _paid(customer=None),
    _paid(channel=[]),
    _paid(method={"type": "PaymentMethodHologram", "card": "x"}),
    _paid(method={"type": "PaymentMethodEasyPay"}),
    _paid(method={"type": "PaymentMethod"}),
    _paid(method={"type": "PaymentMethodÉclair"}),
    _paid(method={"type": 5}),
    _paid(failure="boom"),
    _paid(origin={"platformType": 5}),
    _paid(origin={"platformType": ""}),
    _paid(origin="API"),
    _paid(cancellations={"id": "c"}),
    _paid(billingKey=5),
    _paid(billingKey="", scheduleId=""),
    _paid(scheduleId=None),
    _paid(pgTxId=False),
    _paid(orderName=None, customData='{"a": "\\\\"}'),
    _paid(customData={"a": 1}),
    _paid(storeId=1),
    _paid(version="V3"),
    _paid(paidAt="yesterday"),
    _paid(paidAt="2026-03-01T01:00:00"),
    _paid(paidAt="2026-02-30T01:00:00Z"),
    _paid(paidAt="2026-03-01T24:00:00Z"),
    _paid(paidAt="2026-03-01T23:59:60Z"),
    _paid(paidAt="0000-03-01T01:00:00Z"),
    _paid(paidAt="２０２６-03-01T01:00:00Z"),
    _paid(paidAt="2026-03-01t01:00:00z"),
    _paid(paidAt=1767225600),
    _paid(statusChangedAt=None, requestedAt=None),
    "a string",
    [1, 2],
    None,
    17,
]

_SCHED = {
    "status": "SCHEDULED",
    "id": "sch-9",
    "paymentId": "renew-9",
    "billingKey": "bk-1",
    "customer": {"id": "cust-1", "name": {"full": "김"}, "email": "e"},
    "totalAmount": 9900,
    "currency": "KRW",
    "timeToPay": "2026-04-01T01:00:00Z",
    "customData": "",
    "orderName": "월간",
}
SCHEDULE_CASES: list[Any] = [
    _SCHED,
    {**_SCHED, "status": "SUCCEEDED", "completedAt": "2026-04-01T01:00:05Z"},
    {**_SCHED, "status": "FAILED", "completedAt": None, "startedAt": "2026-04-01T01:00:01+09:00"},
    {**_SCHED, "status": "PENDING", "completedAt": "", "startedAt": "later"},
    {**_SCHED, "status": "REVOKED", "revokedAt": "2026-03-20T00:00:00Z"},
    {**_SCHED, "status": "REVOKED", "revokedAt": 5},
    {**_SCHED, "status": "PAUSED"},
    {**_SCHED, "paymentId": ""},
    {**_SCHED, "id": None},
    {**_SCHED, "billingKey": 3},
    {**_SCHED, "customer": {}},
    {**_SCHED, "customer": "c"},
    {**_SCHED, "totalAmount": "9900"},
    {**_SCHED, "totalAmount": 1.5},
    {**_SCHED, "timeToPay": None},
    {**_SCHED, "timeToPay": "2026-04-31T00:00:00Z"},
    {**_SCHED, "customData": 5, "orderName": None},
    {**_SCHED, "orderName": 5},
    {**_SCHED, "storeId": 5},
    {**_SCHED, "currency": "JPY", "totalAmount": 10**14},
    "x",
]

_KEY = {
    "status": "ISSUED",
    "billingKey": "bk-1",
    "customer": {"id": "c"},
    "issuedAt": "2026-01-01T00:00:00Z",
    "channels": [{"pgProvider": "X"}],
    "methods": [{"type": "Easy"}, {"card": {"name": "KB", "number": "4*"}}],
}
KEY_CASES: list[Any] = [
    _KEY,
    {**_KEY, "status": "DELETED", "deletedAt": "2026-02-01T00:00:00Z"},
    {**_KEY, "status": "DELETED"},
    {**_KEY, "deletedAt": "2026-02-01T00:00:00Z"},
    {**_KEY, "deletedAt": "nope"},
    {**_KEY, "status": "SUSPENDED"},
    {**_KEY, "billingKey": ""},
    {**_KEY, "customer": {"id": 1}},
    {**_KEY, "customer": None},
    {**_KEY, "customer": []},
    {**_KEY, "channels": ["x", {"pgProvider": "Y"}], "methods": "m"},
    {**_KEY, "channels": [], "methods": [{"card": "x"}]},
    {**_KEY, "issuedAt": None},
    {**_KEY, "storeId": 2},
    [],
]


def _sql_rows(entity: V2Entity, items: list[Any]) -> list[dict[str, Any]]:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("CREATE TEMP TABLE _items (n BIGINT, idx BIGINT, item JSON)")
    con.executemany(
        "INSERT INTO _items VALUES (0, ?, ?)", [(i, orjson.dumps(it).decode()) for i, it in enumerate(items)]
    )
    cur = con.execute(v2_sql.select_sql(entity, "_items") + " ORDER BY idx")
    names = [d[0] for d in cur.description or ()]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _same(value: Any, expected: Any) -> bool:
    if isinstance(expected, datetime) and isinstance(value, datetime):
        return value == expected
    if isinstance(expected, Decimal):
        return value == expected
    return bool(value == expected and type(value) is type(expected))


def _check(
    entity: V2Entity, reader: Callable[[Any], Any], items: list[Any], fix: Callable[[dict], dict]
) -> None:
    rows = _sql_rows(entity, items)
    assert len(rows) == len(items)
    for item, row in zip(items, rows, strict=True):
        rec, why = reader(item)
        assert row["bad"] == (rec is None), (item, why)
        if rec is None:
            assert why
            continue
        rec = fix(rec)
        for col, _ in entity.cols:
            assert _same(row[col], rec[col]), (col, row[col], rec[col], item)
        assert orjson.loads(row["raw"]) == item


def test_payments_read_alike() -> None:
    _check(PAYMENTS, read_payment, PAYMENT_CASES, lambda r: r)


def test_schedules_read_alike() -> None:
    _check(SCHEDULES, read_schedule, SCHEDULE_CASES, lambda r: r)


def test_billing_keys_read_alike() -> None:
    def fix(r: dict) -> dict:
        return {**r, "status": "DELETED" if r["deleted"] else "ISSUED", "issued_at": r["inserted"]}

    _check(BILLING_KEYS, read_billing_key, KEY_CASES, fix)


def test_the_corpus_holds_both_outcomes() -> None:
    for reader, cases in (
        (read_payment, PAYMENT_CASES),
        (read_schedule, SCHEDULE_CASES),
        (read_billing_key, KEY_CASES),
    ):
        outcomes = {reader(c)[0] is None for c in cases}
        assert outcomes == {True, False}


@pytest.mark.parametrize("item", [c for c in PAYMENT_CASES if read_payment(c)[0] is not None])
def test_cancellations_read_alike(item: dict[str, Any]) -> None:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("CREATE TEMP TABLE _items (n BIGINT, idx BIGINT, item JSON)")
    con.execute("INSERT INTO _items VALUES (0, 0, ?)", [orjson.dumps(item).decode()])
    con.execute(f"CREATE TEMP TABLE _pay AS {v2_sql.select_sql(PAYMENTS, '_items')}")
    cur = con.execute(v2_sql.cancellations_sql("_pay") + " ORDER BY cancellation_id")
    names = [d[0] for d in cur.description or ()]
    got = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    rec, _ = read_payment(item)
    assert rec is not None
    first: dict[str, dict[str, Any]] = {}
    for c in read_cancellations(item, rec["currency"]):
        first.setdefault(c["cancellation_id"], c)
    want = [{"imp_uid": rec["imp_uid"], **first[k]} for k in sorted(first)]
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        for col, _ in v2_sql.CANCEL_COLS:
            assert _same(g[col], w[col]), (col, g[col], w[col])
