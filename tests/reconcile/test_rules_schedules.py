"""Schedule and customer rules: unpaid_renewal, missing_next_schedule, duplicate_schedule, orphan_schedule,
duplicate_charge, schedule_amount_mismatch — with month-end anchors and KST day boundaries."""

from __future__ import annotations

from datetime import timedelta

import pytest
from _recon_world import AS_OF, PRICE, World, keys, kinds_of, kst


def test_failed_renewal_without_retry_is_unpaid(world: World) -> None:
    world.key("cus_1")
    world.sub("cus_1", anchor_day=20)
    world.renewal("cus_1", kst(2026, 10, 20))
    world.failed_renewal("cus_1", kst(2026, 11, 20))
    result = world.run()
    assert kinds_of(result) == {"unpaid_renewal": 1}
    row = result["unpaid_renewal"].iloc[0]
    assert row["schedule_merchant_uid"] == "sub-cus_1-202611"
    assert row["suggested_action"] == "retry"
    assert row["portone_status"] == "failed"
    assert int(row["amount_at_risk"]) == PRICE


def test_failed_then_retry_paid_next_day_is_clean(world: World) -> None:
    world.key("cus_1")
    world.sub("cus_1", anchor_day=31)
    world.renewal("cus_1", kst(2026, 9, 30))
    # 31 Oct fails; the merchant's retry on 1 Nov (same billing period for anchor 31) pays
    world.failed_renewal("cus_1", kst(2026, 10, 31))
    world.renewal("cus_1", kst(2026, 11, 1), merchant_uid="sub-cus_1-202610-r1")
    world.booked("cus_1", kst(2026, 11, 30))
    result = world.run()
    assert kinds_of(result) == {}


def test_failed_with_retry_still_booked_is_not_yet_unpaid(world: World) -> None:
    world.key("cus_1")
    world.sub("cus_1", anchor_day=26)
    world.renewal("cus_1", kst(2026, 10, 26))
    world.failed_renewal("cus_1", kst(2026, 11, 26))
    world.booked("cus_1", kst(2026, 11, 27), merchant_uid="sub-cus_1-202611-r1")  # 10:00 today, after as_of
    assert kinds_of(world.run()) == {}


def test_portone_recovery_retry_on_same_merchant_uid_covers_the_period(world: World) -> None:
    world.key("cus_1")
    world.sub("cus_1", anchor_day=10)
    world.renewal("cus_1", kst(2026, 10, 10))
    mu = "sub-cus_1-202611"
    world.payment(mu, customer_uid="cus_1", status="failed", at=kst(2026, 11, 10))
    world.payment(mu, customer_uid="cus_1", status="failed", at=kst(2026, 11, 11, 9))
    paid = world.payment(mu, customer_uid="cus_1", at=kst(2026, 11, 12, 9))
    world.schedule(mu, "cus_1", kst(2026, 11, 10), status="executed", payment_status="paid", imp_uid=paid)
    world.order(mu, "cus_1", status="paid", paid_at=kst(2026, 11, 12, 9), imp_uid=paid)
    world.booked("cus_1", kst(2026, 12, 10))
    result = world.run()
    assert kinds_of(result) == {}  # in particular: no duplicate_charge, no unpaid_renewal


def test_stuck_schedule_is_unpaid_after_grace(world: World) -> None:
    world.key("cus_1")
    world.sub("cus_1", anchor_day=26)
    world.renewal("cus_1", kst(2026, 10, 26))
    world.booked("cus_1", kst(2026, 11, 26))  # due yesterday, still `scheduled`
    world.key("cus_2")
    world.sub("cus_2", anchor_day=27)
    world.renewal("cus_2", kst(2026, 10, 27))
    world.booked("cus_2", AS_OF - timedelta(minutes=5))  # due 5 minutes ago: inside grace
    result = world.run()
    assert keys(result, "unpaid_renewal", "schedule_merchant_uid") == {"sub-cus_1-202611"}
    assert result["unpaid_renewal"].iloc[0]["suggested_action"] == "rebook"
    assert result.counts["missing_next_schedule"] == 0


