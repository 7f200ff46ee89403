"""Order-side rules: missed_webhook, amount_mismatch, phantom_paid, refund_not_reflected, unknown_payment."""

from __future__ import annotations

from datetime import timedelta

from _recon_world import AS_OF, PRICE, World, keys, kinds_of, kst


def test_healthy_subscriber_has_no_findings(world: World) -> None:
    world.healthy("cus_1", 27, [(2026, 9), (2026, 10)])
    # the November renewal is future at 06:00 on the 27th: it runs at 10:00
    result = world.run()
    assert kinds_of(result) == {}
    assert len(result) == 0


def test_missed_webhook_paid_at_portone_pending_locally(world: World) -> None:
    world.healthy("cus_1", 5, [(2026, 9), (2026, 10), (2026, 11)])
    world.renewal("cus_2", kst(2026, 11, 20), webhook=False)
    world.order("ord-3", "cus_3", status="failed")
    imp_fail = world.payment("ord-3", customer_uid="cus_3", status="failed", at=kst(2026, 11, 25, 9))
    imp_paid = world.payment("ord-3", customer_uid="cus_3", at=kst(2026, 11, 25, 9, 5))
    result = world.run()
    mw = result["missed_webhook"]
    assert set(mw["merchant_uid"]) == {"sub-cus_2-202611", "ord-3"}
    row = mw.set_index("merchant_uid").loc["ord-3"]
    assert row["imp_uid"] == imp_paid != imp_fail  # the paid attempt, not the failed one
    assert row["local_status"] == "failed"
    assert row["severity"] == "high"
    assert row["suggested_action"] == "reverify"
    assert int(row["amount_at_risk"]) == PRICE
    assert row["event_at"] == kst(2026, 11, 25, 9, 5)
    assert row["age"] == AS_OF - kst(2026, 11, 25, 9, 5)
    assert "9,900 KRW" in row["detail"]


def test_missed_webhook_inside_grace_is_not_a_finding(world: World) -> None:
    world.order("ord-1", "cus_1")
    world.payment("ord-1", customer_uid="cus_1", at=AS_OF - timedelta(minutes=10))
    world.order("ord-2", "cus_2")
    world.payment("ord-2", customer_uid="cus_2", at=AS_OF - timedelta(minutes=16))
    result = world.run()
    assert keys(result, "missed_webhook", "merchant_uid") == {"ord-2"}
    # a longer grace swallows the second one too; a zero grace reports both
    assert world.run(grace="1h").counts["missed_webhook"] == 0
    assert world.run(grace="0s").counts["missed_webhook"] == 2


def test_paid_locally_or_cancelled_locally_is_not_missed(world: World) -> None:
    world.order("ord-1", "cus_1", status="paid", paid_at=kst(2026, 11, 1, 10))
    world.payment("ord-1", customer_uid="cus_1", at=kst(2026, 11, 1, 10))
    world.order("ord-2", "cus_2", status="cancelled")
    world.payment("ord-2", customer_uid="cus_2", at=kst(2026, 11, 1, 10))
    result = world.run()
    assert result.counts["missed_webhook"] == 0
    assert result.counts["phantom_paid"] == 0


def test_amount_mismatch_replaces_missed_webhook(world: World) -> None:
    world.order("ord-1", "cus_1", amount=9900)
    world.payment("ord-1", customer_uid="cus_1", amount=100, at=kst(2026, 11, 20))
    world.order("ord-2", "cus_2", status="paid", amount=9900, paid_at=kst(2026, 11, 20))
    world.payment("ord-2", customer_uid="cus_2", amount=9000, at=kst(2026, 11, 20))
    world.order("ord-3", "cus_3", amount=9900)
    world.payment("ord-3", customer_uid="cus_3", amount=9900, currency="USD", at=kst(2026, 11, 20))
    result = world.run()
    assert result.counts["missed_webhook"] == 0
    am = result["amount_mismatch"].set_index("merchant_uid")
    assert set(am.index) == {"ord-1", "ord-2", "ord-3"}
    assert (am["severity"] == "critical").all()
    assert int(am.loc["ord-1", "portone_amount"]) == 100
    assert int(am.loc["ord-1", "local_amount"]) == 9900
    assert am.loc["ord-2", "local_status"] == "paid"
    assert "USD" in am.loc["ord-3", "detail"]


