"""A generated merchant (scenario generator) syncs into a fresh store row for row; a rerun changes nothing."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from portone_recon.api.client import PortOneClient
from portone_recon.sandbox.scenario import Scenario, generate_merchant
from portone_recon.store import Store
from portone_recon.sync import engine, sync

from ._world import snapshot, store_tables, world_tables


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return generate_merchant(300, 13, seed=11)


def _client(scenario: Scenario) -> PortOneClient:
    w = scenario.world
    return PortOneClient(
        imp_key=w.imp_key, imp_secret=w.imp_secret, transport=w.transport(), sleep=lambda _s: None
    )


@pytest.mark.parametrize("chunk_items", [engine.CHUNK_ITEMS, 700], ids=["default-chunks", "700-item-chunks"])
def test_generated_merchant_syncs_row_for_row_and_rerun_changes_nothing(
    scenario: Scenario, store: Store, chunk_items: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 700-item chunks: every large listing is staged in several parts (some while pages still arrive).
    monkeypatch.setattr(engine, "CHUNK_ITEMS", chunk_items)
    w = scenario.world
    expected = world_tables(w)
    # The scenario has what the comparison must cover: refunds, failures, deleted keys, future schedules.
    assert len(expected["payments"]) > 3000
    assert expected["cancels"]
    assert {v[2] for v in expected["payments"].values()} >= {"paid", "failed", "cancelled"}
    assert sum(expected["keys"].values()) > 0  # deleted billing keys
    assert {v[1] for v in expected["schedules"].values()} >= {"scheduled", "executed", "revoked"}
    with _client(scenario) as client:
        report = sync(client, store, progress=False)
        got = store_tables(store)
        for table in expected:
            diff = set(got[table].items()) ^ set(expected[table].items())
            assert not diff, (table, sorted(diff, key=str)[:6])
        assert report["payments"].new == len(expected["payments"])
        assert report["schedules"].new == len(expected["schedules"])
        assert report["payment_cancellations"].new == len(expected["cancels"])
        assert report["billing_keys"].new == len(expected["keys"])
        assert report.until == scenario.as_of
        _assert_raw_is_portone_json(store, w.payments, "payments", "imp_uid")
        _assert_raw_is_portone_json(store, w.schedules, "schedules", "merchant_uid")
        before = snapshot(store)
        again = sync(client, store, progress=False)
    assert (again.new, again.updated) == (0, 0)
    assert all(c.new == c.updated == 0 for c in again.tables.values())
    assert snapshot(store) == before
    assert again.api_calls < report.api_calls


def _assert_raw_is_portone_json(store: Store, world_rows: dict[str, Any], table: str, key: str) -> None:
    """Each row's ``raw`` is the object PortOne returned (same fields, same values)."""
    with store.connect() as con:
        rows = con.execute(f"SELECT {key}, raw::VARCHAR FROM {table}").fetchall()
    assert len(rows) == len(world_rows)
    bad = [k for k, raw in rows if orjson.loads(raw) != _public(world_rows[k])]
    assert not bad, (table, bad[:5])


def _public(row: dict[str, Any]) -> dict[str, Any]:
    """The world's row as the API serves it (internal fields start with an underscore)."""
    return {k: v for k, v in row.items() if not k.startswith("_")}
