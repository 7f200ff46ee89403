"""The fast ingest path: spool -> read_json -> validation -> merge."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest

from portone_recon._time import from_unix
from portone_recon.errors import MalformedResponseError
from portone_recon.store import Store
from portone_recon.sync import _ingest
from portone_recon.sync._spool import Spool
from portone_recon.sync.report import TableCounts

from .conftest import BASE, FakePage, cancel, page, payment, schedule

T1 = datetime(2026, 1, 1, tzinfo=UTC)
T2 = datetime(2026, 1, 2, tzinfo=UTC)


def ingest_payments(
    store: Store, tmp_path: Path, pages: list[Any], at: datetime = T1
) -> dict[str, TableCounts]:
    spool = Spool(tmp_path, "p")
    for p in pages:
        spool.add_page(p)
    with store.transaction() as con:
        return _ingest.ingest_payments(con, spool, at)


def test_payments_are_typed_and_keep_raw(store: Store, tmp_path: Path) -> None:
    items = [payment(i) for i in range(5)]
    items[3] = payment(3, status="failed", paid_at=0, failed_at=BASE + 10, fail_reason="카드 한도초과")
    counts = ingest_payments(store, tmp_path, [page(items[:2]), page(items[2:])])
    assert counts["payments"] == TableCounts(5, 0)
    df = store.query("SELECT * FROM payments ORDER BY imp_uid")
    assert list(df["imp_uid"]) == [f"imp_{i:012d}" for i in range(5)]
    assert df["amount"].tolist() == [8900] * 5
    row = df.iloc[3]
    assert row["status"] == "failed"
    assert row["fail_reason"] == "카드 한도초과"
    assert row["paid_at"] is None or str(row["paid_at"]) == "NaT"  # 0 -> NULL
    assert row["failed_at"].to_pydatetime() == from_unix(BASE + 10)
    assert orjson.loads(df.iloc[0]["raw"]) == items[0]
    assert df.iloc[0]["currency"] == "KRW"


def test_rerun_changes_nothing_and_keeps_synced_at(store: Store, tmp_path: Path) -> None:
    items = [payment(i) for i in range(3)]
    ingest_payments(store, tmp_path, [page(items)], T1)
    counts = ingest_payments(store, tmp_path, [page(items)], T2)
    assert counts["payments"] == TableCounts(0, 0)
    synced = store.query("SELECT DISTINCT synced_at FROM payments")["synced_at"].tolist()
    assert [s.to_pydatetime() for s in synced] == [T1]


def test_change_test_uses_the_raw_hash_and_an_unknown_hash_counts_as_changed(
    store: Store, tmp_path: Path
) -> None:
    items = [payment(i) for i in range(3)]
    ingest_payments(store, tmp_path, [page(items)], T1)
    hashes = store.query("SELECT count(*) AS n FROM payments WHERE raw_hash = hash(raw::VARCHAR)")
    assert hashes["n"].iloc[0] == 3
    with store.transaction() as con:  # e.g. a row written before migration 0004 could compute it
        con.execute("UPDATE payments SET raw_hash = NULL WHERE imp_uid = 'imp_000000000001'")
    counts = ingest_payments(store, tmp_path, [page(items)], T2)
    assert counts["payments"] == TableCounts(0, 1)  # the unknown one is rewritten, the others are not
    synced = store.query("SELECT imp_uid, synced_at, raw_hash = hash(raw::VARCHAR) AS ok FROM payments")
    assert synced["ok"].all()
    assert {r.imp_uid: r.synced_at.to_pydatetime() for r in synced.itertuples()} == {
        "imp_000000000000": T1,
        "imp_000000000001": T2,
        "imp_000000000002": T1,
    }


def test_partial_refund_updates_payment_and_adds_cancellation(store: Store, tmp_path: Path) -> None:
    ingest_payments(store, tmp_path, [page([payment(1), payment(2)])], T1)
    refunded = payment(1, cancel_amount=3000, cancel_history=[cancel(1, 3000, BASE + 500)])
    counts = ingest_payments(store, tmp_path, [page([refunded, payment(2)])], T2)
    assert counts["payments"] == TableCounts(0, 1)
    assert counts["payment_cancellations"] == TableCounts(1, 0)
    row = store.query(
        "SELECT status, cancel_amount, synced_at FROM payments WHERE imp_uid = 'imp_000000000001'"
    )
    assert row.iloc[0]["status"] == "paid"
    assert row.iloc[0]["cancel_amount"] == 3000
    c = store.query("SELECT * FROM payment_cancellations")
    assert len(c) == 1
    assert c.iloc[0]["cancellation_id"] == "cx_1"
    assert c.iloc[0]["amount"] == 3000
    assert c.iloc[0]["cancelled_at"].to_pydatetime() == from_unix(BASE + 500)
    # a second partial refund adds a row, the first stays
    twice = payment(
        1, cancel_amount=5000, cancel_history=[cancel(1, 3000, BASE + 500), cancel(2, 2000, BASE + 900)]
    )
    counts = ingest_payments(store, tmp_path, [page([twice])], T2)
    assert counts["payment_cancellations"] == TableCounts(1, 0)
    assert store.query("SELECT sum(amount) s FROM payment_cancellations").iloc[0]["s"] == 5000


def test_cancellation_without_id_gets_a_stable_key(store: Store, tmp_path: Path) -> None:
    p = payment(1, cancel_amount=100, cancel_history=[cancel(1, 100, BASE + 5, cancellation_id=None)])
    ingest_payments(store, tmp_path, [page([p])])
    again = ingest_payments(store, tmp_path, [page([p])])
    assert again["payment_cancellations"] == TableCounts(0, 0)
    key = store.query("SELECT cancellation_id FROM payment_cancellations").iloc[0]["cancellation_id"]
    assert key == f"C1@{BASE + 5}"


def test_same_payment_twice_keeps_the_latest_state(store: Store, tmp_path: Path) -> None:
    cancelled = payment(1, status="cancelled", cancelled_at=BASE + 1000, cancel_amount=8900)
    counts = ingest_payments(store, tmp_path, [page([cancelled]), page([payment(1)])])
    assert counts["payments"] == TableCounts(1, 0)
    assert store.query("SELECT status FROM payments").iloc[0]["status"] == "cancelled"


def test_body_with_newlines_and_pages_without_body(store: Store, tmp_path: Path) -> None:
    items = [payment(1, name="줄\n바꿈")]
    pretty = orjson.dumps(
        {"code": 0, "message": None, "response": {"list": items}}, option=orjson.OPT_INDENT_2
    )
    assert b"\n" in pretty
    pages = [FakePage("/payments/status/{payment_status}", items, pretty), page([payment(2)], raw=False)]
    counts = ingest_payments(store, tmp_path, pages)
    assert counts["payments"] == TableCounts(2, 0)
    assert store.query("SELECT name FROM payments ORDER BY imp_uid").iloc[0]["name"] == "줄\n바꿈"


def test_chunked_spool_staged_while_filling_equals_one_shot(store: Store, tmp_path: Path) -> None:
    items = [payment(i) for i in range(9)]
    items[4] = payment(1, cancel_amount=100, cancel_history=[cancel(1, 100, BASE + 5)])  # imp 1 twice
    chunked = Spool(tmp_path, "c", chunk_items=2)
    whole = Spool(tmp_path, "w")
    with store.connect() as con:
        for i in range(0, 9, 1):
            chunked.add_page(page(items[i : i + 1]))
            whole.add_page(page(items[i : i + 1]))
            _ingest.stage_payments(con, chunked)  # stages the files finished so far
        assert len(chunked.staged_parts) == 4  # 8 items in 2-item files; the 9th is not finished yet
        assert _ingest.stage_payments(con, chunked, final=True) == 9
        a = con.execute("SELECT * EXCLUDE (raw), raw::VARCHAR FROM _sync_payments ORDER BY n").fetchall()
        assert _ingest.stage_payments(con, whole, final=True) == 9
        b = con.execute("SELECT * EXCLUDE (raw), raw::VARCHAR FROM _sync_payments ORDER BY n").fetchall()
    assert a == b
    assert [r[0] for r in a] == list(range(9))  # page numbers run across files
    assert list(tmp_path.glob("*.ndjson")) == []  # every staged file was removed
    # the merge over the parts keeps the latest copy of imp 1 (the refunded one) and its cancellation
    counts = ingest_payments(store, tmp_path, [page(items[:5]), page(items[5:])])
    assert counts["payments"] == TableCounts(8, 0)
    assert (
        store.query("SELECT cancel_amount FROM payments WHERE imp_uid = 'imp_000000000001'").iloc[0, 0] == 100
    )


def test_bad_item_in_a_later_chunk_is_quarantined_naming_endpoint_and_field(
    store: Store, tmp_path: Path
) -> None:
    spool = Spool(tmp_path, "c", chunk_items=2)
    for i in range(4):
        spool.add_page(page([payment(i)], endpoint=f"/payments/status/paid?page={i + 1}"))
    spool.add_page(page([payment(4), payment(5, amount="8900")], endpoint="/payments/status/paid?page=5"))
    with store.transaction() as con:
        _ingest.stage_payments(con, spool)  # staging while filling never raises for a bad item
        counts = _ingest.ingest_payments(con, spool, T1, stream="payments:paid")
    assert counts["payments"] == TableCounts(5, 0)
    assert counts["quarantine"] == TableCounts(1, 0)
    q = store.query("SELECT * FROM quarantine")
    assert q.iloc[0]["endpoint"] == "/payments/status/paid?page=5"
    assert q.iloc[0]["record_key"] == "imp_000000000005"
    assert q.iloc[0]["reason"].startswith("response.list[1].amount: expected a number")
    assert q.iloc[0]["stream"] == "payments:paid"
    spool.remove()
    assert list(tmp_path.glob("*.ndjson")) == []


def test_a_page_larger_than_duckdbs_default_object_size_is_read(store: Store, tmp_path: Path) -> None:
    # The read's maximum_object_size follows the spool's longest line (a 20 MB page here; default 16 MiB).
    big = "가" * 1_000_000  # 3 MB of UTF-8 per item
    items = [payment(i, custom_data=big) for i in range(7)]
    big_page = page(items)
    assert len(big_page.body) > 16 * 2**20
    spool = Spool(tmp_path, "big")
    spool.add_page(big_page)
    with store.transaction() as con:
        counts = _ingest.ingest_payments(con, spool, T1)
    assert counts["payments"] == TableCounts(7, 0)
    lengths = store.query("SELECT length(custom_data) AS n FROM payments")["n"].tolist()
    assert lengths == [1_000_000] * 7


@pytest.mark.parametrize(
    ("bad_index", "mutate", "field"),
    [
        (1, lambda p: p.pop("imp_uid"), "response.list[1].imp_uid"),
        (0, lambda p: p.update(amount="8900"), "response.list[0].amount"),
        (2, lambda p: p.update(amount=8900.12345), "response.list[2].amount"),
        (1, lambda p: p.update(status="done"), "response.list[1].status"),
        (0, lambda p: p.update(paid_at="2025-01-01"), "response.list[0].paid_at"),
        (0, lambda p: p.update(cancel_history={"amount": 1}), "response.list[0].cancel_history"),
        (
            2,
            lambda p: p.update(cancel_history=[cancel(1, 100, BASE), cancel(2, "100", BASE)]),  # type: ignore[arg-type]
            "response.list[2].cancel_history[1].amount",
        ),
    ],
)
def test_unreadable_item_is_quarantined_naming_field_and_the_rest_is_stored(
    store: Store, tmp_path: Path, bad_index: int, mutate: Any, field: str
) -> None:
    items = [payment(i) for i in range(3)]
    mutate(items[bad_index])
    good = page([payment(10)], "/payments/status/{payment_status}")
    bad = page(items, "/payments/status/{payment_status}")
    counts = ingest_payments(store, tmp_path, [good, bad])
    assert counts["payments"] == TableCounts(3, 0)
    assert counts["quarantine"] == TableCounts(1, 0)
    q = store.query("SELECT endpoint, reason, raw::VARCHAR AS raw FROM quarantine")
    assert len(q) == 1
    assert q.iloc[0]["endpoint"] == "/payments/status/{payment_status}"
    assert q.iloc[0]["reason"].startswith(field + ":"), q.iloc[0]["reason"]
    assert orjson.loads(q.iloc[0]["raw"]) == items[bad_index]
    stored = set(store.query("SELECT imp_uid FROM payments")["imp_uid"])
    assert stored == {payment(i)["imp_uid"] for i in (*range(3), 10) if i != bad_index}
    # read again: the same record is seen again, not added twice; fixed at PortOne: released
    assert ingest_payments(store, tmp_path, [bad])["quarantine"] == TableCounts(0, 1)
    if "imp_uid" in items[bad_index]:
        ingest_payments(store, tmp_path, [page([payment(bad_index)])])
        assert store.query("SELECT count(*) n FROM quarantine").iloc[0]["n"] == 0


def test_schema_allowed_values_are_stored_exactly(store: Store, tmp_path: Path) -> None:
    usd = payment(1, amount=9.99, cancel_amount=0.5, currency="USD", cancel_history=[cancel(1, 0.5, BASE)])
    odd = payment(2, sandbox=None, name=None, custom_data=12, card_number=None, cancel_amount=None)
    counts = ingest_payments(store, tmp_path, [page([usd, odd])])
    assert counts["quarantine"] == TableCounts(0, 0)
    with store.connect() as con:  # DECIMAL as Decimal (a DataFrame would make it a float)
        rows = con.execute(
            "SELECT amount, amount_exact, cancel_amount_exact, custom_data, sandbox "
            "FROM payments ORDER BY imp_uid"
        ).fetchall()
        cancels = con.execute("SELECT amount, amount_exact FROM payment_cancellations").fetchall()
    assert rows == [
        (None, Decimal("9.99"), Decimal("0.5"), None, False),
        (8900, Decimal(8900), 0, "12", False),
    ]
    assert cancels == [(None, Decimal("0.5"))]


def test_list_that_is_not_a_list_is_refused(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "x")
    with pytest.raises(MalformedResponseError) as info:
        spool.add_page(FakePage("/payments/status/{payment_status}", {"a": 1}, b"{}"))  # type: ignore[arg-type]
    assert info.value.field == "response.list"
    assert "/payments/status/{payment_status}" in str(info.value)


def test_schedules_merge_by_merchant_uid(store: Store, tmp_path: Path) -> None:
    spool = Spool(tmp_path, "s")
    spool.add_page(page([schedule(1), schedule(2)], "/subscribe/payments/schedule"))
    with store.transaction() as con:
        assert _ingest.ingest_schedules(con, spool, T1)["schedules"] == TableCounts(2, 0)
    executed = schedule(
        1, schedule_status="executed", payment_status="paid", imp_uid="imp_1", executed_at=BASE + 86400
    )
    spool = Spool(tmp_path, "s")
    spool.add_page(page([executed, schedule(2), schedule(3)], "/subscribe/payments/schedule"))
    with store.transaction() as con:
        assert _ingest.ingest_schedules(con, spool, T2)["schedules"] == TableCounts(1, 1)
    df = store.query("SELECT * FROM schedules ORDER BY merchant_uid")
    assert df["schedule_status"].tolist() == ["executed", "scheduled", "scheduled"]
    assert df.iloc[0]["payment_status"] == "paid"
    assert df.iloc[0]["schedule_at"].to_pydatetime() == from_unix(BASE + 86400)


def test_schedule_without_schedule_at_is_quarantined(store: Store, tmp_path: Path) -> None:
    spool = Spool(tmp_path, "s")
    spool.add_page(page([schedule(1, schedule_at=0), schedule(2)], "/subscribe/payments/schedule"))
    with store.transaction() as con:
        counts = _ingest.ingest_schedules(con, spool, T1)
    assert counts == {"schedules": TableCounts(1, 0), "quarantine": TableCounts(1, 0)}
    q = store.query("SELECT record_key, reason FROM quarantine")
    assert q.iloc[0]["record_key"] == "sched_1"
    assert q.iloc[0]["reason"].startswith("response.list[0].schedule_at:")


def key(cu: str, **over: Any) -> dict[str, Any]:
    k = {
        "customer_uid": cu,
        "pg_provider": "nice_v2",
        "pg_id": "MID",
        "sandbox": False,
        "card_name": "국민카드",
        "card_code": "381",
        "card_number": "457973*********1",
        "card_type": 0,
        "customer_name": "홍길동",
        "customer_tel": None,
        "customer_email": None,
        "inserted": BASE,
        "updated": BASE,
    }
    k.update(over)
    return k


def test_billing_keys_missing_are_marked_deleted_and_reissued_undeleted(store: Store, tmp_path: Path) -> None:
    def run(found: list[dict[str, Any]], missing: list[str], at: datetime) -> TableCounts:
        spool = Spool(tmp_path, "k")
        spool.add_items("/subscribe/customers", found)
        with store.transaction() as con:
            return _ingest.ingest_billing_keys(con, spool, missing, at)["billing_keys"]

    assert run([key("a"), key("b")], ["c"], T1) == TableCounts(3, 0)
    df = store.query("SELECT customer_uid, deleted, deleted_seen_at FROM billing_keys ORDER BY 1")
    assert df["deleted"].tolist() == [False, False, True]
    assert run([key("a")], ["b", "c"], T2) == TableCounts(0, 1)  # b deleted now; c already was
    df = store.query("SELECT customer_uid, deleted, deleted_seen_at FROM billing_keys ORDER BY 1")
    assert df["deleted"].tolist() == [False, True, True]
    assert df.iloc[2]["deleted_seen_at"].to_pydatetime() == T1  # first seen deleted, kept
    assert run([key("b", updated=BASE + 5)], [], T2) == TableCounts(0, 1)
    row = store.query("SELECT deleted, deleted_seen_at FROM billing_keys WHERE customer_uid = 'b'").iloc[0]
    assert not row["deleted"]


def test_card_type_as_string_and_super_billing_key_shape_are_read(store: Store, tmp_path: Path) -> None:
    sup = {
        "customer_uid": "s",
        "channelGroupId": "grp_1",
        "customer_name": "홍길동",
        "succeededChannels": [
            {
                "pg_provider": "tosspayments",
                "pg_id": "MIDT",
                "card_name": "현대카드",
                "card_number": "4*",
                "card_type": "1",
                "inserted": BASE,
                "updated": BASE + 9,
            },
        ],
        "failedChannels": [],
    }
    spool = Spool(tmp_path, "k")
    spool.add_items("/subscribe/customers", [key("a", card_type="0"), key("b", card_type=None), sup])
    with store.transaction() as con:
        counts = _ingest.ingest_billing_keys(con, spool, [], T1)
    assert counts == {"billing_keys": TableCounts(3, 0), "quarantine": TableCounts(0, 0)}
    df = store.query("SELECT * FROM billing_keys ORDER BY customer_uid")
    assert df.iloc[0]["card_type"] == 0
    assert pd.isna(df.iloc[1]["card_type"])
    assert df.iloc[2]["pg_provider"] == "tosspayments"
    assert df.iloc[2]["card_name"] == "현대카드"
    assert df.iloc[2]["card_type"] == 1
    assert df.iloc[2]["customer_name"] == "홍길동"
    assert df.iloc[2]["updated"].to_pydatetime() == from_unix(BASE + 9)


def test_fast_path_types_every_value_as_the_reference_path(store: Store, tmp_path: Path) -> None:
    """stage_typed (field texts, one parse) == stage_items + validate + build_typed on awkward values."""
    items = [
        payment(1, name='따옴표 "인용" \\ 역슬래시', buyer_name="줄\n바꿈\t탭", amount=8900.0),
        payment(2, custom_data=None, card_name=None, cancel_amount=0, sandbox=True, paid_at=BASE),
        payment(
            3, status="cancelled", cancelled_at=BASE + 9, cancel_amount=1, fail_reason="é\u00e9\U0001f600"
        ),
        payment(4, amount=0, currency=None, started_at=0, buyer_email=""),
        payment(5, amount=9.99, cancel_amount=None, currency="USD", custom_data=12, pay_method=None),
    ]
    del items[3]["customer_uid"]  # a missing optional field is NULL, as null is
    spool, ref_spool = Spool(tmp_path, "f"), Spool(tmp_path, "r")  # staging consumes a spool's files
    spool.add_page(page(items))
    ref_spool.add_page(page(items))
    with store.transaction() as con:
        _ingest.stage_typed(con, spool, _ingest.PAYMENTS, "_fast")
        _ingest.stage_items(con, ref_spool, "_ref_items")
        _ingest.validate(con, "_ref_items", _ingest.PAYMENTS.cols, spool.endpoints)
        _ingest.build_typed(con, _ingest.PAYMENTS, "_ref_items", "_ref")
        names = ", ".join(["n", "idx", *_ingest.PAYMENTS.columns, "raw::VARCHAR"])
        fast = con.execute(f"SELECT {names} FROM _fast ORDER BY idx").fetchall()
        ref = con.execute(f"SELECT {names} FROM _ref ORDER BY idx").fetchall()
    assert len(fast) == 5
    assert fast == ref
    by_name = dict(zip(_ingest.PAYMENTS.columns, fast[0][2:], strict=False))
    assert by_name["name"] == '따옴표 "인용" \\ 역슬래시'
    assert by_name["amount"] == 8900
    usd = dict(zip(_ingest.PAYMENTS.columns, fast[4][2:], strict=False))
    assert (usd["amount"], usd["amount_exact"], usd["custom_data"]) == (None, Decimal("9.99"), "12")
