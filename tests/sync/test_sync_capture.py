"""Change capture beyond the listings: old refunds, far renewals, deleted keys (how soon, at what cost)."""

from __future__ import annotations

from datetime import datetime

from portone_recon._time import KST
from portone_recon.store import Store
from portone_recon.sync import SyncReport, sync
from portone_recon.sync.report import StreamResult

from ._world import build_world, store_tables, unix, world_tables


def _stream(report: SyncReport, name: str) -> StreamResult:
    return next(s for s in report.streams if s.stream == name)


def test_an_old_partial_refund_is_caught_by_the_weekly_re_read_by_imp_uid(store: Store) -> None:
    w = build_world()
    with w.client() as client:
        sync(client, store, progress=False)
        w.advance(to=datetime(2025, 9, 20, 9, 0, tzinfo=KST))
        sync(client, store, progress=False)  # four months later: the weekly pass is due and runs
        old = next(
            p
            for p in sorted(w.payments.values(), key=lambda p: p["paid_at"])
            if p["status"] == "paid" and w.clock.now_unix - p["paid_at"] > 120 * 86400
        )
        w.cancel_payment(imp_uid=old["imp_uid"], amount=1200, reason="연간 요금 일할 환불")
        w.advance(seconds=60)
        daily = sync(client, store, progress=False)
        before = old["cancel_amount"] - 1200
        stored = store.query("SELECT cancel_amount FROM payments WHERE imp_uid = ?", [old["imp_uid"]])
        assert stored.iloc[0, 0] == before  # older than the -updated scan's window: not seen on a daily run
        assert _stream(daily, "payments:refundable").api_calls == 0
        w.advance(seconds=8 * 86400)
        w.requests.clear()
        weekly = sync(client, store, progress=False)
    refundable = _stream(weekly, "payments:refundable")
    looked_up = [r for r in w.requests if r["path"] == "/payments"]
    per_call = [sum(1 for k, _ in r["query"] if k == "imp_uid[]") for r in looked_up]
    assert refundable.api_calls == len(looked_up) >= 1
    assert old["imp_uid"] in {v for r in looked_up for k, v in r["query"] if k == "imp_uid[]"}
    assert all(0 < n <= 100 for n in per_call)  # 100 ids per call
    stored = store.query("SELECT cancel_amount FROM payments WHERE imp_uid = ?", [old["imp_uid"]])
    assert stored.iloc[0, 0] == before + 1200
    assert store_tables(store) == world_tables(w)


def test_an_annual_renewal_booked_eleven_months_ahead_is_seen_the_next_day(store: Store) -> None:
    w = build_world()
    with w.client() as client:
        sync(client, store, progress=False)
        start = datetime(2025, 5, 20, 10, 0, tzinfo=KST)
        with store.transaction() as con:
            con.execute(
                "INSERT INTO subscriptions (customer_uid, status, amount, interval_months, anchor_day, "
                "started_at, source, loaded_at) VALUES "
                "('cust_001', 'active', 99000, 12, 20, $s, 'test', now()), "
                "('cust_005', 'active', 8900, 1, 5, $s, 'test', now())",
                {"s": start},
            )
        renewal = datetime(2026, 5, 20, 10, 0, tzinfo=KST)
        w.create_schedules(
            "cust_001", [{"merchant_uid": "annual_2026", "schedule_at": unix(renewal), "amount": 99000}]
        )
        w.advance(seconds=86400)
        w.requests.clear()
        report = sync(client, store, progress=False)
    ids = set(store.query("SELECT merchant_uid FROM schedules")["merchant_uid"])
    assert "annual_2026" in ids  # not waiting for the weekly full pass
    assert "long-interval" in _stream(report, "schedules").note
    per_customer = [r for r in w.requests if r["path"].startswith("/subscribe/payments/schedule/customers/")]
    # one window around the expected renewal, for the annual plan only (the monthly one renews within
    # the near range the daily listing reads)
    assert [r["path"].rsplit("/", 1)[-1] for r in per_customer] == ["cust_001"]
    lo, hi = (int(dict(per_customer[0]["query"])[k]) for k in ("from", "to"))
    assert lo <= unix(renewal) < hi and hi - lo <= 90 * 86400
