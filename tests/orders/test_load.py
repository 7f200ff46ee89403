"""load_orders / load_subscriptions: every file source, validation, atomic snapshot replacement."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from portone_recon import cli
from portone_recon._time import KST
from portone_recon.errors import SourceError, StoreError, ValidationError
from portone_recon.orders import (
    ORDER_COLUMNS,
    SUBSCRIPTION_COLUMNS,
    ColumnMapping,
    LoadReport,
    load_orders,
    load_subscriptions,
    read_source,
)
from portone_recon.orders import load as load_module
from portone_recon.store import Store

from .conftest import KOREAN_MAPPING

KST_0030 = datetime(2026, 11, 1, 0, 30, tzinfo=KST)
EXPECTED = [
    ("주문-0001", "고객_김철수", 9900, "KRW", "paid", "결제완료", "imp_001", KST_0030, 0),
    ("주문-0002", "고객_이영희", 19900, "KRW", "pending", "결제대기", None, None, 0),
    ("주문-0003", "고객_박민수", 1000000, "KRW", "refunded", "환불완료", "imp_003", KST_0030, 1000000),
    ("주문-0004", "고객_김철수", 9900, "KRW", "failed", "결제실패", None, None, 0),
    ("주문-0005", "고객_최지우", 0, "KRW", "cancelled", "주문취소", None, None, 0),
]


def orders_rows(store: Store) -> list[tuple[Any, ...]]:
    with store.connect(read_only=True) as con:
        return con.execute(
            "SELECT merchant_uid, customer_uid, amount, currency, status, status_raw, imp_uid, paid_at, "
            "refunded_amount FROM orders ORDER BY merchant_uid"
        ).fetchall()


def write_csv(frame: pd.DataFrame, path: Path, encoding: str) -> Path:
    path.write_bytes(frame.to_csv(index=False).encode(encoding))
    return path


# -- sources ---------------------------------------------------------------------------------------


def test_cp949_csv_with_korean_names_and_statuses_loads_exactly(
    store: Store, tmp_path: Path, korean_orders: pd.DataFrame, mapping: ColumnMapping
) -> None:
    path = write_csv(korean_orders, tmp_path / "주문내역.csv", "cp949")
    with pytest.raises(UnicodeDecodeError):
        path.read_bytes().decode("utf-8")  # really CP949, as Korean Excel writes it
    report = load_orders(store, path, mapping)
    assert (report.rows_read, report.rows_loaded, report.replaced_rows) == (5, 5, 0)
    assert orders_rows(store) == EXPECTED
    loads = store.query("SELECT * FROM source_loads")
    assert loads["kind"].tolist() == ["csv"]
    assert loads["encoding"].tolist() == ["cp949"]
    assert loads["location"].iloc[0] == str(path.resolve())
    assert json.loads(loads["mapping"].iloc[0])["statuses"]["결제완료"] == "paid"


def test_euc_kr_is_read_through_cp949(tmp_path: Path, korean_orders: pd.DataFrame) -> None:
    path = write_csv(korean_orders, tmp_path / "euc.csv", "euc-kr")
    assert read_source(path).equals(korean_orders)


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-8"])
def test_utf8_csv_with_and_without_bom(
    store: Store, tmp_path: Path, korean_orders: pd.DataFrame, mapping: ColumnMapping, encoding: str
) -> None:
    path = write_csv(korean_orders, tmp_path / "orders.csv", encoding)
    raw = read_source(path)
    assert next(iter(raw.columns)) == "주문번호"  # no BOM glued to the first header
    load_orders(store, path, mapping)
    assert orders_rows(store) == EXPECTED


def test_explicit_encoding_wins(tmp_path: Path, korean_orders: pd.DataFrame) -> None:
    path = write_csv(korean_orders, tmp_path / "orders.csv", "cp949")
    with pytest.raises(SourceError, match="cannot decode as utf-8"):
        read_source(path, encoding="utf-8")


def test_xlsx_loads_like_the_dataframe(
    store: Store, tmp_path: Path, korean_orders: pd.DataFrame, mapping: ColumnMapping
) -> None:
    typed = korean_orders.copy()
    typed["결제금액"] = [9900, 19900, 1000000, 9900, 0]  # Excel keeps numbers as numbers
    typed["결제일시"] = [datetime(2026, 11, 1, 0, 30), None, datetime(2026, 11, 1, 0, 30), None, None]
    path = tmp_path / "orders.xlsx"
    typed.to_excel(path, index=False, sheet_name="주문")
    load_orders(store, path, mapping, sheet="주문")
    assert orders_rows(store) == EXPECTED


def test_parquet_loads_like_the_dataframe(
    store: Store, tmp_path: Path, korean_orders: pd.DataFrame, mapping: ColumnMapping
) -> None:
    path = tmp_path / "orders.parquet"
    korean_orders.to_parquet(path)
    load_orders(store, path, mapping)
    assert orders_rows(store) == EXPECTED
    assert store.query("SELECT kind FROM source_loads")["kind"].tolist() == ["parquet"]


def test_dataframe_with_typed_columns_and_naive_datetimes_means_seoul(store: Store) -> None:
    frame = pd.DataFrame(
        {
            "merchant_uid": [1001, 1002],  # numeric ids become text without ".0"
            "customer_uid": ["c1", "c2"],
            "amount": [15000.0, 30000.0],
            "status": ["paid", "paid"],
            "imp_uid": ["imp_a", "imp_b"],
            "paid_at": pd.to_datetime(["2026-11-01 00:30:00", "2026-11-30 23:59:59"]),
            "refunded_amount": [0, 0],
            "currency": ["krw", None],
        }
    )
    report = load_orders(store, frame, source_name="shop-db-export")
    assert report.source == "shop-db-export"
    got = store.query("SELECT merchant_uid, amount, currency, paid_at::DATE AS d FROM orders ORDER BY 1")
    assert got["merchant_uid"].tolist() == ["1001", "1002"]
    assert got["amount"].tolist() == [15000, 30000]
    assert got["currency"].tolist() == ["KRW", "KRW"]
    assert [d.date() for d in got["d"]] == [date(2026, 11, 1), date(2026, 11, 30)]


@pytest.mark.parametrize(
    "paid_at",
    ["2026-11-01 00:30:00", "2026-11-01T00:30:00+09:00", "2026-10-31T15:30:00Z", "2026-10-31T15:30+00:00"],
)
def test_0030_kst_paid_at_lands_on_its_kst_date(store: Store, paid_at: str) -> None:
    frame = pd.DataFrame(
        {
            "merchant_uid": ["m1"],
            "customer_uid": ["c1"],
            "amount": ["100"],
            "status": ["paid"],
            "paid_at": [paid_at],
        }
    )
    load_orders(store, frame)
    with store.connect() as con:
        row = con.execute("SELECT paid_at::DATE, strftime(paid_at, '%H:%M') FROM orders").fetchone()
    assert row == (date(2026, 11, 1), "00:30")


def test_canonical_cli_file_format_needs_no_mapping(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_text(
        ",".join(ORDER_COLUMNS) + "\n"
        "m-1,c-1,9900,paid,imp_1,2026-11-01T00:30:00+09:00,0\n"
        "m-2,c-2,9900,pending,,,\n",
        encoding="utf-8",
    )
    assert load_orders(store, path).rows_loaded == 2
    assert store.query("SELECT status, refunded_amount FROM orders ORDER BY 1")[
        "refunded_amount"
    ].tolist() == [0, 0]


# -- validation ------------------------------------------------------------------------------------


def test_three_bad_rows_are_refused_by_row_and_nothing_is_written(
    store: Store, tmp_path: Path, korean_orders: pd.DataFrame, mapping: ColumnMapping
) -> None:
    bad = korean_orders.copy()
    bad.loc[1, "결제금액"] = "19900.5"  # row 2: not whole won
    bad.loc[3, "결제일시"] = "어제 밤"  # row 4: not a date
    bad.loc[4, "주문상태"] = "배송중"  # row 5: unknown status
    path = write_csv(bad, tmp_path / "bad.csv", "cp949")
    with pytest.raises(ValidationError) as info:
        load_orders(store, path, mapping)
    err = info.value
    assert [(p.row, p.column) for p in err.problems] == [(2, "amount"), (4, "paid_at"), (5, "status")]
    assert err.source.startswith("csv:") and "bad.csv" in err.source
    text = str(err)
    assert "row 2, column 'amount'" in text and "'19900.5'" in text
    assert "row 4, column 'paid_at'" in text and "row 5, column 'status'" in text and "'배송중'" in text
    assert "nothing loaded" in text
    assert store.counts()["orders"] == 0
    assert len(store.query("SELECT * FROM source_loads")) == 0


def test_missing_column_is_named_with_the_mapped_name(store: Store, korean_orders: pd.DataFrame) -> None:
    with pytest.raises(ValidationError) as info:
        load_orders(store, korean_orders.drop(columns=["결제금액"]), KOREAN_MAPPING)
    [problem] = info.value.problems
    assert problem.column == "amount" and problem.row is None
    assert "'결제금액'" in problem.problem
    assert "the source has: 주문번호, 고객번호" in problem.problem


def test_duplicates_negatives_and_the_ten_row_limit(store: Store) -> None:
    n = 14
    frame = pd.DataFrame(
        {
            "merchant_uid": ["dup"] * 2 + [f"m{i}" for i in range(n - 2)],
            "customer_uid": ["c"] * n,
            "amount": ["-1"] * n,
            "status": ["paid"] * n,
        }
    )
    with pytest.raises(ValidationError) as info:
        load_orders(store, frame)
    err = info.value
    assert (2, "merchant_uid") in [(p.row, p.column) for p in err.problems]
    assert "first in row 1" in str(err)
    assert len(err.problems) == n + 1
    assert "and 5 more" in str(err)
    assert sum(1 for line in str(err).splitlines() if line.startswith("  - ")) == 10


def test_refund_bigger_than_amount_and_bad_currency(store: Store) -> None:
    frame = pd.DataFrame(
        {
            "merchant_uid": ["a", "b"],
            "customer_uid": ["c", "c"],
            "amount": [100, 100],
            "status": ["refunded", "paid"],
            "refunded_amount": [101, 0],
            "currency": ["KRW", "원화"],
        }
    )
    with pytest.raises(ValidationError) as info:
        load_orders(store, frame)
    assert [(p.row, p.column) for p in info.value.problems] == [(1, "refunded_amount"), (2, "currency")]


def test_same_merchant_uid_from_another_source_is_refused(store: Store, korean_orders: pd.DataFrame) -> None:
    load_orders(store, korean_orders, KOREAN_MAPPING, source_name="export-1127")
    with pytest.raises(ValidationError, match="already loaded from source 'export-1127'") as info:
        load_orders(store, korean_orders.iloc[[2]], KOREAN_MAPPING, source_name="export-1128")
    assert info.value.problems[0].row == 1
    assert store.counts()["orders"] == 5


# -- snapshots -------------------------------------------------------------------------------------


def test_reload_replaces_the_snapshot(
    store: Store, korean_orders: pd.DataFrame, mapping: ColumnMapping
) -> None:
    load_orders(store, korean_orders, mapping)
    first_loaded_at = store.query("SELECT max(loaded_at) AS t FROM orders")["t"].iloc[0]
    newer = korean_orders.iloc[[0, 1, 1]].copy().reset_index(drop=True)
    newer.loc[1, "주문상태"] = "결제완료"  # an order that changed
    newer.loc[2, "주문번호"] = "주문-0006"  # a new order; 0003..0005 are gone
    report = load_orders(store, newer, mapping)
    assert (report.rows_read, report.rows_loaded, report.replaced_rows) == (3, 3, 5)
    got = store.query("SELECT merchant_uid, status, loaded_at FROM orders ORDER BY 1")
    assert got[["merchant_uid", "status"]].values.tolist() == [
        ["주문-0001", "paid"],
        ["주문-0002", "paid"],
        ["주문-0006", "pending"],
    ]
    assert (got["loaded_at"] > first_loaded_at).all()  # every row belongs to the new snapshot
    loads = store.query("SELECT rows, rows_read, replaced_rows FROM source_loads")
    assert loads.values.tolist() == [[3, 3, 5]]


def test_an_empty_source_does_not_wipe_the_snapshot(
    store: Store, tmp_path: Path, korean_orders: pd.DataFrame, mapping: ColumnMapping
) -> None:
    load_orders(store, korean_orders, mapping, source_name="daily")
    empty = tmp_path / "empty.csv"
    empty.write_text(",".join(KOREAN_MAPPING["columns"].values()) + "\n", encoding="utf-8")
    with pytest.raises(SourceError, match="no rows"):
        load_orders(store, empty, mapping, source_name="daily")
    assert store.counts()["orders"] == 5
    report = load_orders(store, empty, mapping, source_name="daily", allow_empty=True)
    assert (report.rows_loaded, report.replaced_rows) == (0, 5)
    assert store.counts()["orders"] == 0


def test_failing_reload_leaves_the_old_snapshot_intact(
    store: Store, korean_orders: pd.DataFrame, mapping: ColumnMapping, monkeypatch: pytest.MonkeyPatch
) -> None:
    load_orders(store, korean_orders, mapping)
    before = orders_rows(store)
    loads_before = store.query("SELECT * FROM source_loads")
    real_insert = load_module._insert

    def insert_then_fail(*args: Any) -> None:
        real_insert(*args)  # the old rows are deleted and the new ones written by now...
        raise OSError("disk full")  # ...and then the process fails

    monkeypatch.setattr(load_module, "_insert", insert_then_fail)
    with pytest.raises(OSError, match="disk full"):
        load_orders(store, korean_orders.iloc[:2], mapping)
    assert orders_rows(store) == before
    pd.testing.assert_frame_equal(store.query("SELECT * FROM source_loads"), loads_before)


def test_rows_read_must_equal_rows_loaded(
    store: Store, korean_orders: pd.DataFrame, mapping: ColumnMapping, monkeypatch: pytest.MonkeyPatch
) -> None:
    load_orders(store, korean_orders, mapping)

    def insert_none(*args: Any) -> None:  # a write that silently drops rows
        return None

    monkeypatch.setattr(load_module, "_insert", insert_none)
    with pytest.raises(StoreError, match="read 3 rows but 5 landed"):
        load_orders(store, korean_orders.iloc[:3], mapping)
    assert store.counts()["orders"] == 5


def test_subscriptions_load_with_mapping_and_defaults(store: Store) -> None:
    frame = pd.DataFrame(
        {
            "회원": ["고객_김철수", "고객_이영희", "고객_박민수"],
            "상태": ["구독중", "해지", "구독중"],
            "금액": ["9,900", "19900", "9900"],
            "interval_months": ["", "1", "3"],
            "anchor_day": ["", "31", ""],
            "started_at": ["2026-01-31 00:30:00", "2026-03-31", "2026-02-15T10:00:00+09:00"],
            "cancelled_at": ["", "2026-10-01T09:00:00+09:00", ""],
        }
    )
    mapping = {
        "columns": {"customer_uid": "회원", "status": "상태", "amount": "금액"},
        "statuses": {"구독중": "active", "해지": "cancelled"},
    }
    report = load_subscriptions(store, frame, mapping)
    assert report.target == "subscriptions" and report.rows_loaded == 3
    got = store.query(
        "SELECT customer_uid, status, status_raw, amount, interval_months, anchor_day, "
        "cancelled_at IS NULL AS open FROM subscriptions ORDER BY customer_uid"
    )
    assert got.values.tolist() == [
        ["고객_김철수", "active", "구독중", 9900, 1, 31, True],
        ["고객_박민수", "active", "구독중", 9900, 3, 15, True],
        ["고객_이영희", "cancelled", "해지", 19900, 1, 31, False],
    ]
    assert list(SUBSCRIPTION_COLUMNS)[:2] == ["customer_uid", "status"]


def test_subscription_problems_are_named(store: Store) -> None:
    frame = pd.DataFrame(
        {
            "customer_uid": ["a", "a", "b"],
            "status": ["active", "on_hold", "active"],
            "amount": [100, 100, 100],
            "interval_months": [1, 0, 1],
            "anchor_day": [32, 1, None],
        }
    )
    with pytest.raises(ValidationError) as info:
        load_subscriptions(store, frame)
    assert [(p.row, p.column) for p in info.value.problems] == [
        (1, "anchor_day"),
        (2, "customer_uid"),
        (2, "status"),
        (2, "interval_months"),
        (3, "anchor_day"),
    ]


# -- results and CLI -------------------------------------------------------------------------------


@pytest.fixture
def main(monkeypatch: pytest.MonkeyPatch) -> Any:
    """cli.main with only this area's commands (the other areas register theirs on their own)."""
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("portone_recon.orders.commands",))
    return cli.main


