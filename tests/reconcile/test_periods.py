"""The billing-period SQL macros agree with portone_recon._time (anchored, clamped, KST)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import duckdb
import pytest

from portone_recon._time import KST, add_months, anchored_date, period_start
from portone_recon.reconcile.rules import load_support, split_statements


@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    c = duckdb.connect()
    c.execute("SET TimeZone = 'UTC'")  # the macros must not depend on the session time zone
    for statement in split_statements(load_support("_macros")):
        c.execute(statement)
    return c


@pytest.mark.parametrize("anchor", [1, 15, 28, 29, 30, 31])
def test_anchored_date_matches_python_for_every_month(con: duckdb.DuckDBPyConnection, anchor: int) -> None:
    got = con.execute(
        "SELECT mi, recon_anchored_date(mi, $a) FROM range(2023 * 12, 2029 * 12) t(mi) ORDER BY mi",
        {"a": anchor},
    ).fetchall()
    for mi, d in got:
        y, m = add_months(0, 1, int(mi))
        assert d == anchored_date(y, m, anchor), (mi, anchor)


def test_clamping_is_from_the_anchor_not_stepped(con: duckdb.DuckDBPyConnection) -> None:
    rows = con.execute(
        "SELECT recon_anchored_date(2026 * 12 + k, 31) FROM range(0, 4) t(k) ORDER BY k"
    ).fetchall()
    assert [r[0] for r in rows] == [
        date(2026, 1, 31),
        date(2026, 2, 28),
        date(2026, 3, 31),
        date(2026, 4, 30),
    ]
    leap = con.execute("SELECT recon_anchored_date(2028 * 12 + 1, 30)").fetchone()
    assert leap is not None and leap[0] == date(2028, 2, 29)


@pytest.mark.parametrize("anchor", [1, 29, 30, 31])
def test_period_of_instants_matches_python(con: duckdb.DuckDBPyConnection, anchor: int) -> None:
    # every 7 hours over two years crosses every KST midnight position and month end
    start = datetime(2025, 12, 1, 0, 30, tzinfo=KST)
    instants = [start + timedelta(hours=7 * i) for i in range(0, 2600)]
    got = con.execute(
        "SELECT ts, recon_period_start(recon_period(ts, $a, 1, 0), $a, 1, 0) FROM unnest($ts) t(ts)",
        {"a": anchor, "ts": instants},
    ).fetchall()
    for ts, d in got:
        assert d == period_start(ts, anchor), (ts, anchor)


def test_0030_kst_on_the_first_is_the_new_period(con: duckdb.DuckDBPyConnection) -> None:
    row = con.execute(
        "SELECT recon_period(TIMESTAMPTZ '2026-11-01 00:30:00+09', 1, 1, 0)"
        " - recon_period(TIMESTAMPTZ '2026-10-31 23:50:00+09', 1, 1, 0),"
        " recon_kst_date(TIMESTAMPTZ '2026-11-01 00:30:00+09')"
    ).fetchone()
    assert row == (1, date(2026, 11, 1))


def test_add_interval_clamps(con: duckdb.DuckDBPyConnection) -> None:
    row = con.execute(
        "SELECT recon_add_interval(TIMESTAMPTZ '2026-01-31 10:00:00+09', 31, 1),"
        " recon_add_interval(TIMESTAMPTZ '2026-02-28 10:00:00+09', 31, 1)"
    ).fetchone()
    assert row is not None
    assert row[0] == datetime(2026, 2, 28, 10, tzinfo=KST)
    assert row[1] == datetime(2026, 3, 31, 10, tzinfo=KST)
