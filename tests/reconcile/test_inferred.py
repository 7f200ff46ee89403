"""Without a subscriptions table: "active", anchor day and amount are inferred, and the result says so."""

from __future__ import annotations

from datetime import timedelta

from _recon_world import AS_OF, World, keys, kinds_of, kst


def _chain(
    world: World,
    cus: str,
    anchor: int,
    months: list[tuple[int, int]],
    *,
    amount: int = 9900,
    deleted: bool = False,
) -> None:
    from portone_recon._time import anchored_date

    world.key(cus, deleted=deleted)
    for y, m in months:
        d = anchored_date(y, m, anchor)
        world.renewal(cus, kst(d.year, d.month, d.day), amount=amount)


def test_inferred_flag_and_healthy_chain(world: World) -> None:
    _chain(world, "cus_1", 5, [(2026, 10), (2026, 11)])
    world.booked("cus_1", kst(2026, 12, 5))
    result = world.run()
    assert result.subscriptions_inferred
    assert "[subscriptions inferred]" in repr(result)
    assert "inferred" in result._repr_html_()
    assert kinds_of(result) == {}


def test_inferred_missing_next_and_lapsed_customers(world: World) -> None:
    _chain(world, "cus_live", 15, [(2026, 10), (2026, 11)])  # paid 15 Nov, nothing booked: missing
    _chain(world, "cus_lapsed", 15, [(2026, 8), (2026, 9)])  # last paid in September: not active anymore
    result = world.run()
    assert keys(result, "missing_next_schedule", "customer_uid") == {"cus_live"}


def test_inferred_failed_renewal_keeps_subscriber_active(world: World) -> None:
    _chain(world, "cus_1", 20, [(2026, 10)])
    world.failed_renewal("cus_1", kst(2026, 11, 20))
    result = world.run()
    assert keys(result, "unpaid_renewal", "schedule_merchant_uid") == {"sub-cus_1-202611"}


def test_inferred_local_cancellation_and_deleted_key(world: World) -> None:
    # churned properly: next schedule revoked, its order cancelled -> inactive, nothing to report
    _chain(world, "cus_churn", 10, [(2026, 10), (2026, 11)])
    world.schedule("sub-cus_churn-202612", "cus_churn", kst(2026, 12, 10), status="revoked")
    world.order("sub-cus_churn-202612", "cus_churn", status="cancelled")
    # cancelled locally but the schedule was left booked -> orphan
    _chain(world, "cus_left", 10, [(2026, 10), (2026, 11)])
    world.schedule("sub-cus_left-202612", "cus_left", kst(2026, 12, 10))
    world.order("sub-cus_left-202612", "cus_left", status="cancelled")
    # billing key deleted, schedule still booked -> orphan
    _chain(world, "cus_del", 10, [(2026, 10), (2026, 11)], deleted=True)
    world.booked("cus_del", kst(2026, 12, 10))
    result = world.run()
    assert kinds_of(result) == {"orphan_schedule": 2}
    assert keys(result, "orphan_schedule", "customer_uid") == {"cus_left", "cus_del"}


def test_inferred_anchor_from_latest_schedule(world: World) -> None:
    # anchor 31 is inferred from the latest schedule (31 Dec): 30 Nov (clamped) and 1 Dec are one period.
    world.key("cus_1")
    world.renewal("cus_1", kst(2026, 10, 31))
    world.renewal("cus_1", kst(2026, 11, 30), merchant_uid="sub-cus_1-202611")
    extra = world.payment("again-cus_1", customer_uid="cus_1", at=kst(2026, 12, 1, 9), usage="payment")
    world.order("again-cus_1", "cus_1", status="paid", paid_at=kst(2026, 12, 1, 9))
    world.booked("cus_1", kst(2026, 12, 31))
    result = world.run(as_of=kst(2026, 12, 2))
    assert keys(result, "duplicate_charge", "imp_uid") == {extra}
    assert result.subscriptions_inferred


def test_schedule_amount_mismatch_inferred_from_the_booked_order(world: World) -> None:
    _chain(world, "cus_1", 5, [(2026, 11)])
    world.schedule("sub-cus_1-202612", "cus_1", kst(2026, 12, 5), amount=9900)
    world.order("sub-cus_1-202612", "cus_1", amount=12900)
    result = world.run(as_of=AS_OF + timedelta(minutes=1))
    assert keys(result, "schedule_amount_mismatch", "schedule_merchant_uid") == {"sub-cus_1-202612"}
