"""ColumnMapping and the source readers, without a database server."""

from __future__ import annotations

import codecs
import json
import sys
from pathlib import Path

import pandas as pd
import pytest

from portone_recon.errors import SourceError
from portone_recon.orders import ColumnMapping, OrdersWriter, load_orders, read_source
from portone_recon.orders.sources import describe, detect_encoding, safe_url
from portone_recon.store import Store

from .conftest import KOREAN_MAPPING

# -- mapping ---------------------------------------------------------------------------------------


def test_mapping_from_json_and_toml_files_agree(tmp_path: Path) -> None:
    jfile = tmp_path / "m.json"
    jfile.write_text(json.dumps(KOREAN_MAPPING, ensure_ascii=False), encoding="utf-8")
    tfile = tmp_path / "m.toml"
    tfile.write_text(
        "[columns]\n"
        + "".join(f'{k} = "{v}"\n' for k, v in KOREAN_MAPPING["columns"].items())
        + "[statuses]\n"
        + "".join(f'"{k}" = "{v}"\n' for k, v in KOREAN_MAPPING["statuses"].items()),
        encoding="utf-8",
    )
    from_json = ColumnMapping.from_file(jfile)
    assert from_json == ColumnMapping.from_file(tfile) == ColumnMapping.coerce(KOREAN_MAPPING)
    assert from_json.source_column("amount") == "결제금액"
    assert from_json.source_column("currency") == "currency"
    assert from_json.canonical_status(" 결제완료 ") == "paid"
    assert from_json.canonical_status("paid") == "paid"
    assert from_json.canonical_status("배송중") is None
    assert from_json.raw_paid_value() == "결제완료"
    assert from_json.raw_statuses("pending") == ["결제대기", "pending"]
    assert ColumnMapping.coerce(from_json.to_dict()) == from_json
    assert repr(from_json) == "ColumnMapping(7 column(s), 5 status value(s))"
    assert "결제금액" in from_json._repr_html_()


def test_mapping_explicit_paid_value_and_identity() -> None:
    m = ColumnMapping.from_dict({"statuses": {"Y": "paid", "완료": "paid"}, "paid_value": "완료"})
    assert m.raw_paid_value() == "완료"
    assert ColumnMapping().raw_paid_value() == "paid"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"columns": {"amount_krw": "금액"}}, "unknown canonical column"),
        ({"statuses": {"완료": "done"}}, "unknown canonical status"),
        ({"columns": {"amount": "x", "refunded_amount": "x"}}, "more than one canonical column"),
        ({"colums": {}}, "unknown key"),
        ({"columns": ["amount"]}, "must be objects"),
    ],
)
def test_bad_mappings_are_refused_with_a_reason(data: dict[str, object], message: str) -> None:
    with pytest.raises(SourceError, match=message):
        ColumnMapping.from_dict(data)


def test_mapping_file_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(SourceError, match=r"bad\.json: not valid JSON"):
        ColumnMapping.from_file(bad)
    with pytest.raises(SourceError, match="cannot read the mapping file"):
        ColumnMapping.from_file(tmp_path / "none.toml")


# -- sources ---------------------------------------------------------------------------------------


def test_detect_encoding() -> None:
    text = "주문번호,상태\n주문-1,결제완료\n"
    assert detect_encoding(codecs.BOM_UTF8 + text.encode("utf-8")) == "utf-8-sig"
    assert detect_encoding(text.encode("utf-8")) == "utf-8"
    assert detect_encoding(text.encode("cp949")) == "cp949"
    assert detect_encoding(text.encode("euc-kr")) == "cp949"
    with pytest.raises(SourceError, match="encoding="):
        detect_encoding(b"\xff\xfe\xff\x00\x81")


def test_csv_cells_stay_text(tmp_path: Path) -> None:
    path = tmp_path / "o.csv"
    path.write_text("merchant_uid,amount\n00123,9900\n", encoding="utf-8")
    raw = read_source(path)
    assert raw["merchant_uid"].tolist() == ["00123"]  # leading zeros kept


def test_unsupported_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"old \.xls workbooks"):
        read_source(tmp_path / "orders.xls")
    with pytest.raises(SourceError, match=r"unknown source type '\.json'"):
        read_source(tmp_path / "orders.json")
    with pytest.raises(SourceError, match="no such file"):
        read_source(tmp_path / "missing.csv")
    with pytest.raises(SourceError, match="SQL sources"):
        read_source(tmp_path / "orders.csv", table="orders")
    with pytest.raises(SourceError, match="DataFrame"):
        read_source(pd.DataFrame(), query="SELECT 1")


def test_corrupt_parquet_is_a_source_error(tmp_path: Path) -> None:
    path = tmp_path / "o.parquet"
    path.write_bytes(b"not parquet")
    with pytest.raises(SourceError, match=r"o\.parquet: cannot read as parquet"):
        read_source(path)


def test_sql_url_needs_exactly_one_of_table_or_query() -> None:
    url = "postgresql+psycopg://me:pw@127.0.0.1:1/db"
    with pytest.raises(SourceError, match="exactly one of table") as info:
        read_source(url)
    assert "pw" not in str(info.value).replace("psycopg", "")
    with pytest.raises(SourceError, match="exactly one of table"):
        read_source(url, table="t", query="SELECT 1")


def test_safe_url_drops_password_everywhere() -> None:
    assert safe_url("postgresql+psycopg://me:pw@h:5432/db?password=x&sslmode=require") == (
        "postgresql+psycopg://me@h:5432/db?sslmode=require"
    )
    desc = describe("mysql+pymysql://root:secret@h/db", table="orders")
    assert desc.location == "mysql+pymysql://root@h/db"
    assert desc.label == "sql:mysql+pymysql://root@h/db#table=orders"
    assert "secret" not in repr(desc)


def test_unreachable_database_is_a_source_error_without_password() -> None:
    with pytest.raises(SourceError) as info:
        read_source("postgresql+psycopg://me:topsecret@127.0.0.1:1/db", table="orders")
    assert "topsecret" not in str(info.value)
    assert "127.0.0.1:1/db" in str(info.value)


def test_without_sqlalchemy_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch, store: Store) -> None:
    monkeypatch.setitem(sys.modules, "sqlalchemy", None)
    with pytest.raises(SourceError, match=r"the 'sql' extra \(pip install 'portone-recon\[sql\]'"):
        load_orders(store, "postgresql+psycopg://u@h/db", table="orders")
    with pytest.raises(SourceError, match="'sql' extra"):
        OrdersWriter("postgresql+psycopg://u@h/db", "orders")
    # The core works without it.
    frame = pd.DataFrame({"merchant_uid": ["m"], "customer_uid": ["c"], "amount": [1], "status": ["paid"]})
    assert load_orders(store, frame).rows_loaded == 1


def test_writer_from_store_without_sql_source(store: Store) -> None:
    with pytest.raises(SourceError, match="no orders snapshot was loaded from any SQL source"):
        OrdersWriter.from_store(store)