def test_cancelled_locally_the_day_before_the_schedule(world: World) -> None:
    # cancelled yesterday, the renewal booked for today at 10:00 was left behind -> orphan, not unpaid
    world.key("cus_1")
    world.sub("cus_1", anchor_day=27, status="cancelled", cancelled_at=kst(2026, 11, 26, 15))
    world.renewal("cus_1", kst(2026, 10, 27))
    world.booked("cus_1", kst(2026, 11, 27))
    # cancelled the day before a renewal that then failed: nobody should retry it
    world.key("cus_2")
    world.sub("cus_2", anchor_day=20, status="cancelled", cancelled_at=kst(2026, 11, 19, 15))
    world.renewal("cus_2", kst(2026, 10, 20))
    world.failed_renewal("cus_2", kst(2026, 11, 20))
    result = world.run()
    assert kinds_of(result) == {"orphan_schedule": 1}
    assert keys(result, "orphan_schedule", "schedule_merchant_uid") == {"sub-cus_1-202611"}


def test_deleted_billing_key_with_schedule_still_booked(world: World) -> None:
    world.key("cus_1", deleted=True)
    world.sub("cus_1", anchor_day=5)
    world.renewal("cus_1", kst(2026, 11, 5))
    world.booked("cus_1", kst(2026, 12, 5))
    result = world.run()
    assert kinds_of(result) == {"orphan_schedule": 1}
    row = result["orphan_schedule"].iloc[0]
    assert row["schedule_merchant_uid"] == "sub-cus_1-202612"
    assert "billing key is deleted" in row["detail"]
    assert row["suggested_action"] == "unschedule"


def test_missing_next_schedule(world: World) -> None:
    world.key("cus_1")
    world.sub("cus_1", anchor_day=15, amount=12900)
    world.renewal("cus_1", kst(2026, 10, 15), amount=12900)
    world.renewal("cus_1", kst(2026, 11, 15), amount=12900)  # paid, handler never booked December
    result = world.run()
    assert kinds_of(result) == {"missing_next_schedule": 1}
    row = result["missing_next_schedule"].iloc[0]
    assert row["customer_uid"] == "cus_1"
    assert row["schedule_merchant_uid"] == "sub-cus_1-202611"
    assert int(row["amount_at_risk"]) == 12900
    assert "2026-12-15" in row["detail"]


def test_missing_next_schedule_waits_for_grace(world: World) -> None:
    # executed and paid 5 minutes ago, webhook lost: neither missed_webhook nor missing_next yet
    world.key("cus_1")
    world.sub("cus_1", anchor_day=27)
    world.renewal("cus_1", kst(2026, 10, 27))
    world.renewal("cus_1", AS_OF - timedelta(minutes=5), webhook=False, merchant_uid="sub-cus_1-202611")
    assert kinds_of(world.run()) == {}
    later = world.run(as_of=AS_OF + timedelta(minutes=20))
    assert kinds_of(later) == {"missed_webhook": 1, "missing_next_schedule": 1}


def test_inactive_or_revoked_chain_is_not_missing(world: World) -> None:
    world.key("cus_1")
    world.sub("cus_1", anchor_day=15, status="cancelled", cancelled_at=kst(2026, 11, 20))
    world.renewal("cus_1", kst(2026, 11, 15))
    world.schedule("sub-cus_1-202612", "cus_1", kst(2026, 12, 15), status="revoked")
    world.order("sub-cus_1-202612", "cus_1", status="cancelled")
    assert kinds_of(world.run()) == {}


@pytest.mark.parametrize("anchor", [29, 30, 31])
def test_month_end_anchor_renewals_stay_one_per_period(world: World, anchor: int) -> None:
    """Anchor 29-31 through February (clamped to 28) and back; nothing is a duplicate or missing."""
    months = [(2025, 12), (2026, 1), (2026, 2), (2026, 3), (2026, 4)]
    world.key("cus_1")
    world.sub("cus_1", anchor_day=anchor)
    from portone_recon._time import anchored_date

    for y, m in months:
        d = anchored_date(y, m, anchor)
        world.renewal("cus_1", kst(d.year, d.month, d.day))
    world.booked("cus_1", kst(2026, 5, min(anchor, 31)))
    result = world.run(as_of=kst(2026, 4, 30, 23, 59))
    assert kinds_of(result) == {}, result.findings[["kind", "detail"]].to_string()