def test_phantom_paid(world: World) -> None:
    # paid locally, only a failed attempt at PortOne
    world.order("ord-1", "cus_1", status="paid", paid_at=kst(2026, 11, 20))
    world.payment("ord-1", customer_uid="cus_1", status="failed", at=kst(2026, 11, 20))
    # paid locally, nothing at PortOne
    world.order("ord-2", "cus_2", status="paid", paid_at=kst(2026, 11, 20))
    # failed then paid: not phantom
    world.order("ord-3", "cus_3", status="paid", paid_at=kst(2026, 11, 20))
    world.payment("ord-3", customer_uid="cus_3", status="failed", at=kst(2026, 11, 20, 9))
    world.payment("ord-3", customer_uid="cus_3", at=kst(2026, 11, 20, 9, 30))
    # paid, later fully refunded at PortOne: the charge happened, not phantom
    world.order("ord-4", "cus_4", status="paid", paid_at=kst(2026, 11, 2), refunded_amount=PRICE)
    world.payment(
        "ord-4", customer_uid="cus_4", status="cancelled", cancel_amount=PRICE,
        at=kst(2026, 11, 2), paid_at=kst(2026, 11, 2), cancelled_at=kst(2026, 11, 3),
    )  # fmt: skip
    # marked paid 5 minutes ago: the sync may just lag, leave it to the next run
    world.order("ord-5", "cus_5", status="paid", paid_at=AS_OF - timedelta(minutes=5))
    result = world.run()
    ph = result["phantom_paid"].set_index("merchant_uid")
    assert set(ph.index) == {"ord-1", "ord-2"}
    assert ph.loc["ord-1", "portone_status"] == "failed"
    assert ph.loc["ord-2", "portone_status"] == "none"
    assert result.counts["refund_not_reflected"] == 0


def test_refund_not_reflected_partial_and_full(world: World) -> None:
    imp1 = world.payment("ord-1", customer_uid="cus_1", cancel_amount=3000, at=kst(2026, 11, 1))
    world.cancellation(imp1, 3000, kst(2026, 11, 10, 14))
    world.order("ord-1", "cus_1", status="paid", paid_at=kst(2026, 11, 1))
    imp2 = world.payment(
        "ord-2", customer_uid="cus_2", status="cancelled", cancel_amount=PRICE,
        at=kst(2026, 11, 1), paid_at=kst(2026, 11, 1), cancelled_at=kst(2026, 11, 12),
    )  # fmt: skip
    world.cancellation(imp2, PRICE, kst(2026, 11, 12))
    world.order("ord-2", "cus_2", status="paid", paid_at=kst(2026, 11, 1))
    # partly reflected: 3000 refunded at PortOne in two steps, 1000 recorded locally
    imp3 = world.payment("ord-3", customer_uid="cus_3", cancel_amount=3000, at=kst(2026, 11, 1))
    world.cancellation(imp3, 1000, kst(2026, 11, 5))
    world.cancellation(imp3, 2000, kst(2026, 11, 6))
    world.order("ord-3", "cus_3", status="paid", paid_at=kst(2026, 11, 1), refunded_amount=1000)
    # fully reflected
    world.payment("ord-4", customer_uid="cus_4", cancel_amount=3000, at=kst(2026, 11, 1))
    world.order("ord-4", "cus_4", status="paid", paid_at=kst(2026, 11, 1), refunded_amount=3000)
    result = world.run()
    rf = result["refund_not_reflected"].set_index("merchant_uid")
    assert set(rf.index) == {"ord-1", "ord-2", "ord-3"}
    assert int(rf.loc["ord-1", "amount_at_risk"]) == 3000
    assert "(partial)" in rf.loc["ord-1", "detail"]
    assert int(rf.loc["ord-2", "amount_at_risk"]) == PRICE
    assert "(partial)" not in rf.loc["ord-2", "detail"]
    assert int(rf.loc["ord-3", "amount_at_risk"]) == 2000
    assert rf.loc["ord-3", "event_at"] == kst(2026, 11, 6)
    assert rf.loc["ord-1", "suggested_action"] == "mark_refunded"


def test_unknown_payment_keyed_by_imp_uid(world: World) -> None:
    world.order("ord-0", "cus_0", status="pending")  # orders are loaded (no time: the whole range is judged)
    paid = world.payment("ghost-1", customer_uid="cus_1", at=kst(2026, 11, 20))
    world.payment("ghost-2", customer_uid="cus_2", status="failed", at=kst(2026, 11, 20))
    refunded = world.payment(
        "ghost-3", status="cancelled", cancel_amount=PRICE,
        at=kst(2026, 11, 20), paid_at=kst(2026, 11, 20), cancelled_at=kst(2026, 11, 21),
    )  # fmt: skip
    future = world.payment("ghost-4", at=AS_OF + timedelta(hours=1))  # after as_of: not yet
    result = world.run()
    assert keys(result, "unknown_payment", "imp_uid") == {paid, refunded}
    rows = result["unknown_payment"].set_index("imp_uid")
    assert int(rows.loc[paid, "amount_at_risk"]) == PRICE
    assert int(rows.loc[refunded, "amount_at_risk"]) == 0
    assert future not in rows.index
