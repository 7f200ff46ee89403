"""sync() never moves a cursor past PortOne's now, whatever ``until`` says; bad ranges are refused."""

from __future__ import annotations

import importlib
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from portone_recon._time import KST
from portone_recon.cli import main
from portone_recon.errors import UsageError
from portone_recon.store import Store
from portone_recon.sync import sync

from ._world import build_world, snapshot, store_tables, world_tables


def test_until_later_than_now_is_clamped_and_later_syncs_still_see_what_happens(store: Store) -> None:
    w = build_world()
    now = w.clock.now
    with w.client() as client:
        report = sync(client, store, until="2099-01-01", progress=False)
        assert report.until <= now
        cursors = dict(snapshot(store)["cursors"])
        assert cursors and all(c is not None and c <= now for c in cursors.values()), cursors
        # Clamped, it reads what a run without until reads (future schedules included).
        assert store_tables(store) == world_tables(w)

        w.advance(to=now + timedelta(days=20))
        w.pay_again(customer_uid="cust_001", merchant_uid="addon_late", amount=4400, name="추가 구매")
        w.advance(seconds=600)
        sync(client, store, progress=False)
    assert store_tables(store) == world_tables(w)
    assert "addon_late" in {r[1] for r in snapshot(store)["payments"]}


def test_an_until_in_the_past_still_bounds_the_backfill(store: Store) -> None:
    w = build_world()
    with w.client() as client:
        report = sync(client, store, since="2025-01-01", until="2025-03-01", progress=False)
    assert report.until == datetime(2025, 3, 1, tzinfo=KST)


@pytest.mark.parametrize(
    ("since", "until", "needle"),
    [
        ("2025-03-01", "2025-02-01", r"since \(2025-03-01.*must be before until \(2025-02-01"),
        ("2099-01-01", None, r"since \(2099-01-01.*must be before PortOne's now"),
        ("2099-01-01", "2099-02-01", r"since \(2099-01-01.*must be before PortOne's now"),
        ("last week", None, r"since: not an ISO 8601 date or instant: 'last week' \(e\.g\."),
        (None, "someday", r"until: not an ISO 8601 date or instant: 'someday' \(e\.g\."),
    ],
)
def test_a_bad_range_is_refused_before_anything_is_written(
    store: Store, since: str | None, until: str | None, needle: str
) -> None:
    w = build_world()
    before = snapshot(store)
    with w.client() as client, pytest.raises(UsageError, match=needle) as info:
        sync(client, store, since=since, until=until, progress=False)
    assert isinstance(info.value, ValueError)
    assert snapshot(store) == before


def test_a_cursor_left_in_the_future_by_an_older_version_is_taken_back(store: Store) -> None:
    w = build_world()
    with w.client() as client:
        sync(client, store, progress=False)
        with store.connect() as con:  # what an unclamped `sync --until 2099-01-01` used to leave
            con.execute("UPDATE sync_state SET cursor = TIMESTAMPTZ '2099-01-01 00:00:00+09'")
        w.advance(to=w.clock.now + timedelta(days=20))
        w.pay_again(customer_uid="cust_002", merchant_uid="addon_after", amount=5500, name="추가 구매")
        w.advance(seconds=600)
        sync(client, store, progress=False)
        now = w.clock.now
    assert "addon_after" in {r[1] for r in snapshot(store)["payments"]}
    assert store_tables(store) == world_tables(w)
    assert all(c is not None and c <= now for _, c in snapshot(store)["cursors"])


def test_the_cli_says_when_it_clamped_until(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    w = build_world()
    monkeypatch.setenv("PORTONE_IMP_KEY", "k")
    monkeypatch.setenv("PORTONE_IMP_SECRET", "s")
    client_module = importlib.import_module("portone_recon.api.client")
    monkeypatch.setattr(client_module.PortOneClient, "from_env", classmethod(lambda cls: w.client()))
    db = tmp_path / "x.duckdb"
    assert main(["sync", "--db", str(db), "--until", "2099-01-01", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "--until 2099-01-01 is later than PortOne's now" in err
    assert f"{w.clock.now:%Y-%m-%d %H:%M}" in err
    cursors = dict(snapshot(Store(db))["cursors"])
    assert cursors and all(c is not None and c <= w.clock.now for c in cursors.values())