def test_duplicate_charge_in_one_period(world: World) -> None:
    world.key("cus_1")
    world.sub("cus_1", anchor_day=10)
    first = world.renewal("cus_1", kst(2026, 11, 10))
    extra = world.payment("again-cus_1-1", customer_uid="cus_1", at=kst(2026, 11, 11, 15), usage="payment")
    world.order("again-cus_1-1", "cus_1", status="paid", paid_at=kst(2026, 11, 11, 15))
    addon = world.payment(
        "addon-cus_1", customer_uid="cus_1", amount=3000, at=kst(2026, 11, 12), usage="payment"
    )
    world.order("addon-cus_1", "cus_1", status="paid", amount=3000, paid_at=kst(2026, 11, 12))
    world.booked("cus_1", kst(2026, 12, 10))
    result = world.run()
    assert kinds_of(result) == {"duplicate_charge": 1}
    row = result["duplicate_charge"].iloc[0]
    assert row["imp_uid"] == extra
    assert first in row["detail"]
    assert addon not in set(result.findings["imp_uid"].dropna())
    assert row["severity"] == "critical"


def test_refunded_duplicate_is_resolved(world: World) -> None:
    world.key("cus_1")
    world.sub("cus_1", anchor_day=10)
    world.renewal("cus_1", kst(2026, 11, 10))
    world.payment(
        "again-cus_1-1", customer_uid="cus_1", status="cancelled", cancel_amount=PRICE,
        at=kst(2026, 11, 11), paid_at=kst(2026, 11, 11), cancelled_at=kst(2026, 11, 12),
    )  # fmt: skip
    world.order("again-cus_1-1", "cus_1", status="refunded", paid_at=kst(2026, 11, 11), refunded_amount=PRICE)
    world.booked("cus_1", kst(2026, 12, 10))
    assert kinds_of(world.run()) == {}


def test_kst_day_boundary_payment_at_0030_on_the_first(world: World) -> None:
    """Anchor 1: 23:50 KST on 31 Oct belongs to October's period, 00:30 KST on 1 Nov to November's.

    In UTC both are on 31 Oct (14:50 and 15:30): bucketing by UTC would call them duplicates.
    """
    world.key("cus_1")
    world.sub("cus_1", anchor_day=1)
    world.renewal("cus_1", kst(2026, 10, 31, 23, 50), merchant_uid="sub-cus_1-202610")
    world.renewal("cus_1", kst(2026, 11, 1, 0, 30), merchant_uid="sub-cus_1-202611")
    world.booked("cus_1", kst(2026, 12, 1, 0, 30))
    assert kinds_of(world.run()) == {}
    # a second charge at 00:40 on 1 Nov is in November's period: one duplicate
    extra = world.payment("again-cus_1", customer_uid="cus_1", at=kst(2026, 11, 1, 0, 40))
    world.order("again-cus_1", "cus_1", status="paid", paid_at=kst(2026, 11, 1, 0, 40))
    assert keys(world.run(), "duplicate_charge", "imp_uid") == {extra}


def test_duplicate_schedule_keeps_the_subscription_amount(world: World) -> None:
    world.key("cus_1")
    world.sub("cus_1", anchor_day=5)
    world.renewal("cus_1", kst(2026, 11, 5))
    world.booked("cus_1", kst(2026, 12, 5, 9), amount=8900, merchant_uid="dup-a")  # earliest, wrong amount
    world.booked("cus_1", kst(2026, 12, 5, 10), merchant_uid="dup-b")  # keep: subscription amount
    world.booked("cus_1", kst(2026, 12, 6, 10), merchant_uid="dup-c")
    world.booked("cus_1", kst(2027, 1, 5, 10), merchant_uid="next-period")  # another period: fine
    result = world.run()
    assert keys(result, "duplicate_schedule", "schedule_merchant_uid") == {"dup-a", "dup-c"}
    assert "keep dup-b" in result["duplicate_schedule"].iloc[0]["detail"]
    # the extra with the old amount is also a schedule_amount_mismatch
    assert keys(result, "schedule_amount_mismatch", "schedule_merchant_uid") == {"dup-a"}


def test_plan_price_change_without_touching_the_schedule(world: World) -> None:
    world.key("cus_1")
    world.sub("cus_1", anchor_day=5, amount=12900)  # price went up from 9,900
    world.renewal("cus_1", kst(2026, 11, 5), amount=9900)
    world.booked("cus_1", kst(2026, 12, 5), amount=9900)
    result = world.run()
    assert kinds_of(result) == {"schedule_amount_mismatch": 1}
    row = result["schedule_amount_mismatch"].iloc[0]
    assert int(row["portone_amount"]) == 9900
    assert int(row["local_amount"]) == 12900
    assert int(row["amount_at_risk"]) == 3000
    assert row["suggested_action"] == "unschedule_rebook"
