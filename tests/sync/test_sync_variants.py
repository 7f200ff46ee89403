"""The sync under every reading of the V1 behaviours no primary source settles (sandbox variants).

Whatever PortOne really does, the incremental store must equal PortOne's state once the weekly pass has
run, and equal a fresh full sync of the same account.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from portone_recon._time import KST
from portone_recon.sandbox.variants import VARIANTS, ApiVariant
from portone_recon.store import Store
from portone_recon.sync import sync

from ._world import build_world, snapshot, store_tables, unix, world_tables


@pytest.mark.parametrize("variant", list(VARIANTS.values()), ids=list(VARIANTS))
def test_every_change_is_caught_under_every_variant(tmp_path: Path, variant: ApiVariant) -> None:
    w = build_world(variant=variant)
    store = Store(tmp_path / "inc.duckdb")
    with w.client() as client:
        sync(client, store, progress=False)
        w.advance(to=datetime(2025, 9, 20, 9, 0, tzinfo=KST))
        # a prorated refund of a payment paid about 4 months ago
        old = next(
            p
            for p in sorted(w.payments.values(), key=lambda p: p["paid_at"])
            if p["status"] == "paid" and 110 * 86400 < w.clock.now_unix - p["paid_at"] < 130 * 86400
        )
        w.cancel_payment(imp_uid=old["imp_uid"], amount=1500, reason="부분 환불")
        # a renewal booked 11 months ahead, a key deleted with charges still booked
        far = unix(w.clock.now + timedelta(days=330))
        w.create_schedules("cust_001", [{"merchant_uid": "annual_1", "schedule_at": far, "amount": 99000}])
        w.delete_billing_key("cust_002")
        w.advance(seconds=3600)
        daily = sync(client, store, progress=False)
        assert daily.quarantined == 0
        deleted = store.query("SELECT deleted FROM billing_keys WHERE customer_uid = 'cust_002'")
        assert bool(deleted.iloc[0, 0])  # a key with future charges is checked every day
        w.advance(seconds=8 * 86400)  # the weekly pass is due
        sync(client, store, progress=False)
        assert store_tables(store) == world_tables(w)
        refunded = store.query("SELECT cancel_amount FROM payments WHERE imp_uid = ?", [old["imp_uid"]])
        assert refunded.iloc[0, 0] == 1500
        fresh = Store(tmp_path / "fresh.duckdb")
        sync(client, fresh, progress=False, now=w.clock.now)
    assert store_tables(fresh) == store_tables(store)
    # every column and the raw JSON too (a deleted key keeps its last known card in the incremental
    # store only: a fresh store never saw it)
    inc, new = snapshot(store), snapshot(fresh)
    for table in ("payments", "payment_cancellations", "schedules"):
        assert inc[table] == new[table], table
