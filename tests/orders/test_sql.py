"""SQL sources on real PostgreSQL and MariaDB: loads match the DataFrame load; writes touch only unpaid rows.

URLs come from PORTONE_RECON_TEST_PG_URL / PORTONE_RECON_TEST_MYSQL_URL (set by .ci/run). Without them these
tests skip, unless PORTONE_RECON_REQUIRE_SQL=1, when they fail. Every test uses its own table and drops it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pandas as pd
import pytest

from portone_recon._time import KST
from portone_recon.errors import SourceError
from portone_recon.orders import ColumnMapping, OrdersWriter, load_orders, read_source
from portone_recon.store import Store

from .conftest import KOREAN_MAPPING

sa = pytest.importorskip("sqlalchemy")

pytestmark = pytest.mark.sql


@pytest.fixture
def url(sql_url: str) -> str:
    return sql_url


@pytest.fixture
def orders_table(url: str, korean_orders: pd.DataFrame) -> Iterator[str]:
    """The Korean orders in a fresh table with typed columns (Korean column names), dropped afterwards."""
    name = f"pr_orders_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(url)
    meta = sa.MetaData()
    is_pg = engine.dialect.name == "postgresql"
    table = sa.Table(
        name,
        meta,
        sa.Column("주문번호", sa.String(40), primary_key=True),
        sa.Column("고객번호", sa.String(40)),
        sa.Column("결제금액", sa.Numeric(12, 0) if is_pg else sa.BigInteger()),
        sa.Column("주문상태", sa.String(20)),
        sa.Column("결제번호", sa.String(40)),
        sa.Column("결제일시", sa.DateTime(timezone=is_pg)),
        sa.Column("환불금액", sa.Integer()),
    )
    try:
        meta.create_all(engine)
        rows = []
        for r in korean_orders.to_dict("records"):
            paid = r["결제일시"]
            rows.append(
                {
                    "주문번호": r["주문번호"],
                    "고객번호": r["고객번호"],
                    "결제금액": int(str(r["결제금액"]).replace(",", "")),
                    "주문상태": r["주문상태"],
                    "결제번호": r["결제번호"] or None,
                    "결제일시": _db_time(pd.Timestamp(paid).to_pydatetime(), is_pg) if paid else None,
                    "환불금액": int(r["환불금액"]) if r["환불금액"] else None,
                }
            )
        with engine.begin() as con:
            con.execute(table.insert(), rows)
        yield name
    finally:
        meta.drop_all(engine)
        engine.dispose()


def _db_time(value: datetime, is_pg: bool) -> datetime:
    aware = value.replace(tzinfo=KST) if value.tzinfo is None else value
    return aware if is_pg else aware.astimezone(KST).replace(tzinfo=None)  # MariaDB DATETIME: KST wall time


def _rows(store: Store) -> list[tuple[Any, ...]]:
    with store.connect(read_only=True) as con:
        return con.execute(
            "SELECT merchant_uid, customer_uid, amount, currency, status, status_raw, imp_uid, paid_at, "
            "refunded_amount FROM orders ORDER BY merchant_uid"
        ).fetchall()


def _fetch(url: str, table: str) -> dict[str, dict[str, Any]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as con:
            t = sa.Table(table, sa.MetaData(), autoload_with=con)
            return {r._mapping["주문번호"]: dict(r._mapping) for r in con.execute(sa.select(t))}
    finally:
        engine.dispose()


def test_load_from_table_matches_the_dataframe_load(
    url: str, orders_table: str, korean_orders: pd.DataFrame, tmp_path: Any
) -> None:
    from_df = Store(tmp_path / "df.duckdb")
    load_orders(from_df, korean_orders, KOREAN_MAPPING)
    from_sql = Store(tmp_path / "sql.duckdb")
    report = load_orders(from_sql, url, KOREAN_MAPPING, table=orders_table)
    assert report.rows_loaded == 5
    assert _rows(from_sql) == _rows(from_df)
    loads = from_sql.query("SELECT kind, location, table_name, source FROM source_loads")
    assert loads["kind"].tolist() == ["sql"]
    assert loads["table_name"].tolist() == [orders_table]
    assert loads["source"].iloc[0].endswith(f"#table={orders_table}")


def test_load_from_query(url: str, orders_table: str, korean_orders: pd.DataFrame, tmp_path: Any) -> None:
    store = Store(tmp_path / "q.duckdb")
    query = f"SELECT * FROM {orders_table} WHERE 결제금액 < 100000"
    report = load_orders(store, url, KOREAN_MAPPING, query=query)
    assert report.rows_loaded == 4
    assert store.query("SELECT query FROM source_loads")["query"].tolist() == [query]


def test_password_is_never_recorded_or_shown(url: str, orders_table: str, tmp_path: Any) -> None:
    parsed = sa.engine.make_url(url)
    with_password = parsed.set(password="s3cret-pw").render_as_string(hide_password=False)
    store = Store(tmp_path / "pw.duckdb")
    if parsed.get_backend_name() != "postgresql":
        # The local MariaDB refuses a wrong password: the error must not echo it.
        with pytest.raises(SourceError, match="Access denied") as info:
            load_orders(store, with_password, KOREAN_MAPPING, table=orders_table)
        assert "s3cret-pw" not in str(info.value)
        assert store.counts()["orders"] == 0
        return
    report = load_orders(store, with_password, KOREAN_MAPPING, table=orders_table)  # trust auth ignores it
    dumped = store.query("SELECT * FROM source_loads").to_string() + repr(report)
    dumped += store.query("SELECT DISTINCT source FROM orders").to_string()
    assert "s3cret-pw" not in dumped
    assert "postgres@" in store.query("SELECT location FROM source_loads")["location"].iloc[0]


def test_writer_changes_only_unpaid_rows(url: str, orders_table: str) -> None:
    when = datetime(2026, 11, 2, 0, 30, tzinfo=KST)
    with OrdersWriter(url, orders_table, KOREAN_MAPPING) as writer:
        # 주문-0002 is 결제대기 (pending) 19,900: the only one that may change.
        assert writer.mark_paid("주문-0002", imp_uid="imp_new", paid_at=when, amount=19900) == 1
        assert writer.mark_paid("주문-0002", imp_uid="imp_again", paid_at=when, amount=19900) == 0  # now paid
        assert writer.mark_paid("주문-0001", imp_uid="imp_x", paid_at=when, amount=9900) == 0  # was paid
        assert writer.mark_paid("주문-0005", imp_uid="imp_x", paid_at=when, amount=0) == 0  # cancelled
        assert (
            writer.mark_paid("주문-0004", imp_uid="imp_x", paid_at=when, amount=9999) == 0
        )  # amount differs
        assert writer.mark_paid("없는주문", imp_uid="imp_x", paid_at=when, amount=1) == 0
    rows = _fetch(url, orders_table)
    changed = rows["주문-0002"]
    assert changed["주문상태"] == "결제완료"  # the merchant's own word for paid
    assert changed["결제번호"] == "imp_new"
    stored = changed["결제일시"]
    stored = stored.replace(tzinfo=KST) if stored.tzinfo is None else stored
    assert stored == when
    assert rows["주문-0001"]["결제번호"] == "imp_001"
    assert rows["주문-0004"]["주문상태"] == "결제실패"
    assert rows["주문-0005"]["주문상태"] == "주문취소"


def test_mark_paid_many_is_one_transaction(url: str, orders_table: str) -> None:
    writer = OrdersWriter(url, orders_table, ColumnMapping.from_dict(KOREAN_MAPPING))
    good = {
        "merchant_uid": "주문-0002",
        "imp_uid": "imp_a",
        "paid_at": "2026-11-02T00:30:00+09:00",
        "amount": 19900,
    }
    failed_order = {"merchant_uid": "주문-0004", "imp_uid": "imp_b", "paid_at": "2026-11-02", "amount": 9900}
    bad = {"merchant_uid": "주문-0001", "imp_uid": "imp_c", "paid_at": "언제", "amount": 9900}
    with pytest.raises(SourceError, match="row 3"):
        writer.mark_paid_many([good, failed_order, bad])
    rows = _fetch(url, orders_table)
    assert rows["주문-0002"]["주문상태"] == "결제대기"  # rolled back with the bad row
    assert writer.mark_paid_many(pd.DataFrame([good, failed_order])) == 2
    rows = _fetch(url, orders_table)
    assert {rows[k]["주문상태"] for k in ("주문-0002", "주문-0004")} == {"결제완료"}
    writer.close()


def test_writer_from_store_finds_the_loaded_source(url: str, orders_table: str, tmp_path: Any) -> None:
    store = Store(tmp_path / "w.duckdb")
    load_orders(store, url, KOREAN_MAPPING, table=orders_table)
    writer = OrdersWriter.from_store(store)
    assert writer.table == orders_table
    assert writer.mapping.raw_paid_value() == "결제완료"
    assert (
        writer.mark_paid("주문-0002", imp_uid="imp_s", paid_at="2026-11-02T09:00:00+09:00", amount=19900) == 1
    )
    writer.close()


def test_missing_table_is_named(url: str) -> None:
    with pytest.raises(SourceError, match="no such table 'pr_missing_zz'"):
        read_source(url, table="pr_missing_zz")


def test_cli_load_orders_from_a_sql_table(
    url: str,
    orders_table: str,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from portone_recon import cli

    monkeypatch.setattr(cli, "COMMAND_MODULES", ("portone_recon.orders.commands",))
    mfile = tmp_path / "mapping.json"
    mfile.write_text(json.dumps(KOREAN_MAPPING, ensure_ascii=False), encoding="utf-8")
    db = tmp_path / "cli.duckdb"
    argv = ["load-orders", url, "--table", orders_table, "--mapping", str(mfile), "--db", str(db)]
    assert cli.main(argv) == 0
    assert "loaded 5 orders" in capsys.readouterr().out
    assert Store(db).counts()["orders"] == 5


def test_writer_on_sqlite_with_text_paid_at(tmp_path: Any) -> None:
    """No server needed: a text paid_at column gets ISO 8601 with the KST offset."""
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as con:
        con.execute(
            sa.text("CREATE TABLE orders (id TEXT PRIMARY KEY, st TEXT, amt INTEGER, tx TEXT, at TEXT)")
        )
        con.execute(
            sa.text("INSERT INTO orders VALUES ('o1', 'W', 5000, NULL, NULL), ('o2', 'P', 5000, 'i', 'x')")
        )
    engine.dispose()
    mapping = {
        "columns": {"merchant_uid": "id", "status": "st", "amount": "amt", "imp_uid": "tx", "paid_at": "at"},
        "statuses": {"W": "pending", "P": "paid"},
    }
    with OrdersWriter(url, "orders", mapping) as writer:
        rows = [
            {"merchant_uid": "o1", "imp_uid": "imp_9", "paid_at": "2026-10-31T15:30:00Z", "amount": 5000},
            {"merchant_uid": "o2", "imp_uid": "imp_8", "paid_at": "2026-10-31T15:30:00Z", "amount": 5000},
        ]
        assert writer.mark_paid_many(rows) == 1
    got = read_source(url, table="orders").set_index("id")
    assert got.loc["o1", "st"] == "P"
    assert got.loc["o1", "tx"] == "imp_9"
    assert got.loc["o1", "at"] == "2026-11-01T00:30:00+09:00"
    assert got.loc["o2", "tx"] == "i"