def test_load_report_is_notebook_friendly(store: Store, korean_orders: pd.DataFrame) -> None:
    report = load_orders(store, korean_orders, KOREAN_MAPPING, source_name="x")
    assert isinstance(report, LoadReport)
    assert repr(report).startswith("LoadReport(orders: 5 of 5 rows loaded from x, replaced 0,")
    assert "\n" not in repr(report)
    d = report.to_dict()
    assert set(d) == {"target", "source", "rows_read", "rows_loaded", "replaced_rows", "seconds", "warnings"}
    assert "<table>" in report._repr_html_()
    with pytest.raises(AttributeError):
        report.rows_loaded = 1  # type: ignore[misc]


def test_cli_load_orders_with_mapping_file(
    main: Any, tmp_path: Path, korean_orders: pd.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = write_csv(korean_orders, tmp_path / "orders.csv", "cp949")
    mfile = tmp_path / "mapping.toml"
    mfile.write_text(
        "[columns]\n"
        + "".join(f'{k} = "{v}"\n' for k, v in KOREAN_MAPPING["columns"].items())
        + "[statuses]\n"
        + "".join(f'"{k}" = "{v}"\n' for k, v in KOREAN_MAPPING["statuses"].items()),
        encoding="utf-8",
    )
    db = tmp_path / "cli.duckdb"
    assert main(["load-orders", str(csv), "--mapping", str(mfile), "--db", str(db)]) == 0
    assert "loaded 5 orders" in capsys.readouterr().out
    assert orders_rows(Store(db)) == EXPECTED


def test_cli_refuses_bad_rows_with_exit_2(
    main: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = tmp_path / "orders.csv"
    csv.write_text("merchant_uid,customer_uid,amount,status\nm1,c1,abc,paid\n", encoding="utf-8")
    db = tmp_path / "cli.duckdb"
    assert main(["load-orders", str(csv), "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert "row 1, column 'amount'" in err
    assert Store(db).counts()["orders"] == 0


def test_cli_db_defaults_to_settings(
    main: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = tmp_path / "subs.csv"
    csv.write_text("customer_uid,status,amount,anchor_day\nc1,active,9900,5\n", encoding="utf-8")
    monkeypatch.setenv("PORTONE_RECON_DB", str(tmp_path / "env.duckdb"))
    monkeypatch.chdir(tmp_path)
    assert main(["load-subscriptions", str(csv)]) == 0
    assert "loaded 1 subscriptions" in capsys.readouterr().out
    assert Store(tmp_path / "env.duckdb").counts()["subscriptions"] == 1


def test_subscriptions_with_ids_plans_trials_and_pauses_load(store: Store) -> None:
    frame = pd.DataFrame(
        {
            "구독번호": ["s-1", "s-2", None],
            "customer_uid": ["c1", "c1", "c2"],
            "상품": ["basic", "music", "basic"],
            "status": ["체험중", "일시정지", "active"],
            "amount": [9900, 4900, 99000],
            "currency": ["KRW", "KRW", "USD"],
            "interval_months": [1, 1, 12],
            "anchor_day": [5, 5, 20],
            "trial_ends_at": ["2026-12-05T00:00:00+09:00", None, None],
        }
    )
    mapping = {
        "columns": {"subscription_id": "구독번호", "plan": "상품"},
        "statuses": {"체험중": "trialing", "일시정지": "paused"},
    }
    load_subscriptions(store, frame, mapping=mapping, source_name="subs", progress=False)
    got = store.query(
        "SELECT subscription_id, customer_uid, plan, status, currency, interval_months, "
        "trial_ends_at IS NOT NULL AS trial FROM subscriptions ORDER BY subscription_id"
    )
    assert got.values.tolist() == [
        ["c2", "c2", "basic", "active", "USD", 12, False],  # no id: the customer_uid
        ["s-1", "c1", "basic", "trialing", "KRW", 1, True],
        ["s-2", "c1", "music", "paused", "KRW", 1, False],
    ]


def test_a_trial_without_its_end_and_a_repeated_subscription_id_are_named(store: Store) -> None:
    frame = pd.DataFrame(
        {
            "subscription_id": ["s-1", "s-1"],
            "customer_uid": ["c1", "c2"],
            "status": ["trialing", "active"],
            "amount": [9900, 9900],
            "anchor_day": [5, 5],
        }
    )
    with pytest.raises(ValidationError) as info:
        load_subscriptions(store, frame, source_name="subs", progress=False)
    problems = [(p.row, p.column) for p in info.value.problems]
    assert (1, "trial_ends_at") in problems and (2, "subscription_id") in problems


def test_orders_carry_their_subscription_and_order_time(store: Store) -> None:
    frame = pd.DataFrame(
        {
            "merchant_uid": ["o1", "o2"],
            "customer_uid": ["c1", "c1"],
            "amount": [9900, 1000],
            "status": ["paid", "paid"],
            "subscription_id": ["s-1", None],
            "ordered_at": ["2026-11-01T09:00:00+09:00", "2026-11-02T09:00:00+09:00"],
        }
    )
    load_orders(store, frame, source_name="orders", progress=False)
    got = store.query(
        "SELECT merchant_uid, coalesce(subscription_id, '-'), ordered_at IS NOT NULL FROM orders ORDER BY 1"
    )
    assert got.values.tolist() == [["o1", "s-1", True], ["o2", "-", True]]
