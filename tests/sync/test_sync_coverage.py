"""sync_state.covered_from: where each stream's rows are complete from (the reconciliation's coverage)."""

from __future__ import annotations

from datetime import datetime

from portone_recon._time import KST
from portone_recon.store import Store
from portone_recon.sync import sync

from ._world import build_world


def _covered(store: Store) -> dict[str, datetime | None]:
    rows = store.query("SELECT stream, covered_from FROM sync_state ORDER BY stream")
    return {
        str(s): (None if c is None or c != c else c.to_pydatetime().astimezone(KST))
        for s, c in zip(rows["stream"], rows["covered_from"], strict=True)
    }


def test_covered_from_starts_at_since_and_only_a_joining_backfill_extends_it(store: Store) -> None:
    w = build_world()
    with w.client() as client:
        sync(client, store, since="2025-03-01", progress=False)
        first = _covered(store)
        assert first["payments:paid"] == datetime(2025, 3, 1, tzinfo=KST)
        assert first["payments:cancelled"] == datetime(2025, 3, 1, tzinfo=KST)
        sync(client, store, progress=False)  # incremental: starts at the cursor, covers nothing older
        assert _covered(store)["payments:paid"] == datetime(2025, 3, 1, tzinfo=KST)
        # a backfill that ends before the covered range leaves a gap: coverage does not move
        sync(client, store, since="2024-11-01", until="2024-12-01", progress=False)
        assert _covered(store)["payments:paid"] == datetime(2025, 3, 1, tzinfo=KST)
        # one that reaches it extends it
        sync(client, store, since="2025-01-01", until="2025-03-02", progress=False)
        assert _covered(store)["payments:paid"] == datetime(2025, 1, 1, tzinfo=KST)
    assert _covered(store).get("billing_keys") is None  # a lookup, no time range
