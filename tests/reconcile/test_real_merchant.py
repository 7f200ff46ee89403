"""A real merchant's data, not our generator's: several subscriptions per card, add-ons, issuance and test
payments, intervals, trials, pauses, cancel at period end, synced coverage, one finding per cause."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from _recon_world import AS_OF, PRICE, World, keys, kinds_of, kst

from portone_recon.errors import ReconcileError
from portone_recon.reconcile import reconcile

# -- attribution: only a subscription's own net-paid charges count --------------------------------------


def test_addon_paid_after_a_failed_renewal_does_not_cover_it(world: World) -> None:
    world.key("cus_1")
    world.sub("cus_1", anchor_day=20)
    world.renewal("cus_1", kst(2026, 10, 20))
    world.failed_renewal("cus_1", kst(2026, 11, 20))
    world.payment("addon-1", customer_uid="cus_1", amount=1000, at=kst(2026, 11, 21), usage="payment")
    world.order("addon-1", "cus_1", status="paid", amount=1000, paid_at=kst(2026, 11, 21))
    result = world.run()
    assert kinds_of(result) == {"unpaid_renewal": 1}
    row = result["unpaid_renewal"].iloc[0]
    assert row["subscription_id"] == "cus_1"
    assert str(row["period_start"]) == "2026-11-20" and str(row["period_end"]) == "2026-12-20"


def test_order_findings_name_the_subscription_of_their_schedule(world: World) -> None:
    world.key("cus_1")
    world.sub("cus_1", anchor_day=20, subscription_id="basic")
    world.sub("cus_1", anchor_day=20, subscription_id="music", amount=4900)
    world.renewal("cus_1", kst(2026, 11, 20), merchant_uid="basic-202611", webhook=False)
    world.renewal("cus_1", kst(2026, 11, 20), amount=4900, merchant_uid="music-202611")
    world.booked("cus_1", kst(2026, 12, 20), merchant_uid="basic-202612")
    world.booked("cus_1", kst(2026, 12, 20), amount=4900, merchant_uid="music-202612")
    result = world.run()
    assert kinds_of(result) == {"missed_webhook": 1}
    assert result["missed_webhook"].iloc[0]["subscription_id"] == "basic"


def test_retry_under_a_new_merchant_uid_covers_the_renewal(world: World) -> None:
    world.key("cus_1")
    world.sub("cus_1", anchor_day=20)
    world.renewal("cus_1", kst(2026, 10, 20))
    world.failed_renewal("cus_1", kst(2026, 11, 20))
    # the merchant's own retry with `again` (no schedule) under a new merchant_uid, same amount
    imp = world.payment("sub-cus_1-202611-r1", customer_uid="cus_1", at=kst(2026, 11, 21), usage="payment")
    world.order("sub-cus_1-202611-r1", "cus_1", status="paid", paid_at=kst(2026, 11, 21), imp_uid=imp)
    world.booked("cus_1", kst(2026, 12, 20))
    assert kinds_of(world.run()) == {}


def test_second_plan_on_the_same_card_is_not_a_duplicate_schedule(world: World) -> None:
    world.key("cus_1")
    world.sub("cus_1", anchor_day=20, subscription_id="basic")
    world.sub("cus_1", anchor_day=20, subscription_id="music", amount=4900)
    for sid, amount in (("basic", PRICE), ("music", 4900)):
        world.renewal("cus_1", kst(2026, 11, 20), amount=amount, merchant_uid=f"{sid}-202611")
        world.booked("cus_1", kst(2026, 12, 20), amount=amount, merchant_uid=f"{sid}-202612")
    result = world.run()
    assert kinds_of(result) == {}


def test_two_bookings_of_one_plan_on_a_two_plan_card_are_a_duplicate(world: World) -> None:
    world.key("cus_1")
    world.sub("cus_1", anchor_day=20, subscription_id="basic")
    world.sub("cus_1", anchor_day=20, subscription_id="music", amount=4900)
    world.renewal("cus_1", kst(2026, 11, 20), merchant_uid="basic-202611")
    world.renewal("cus_1", kst(2026, 11, 20), amount=4900, merchant_uid="music-202611")
    world.booked("cus_1", kst(2026, 12, 20), merchant_uid="basic-202612")
    world.booked("cus_1", kst(2026, 12, 20), merchant_uid="basic-202612-x")
    world.booked("cus_1", kst(2026, 12, 20), amount=4900, merchant_uid="music-202612")
    result = world.run()
    assert kinds_of(result) == {"duplicate_schedule": 1}
    assert result["duplicate_schedule"].iloc[0]["subscription_id"] == "basic"


def test_two_plans_of_the_same_price_are_told_apart_by_the_order(world: World) -> None:
    world.key("cus_1")
    world.sub("cus_1", anchor_day=20, subscription_id="a")
    world.sub("cus_1", anchor_day=20, subscription_id="b")
    for sid in ("a", "b"):
        imp = world.payment(f"{sid}-202611", customer_uid="cus_1", at=kst(2026, 11, 20))
        world.schedule(f"{sid}-202611", "cus_1", kst(2026, 11, 20), status="executed", payment_status="paid",
                       imp_uid=imp)  # fmt: skip
        world.order(f"{sid}-202611", "cus_1", status="paid", paid_at=kst(2026, 11, 20), imp_uid=imp,
                    subscription_id=sid)  # fmt: skip
        world.schedule(f"{sid}-202612", "cus_1", kst(2026, 12, 20))
        world.order(f"{sid}-202612", "cus_1", subscription_id=sid)
    assert kinds_of(world.run()) == {}


def test_one_off_purchases_of_the_plan_price_are_not_duplicate_charges(world: World) -> None:
    world.key("cus_1")
    world.sub("cus_1", anchor_day=20, amount=5000)
    world.renewal("cus_1", kst(2026, 11, 20), amount=5000)
    world.booked("cus_1", kst(2026, 12, 20), amount=5000)
    for i in range(3):  # three purchases of one 5,000 KRW item with the stored card, orders name no plan
        at = kst(2026, 11, 21 + i)
        world.payment(f"shop-{i}", customer_uid="cus_1", amount=5000, at=at, usage="payment")
        world.order(f"shop-{i}", "cus_1", status="paid", amount=5000, paid_at=at)
    world.execute("UPDATE orders SET subscription_id = 'cus_1' WHERE merchant_uid LIKE 'sub-%'")
    assert kinds_of(world.run()) == {}


def test_inferred_one_off_purchases_on_a_card_are_no_subscription(world: World) -> None:
    world.key("cus_1")
    for i in range(3):
        at = kst(2026, 11, 21 + i)
        world.payment(f"shop-{i}", customer_uid="cus_1", amount=5000, at=at, usage="payment")
        world.order(f"shop-{i}", "cus_1", status="paid", amount=5000, paid_at=at)
    result = world.run()
    assert result.subscriptions_inferred and kinds_of(result) == {}


def test_two_charges_of_one_plan_in_one_period_are_a_duplicate(world: World) -> None:
    world.key("cus_1")
    world.sub("cus_1", anchor_day=20)
    world.renewal("cus_1", kst(2026, 11, 20))
    dup = world.payment("manual-1", customer_uid="cus_1", at=kst(2026, 11, 21), usage="payment")
    world.order("manual-1", "cus_1", status="paid", paid_at=kst(2026, 11, 21), imp_uid=dup)
    world.booked("cus_1", kst(2026, 12, 20))
    result = world.run()
    assert kinds_of(result) == {"duplicate_charge": 1}
    row = result["duplicate_charge"].iloc[0]
    assert row["imp_uid"] == dup and row["subscription_id"] == "cus_1"
    assert str(row["period_start"]) == "2026-11-20"


def test_issuance_and_test_channel_payments_are_never_charges(world: World) -> None:
    world.order("ord-0", "cus_0", status="pending")
    world.key("cus_1")
    world.sub("cus_1", anchor_day=20)
    world.renewal("cus_1", kst(2026, 10, 20))
    world.failed_renewal("cus_1", kst(2026, 11, 20))
    # neither "covers" the failed renewal, and neither is an unknown payment
    world.payment("issue-1", customer_uid="cus_1", amount=PRICE, at=kst(2026, 11, 21), usage="issue")
    world.payment("test-1", customer_uid="cus_1", amount=PRICE, at=kst(2026, 11, 22), usage="payment",
                  sandbox=True)  # fmt: skip
    result = world.run()
    assert kinds_of(result) == {"unpaid_renewal": 1}
    assert result.coverage["issuance_payments"] == 1 and result.coverage["sandbox_payments"] == 1
    assert any("test-channel" in n for n in result.coverage_notes())


# -- intervals, trials, pauses, cancel at period end ------------------------------------------------------


def test_quarterly_plan_renews_every_three_months(world: World) -> None:
    world.key("cus_1")
    world.sub("cus_1", anchor_day=15, interval_months=3, started_at=kst(2026, 2, 15), amount=27000)
    world.renewal("cus_1", kst(2026, 8, 15), amount=27000)
    world.renewal("cus_1", kst(2026, 11, 15), amount=27000)
    world.booked("cus_1", kst(2027, 2, 15), amount=27000)
    assert kinds_of(world.run()) == {}
    # a second booking inside the same quarter is a duplicate
    world.booked("cus_1", kst(2027, 4, 1), amount=27000, merchant_uid="dup")
    result = world.run()
    assert kinds_of(result) == {"duplicate_schedule": 1}
    row = result["duplicate_schedule"].iloc[0]
    assert row["merchant_uid"] == "dup"
    assert str(row["period_start"]) == "2027-02-15" and str(row["period_end"]) == "2027-05-15"


def test_annual_plan_paid_this_year_is_not_missing_a_schedule_next_month(world: World) -> None:
    world.key("cus_1")
    world.sub("cus_1", anchor_day=3, interval_months=12, started_at=kst(2025, 12, 3), amount=99000)
    world.renewal("cus_1", kst(2026, 12, 3) - timedelta(days=365), amount=99000)
    world.booked("cus_1", kst(2026, 12, 3), amount=99000)
    assert kinds_of(world.run()) == {}


def test_missing_next_schedule_names_the_next_period(world: World) -> None:
    world.key("cus_1")
    world.sub("cus_1", anchor_day=20, interval_months=3, started_at=kst(2026, 2, 20))
    world.renewal("cus_1", kst(2026, 11, 20))
    result = world.run()
    assert kinds_of(result) == {"missing_next_schedule": 1}
    row = result["missing_next_schedule"].iloc[0]
    assert (str(row["period_start"]), str(row["period_end"])) == ("2027-02-20", "2027-05-20")


def test_cancel_at_period_end_needs_no_next_schedule_and_a_later_booking_is_an_orphan(world: World) -> None:
    world.key("cus_1")
    world.sub("cus_1", anchor_day=20, status="cancelled", cancelled_at=kst(2026, 12, 20, 0))
    world.renewal("cus_1", kst(2026, 11, 20))
    assert kinds_of(world.run()) == {}
    world.booked("cus_1", kst(2026, 12, 20))
    result = world.run()
    assert kinds_of(result) == {"orphan_schedule": 1}
    assert "cancels at period end" in result["orphan_schedule"].iloc[0]["detail"]


def test_paused_subscription_expects_no_renewal(world: World) -> None:
    world.key("cus_1")
    world.sub("cus_1", anchor_day=20, status="paused")
    world.renewal("cus_1", kst(2026, 9, 20))
    world.failed_renewal("cus_1", kst(2026, 10, 20))
    assert kinds_of(world.run()) == {}


def test_trialing_subscription_first_charge_at_trial_end(world: World) -> None:
    world.key("cus_1")
    world.sub("cus_1", anchor_day=10, status="trialing", started_at=kst(2026, 10, 27),
              trial_ends_at=kst(2026, 11, 10))  # fmt: skip
    world.failed_renewal("cus_1", kst(2026, 11, 10))
    result = world.run()
    assert kinds_of(result) == {"unpaid_renewal": 1}
    # a trial still running with its first charge booked is healthy
    world.execute("DELETE FROM schedules; DELETE FROM payments; DELETE FROM orders")
    world.execute("UPDATE subscriptions SET trial_ends_at = ?", [kst(2026, 12, 10)])
    world.booked("cus_1", kst(2026, 12, 10))
    assert kinds_of(world.run()) == {}


# -- the two new situations -------------------------------------------------------------------------------


def test_charged_for_an_order_the_merchant_cancelled(world: World) -> None:
    imp = world.payment("ord-1", customer_uid="cus_1", at=kst(2026, 11, 20), usage="payment")
    world.order("ord-1", "cus_1", status="cancelled")
    refunded = world.payment("ord-2", status="cancelled", cancel_amount=PRICE, at=kst(2026, 11, 20),
                             paid_at=kst(2026, 11, 20), cancelled_at=kst(2026, 11, 21))  # fmt: skip
    world.order("ord-2", "cus_2", status="cancelled", refunded_amount=PRICE)
    result = world.run()
    assert kinds_of(result) == {"charged_after_cancel": 1}
    row = result["charged_after_cancel"].iloc[0]
    assert row["imp_uid"] == imp and row["severity"] == "critical"
    assert row["suggested_action"] == "manual_review" and int(row["amount_at_risk"]) == PRICE
    assert refunded not in set(result.findings["imp_uid"].dropna())


def test_renewal_charged_after_the_subscription_was_cancelled(world: World) -> None:
    world.key("cus_1")
    world.sub("cus_1", anchor_day=20, status="cancelled", cancelled_at=kst(2026, 11, 5))
    world.renewal("cus_1", kst(2026, 10, 20))
    imp = world.renewal("cus_1", kst(2026, 11, 20))  # the schedule was never revoked and ran
    result = world.run()
    assert kinds_of(result) == {"charged_after_cancel": 1}
    row = result["charged_after_cancel"].iloc[0]
    assert row["imp_uid"] == imp and row["subscription_id"] == "cus_1"
    # inside grace it waits
    assert kinds_of(world.run(as_of=kst(2026, 11, 20, 10, 5))) == {}


def test_chain_that_never_started(world: World) -> None:
    world.key("cus_1")
    started = kst(2026, 10, 12)
    world.sub("cus_1", anchor_day=12, started_at=started)
    imp = world.payment("signup-cus_1", customer_uid="cus_1", at=started, usage="payment")
    world.order("signup-cus_1", "cus_1", status="paid", paid_at=started, imp_uid=imp)
    result = world.run()
    assert kinds_of(result) == {"chain_not_started": 1}
    row = result["chain_not_started"].iloc[0]
    assert row["suggested_action"] == "rebook" and row["subscription_id"] == "cus_1"
    assert (str(row["period_start"]), str(row["period_end"])) == ("2026-11-12", "2026-12-12")
    # still inside its first period: nothing yet
    assert kinds_of(world.run(as_of=kst(2026, 11, 12, 9))) == {}


def test_merchant_charging_itself_each_period_is_no_broken_chain(world: World) -> None:
    world.key("cus_1")
    world.sub("cus_1", anchor_day=12, started_at=kst(2026, 10, 12))
    for mu, at in (("m-10", kst(2026, 10, 12)), ("m-11", kst(2026, 11, 12))):
        imp = world.payment(mu, customer_uid="cus_1", at=at, usage="payment")
        world.order(mu, "cus_1", status="paid", paid_at=at, imp_uid=imp)
    assert kinds_of(world.run()) == {}


# -- coverage ---------------------------------------------------------------------------------------------


def test_orders_older_than_the_synced_range_are_not_judged(world: World) -> None:
    world.synced("payments:paid", kst(2026, 8, 1, 0))
    world.synced("payments:cancelled", kst(2026, 8, 1, 0))
    world.order("old-1", "cus_1", status="paid", paid_at=kst(2025, 3, 1))
    world.order("old-2", "cus_1", status="paid", paid_at=kst(2026, 7, 31))
    world.order("new-1", "cus_1", status="paid", paid_at=kst(2026, 9, 1))
    result = world.run()
    assert keys(result, "phantom_paid", "merchant_uid") == {"new-1"}
    assert result.coverage["orders_before_sync"] == 2
    assert any(
        "2 orders before 2026-08-01 not judged" in n and "--since" in n for n in result.coverage_notes()
    )


def test_orders_paid_after_the_last_sync_wait_for_the_next_one(world: World) -> None:
    cursor = AS_OF - timedelta(hours=2)
    world.synced("payments:paid", kst(2026, 1, 1, 0), cursor)
    world.synced("payments:cancelled", kst(2026, 1, 1, 0), cursor)
    world.order("late-1", "cus_1", status="paid", paid_at=AS_OF - timedelta(hours=1))
    world.order("old-1", "cus_1", status="paid", paid_at=kst(2026, 11, 1))
    result = world.run()
    assert keys(result, "phantom_paid", "merchant_uid") == {"old-1"}
    assert result.coverage["orders_after_sync"] == 1
    assert any("sync again" in n for n in result.coverage_notes())


def test_payments_older_than_the_orders_are_not_unknown(world: World) -> None:
    world.order("ord-1", "cus_1", status="paid", paid_at=kst(2026, 9, 1), ordered_at=kst(2026, 9, 1))
    world.payment("ord-1", customer_uid="cus_1", at=kst(2026, 9, 1))
    world.payment("older", customer_uid="cus_2", at=kst(2026, 3, 1))
    newer = world.payment("newer", customer_uid="cus_2", at=kst(2026, 10, 1))
    result = world.run()
    assert keys(result, "unknown_payment", "imp_uid") == {newer}
    assert result.coverage["payments_outside_orders"] == 1


def test_no_orders_loaded_judges_no_payment_as_unknown(world: World) -> None:
    world.payment("ghost", customer_uid="cus_1", at=kst(2026, 11, 1))
    result = world.run()
    assert kinds_of(result) == {}
    assert any("no orders are loaded" in n for n in result.coverage_notes())


# -- one problem, one finding, one amount ----------------------------------------------------------------


def test_full_refund_of_a_pending_order_is_one_finding_with_nothing_at_risk(world: World) -> None:
    world.payment("ord-1", status="cancelled", cancel_amount=PRICE, at=kst(2026, 11, 20),
                  paid_at=kst(2026, 11, 20), cancelled_at=kst(2026, 11, 21))  # fmt: skip
    world.order("ord-1", "cus_1", status="pending")
    result = world.run()
    assert kinds_of(result) == {"refund_not_reflected": 1}
    assert result.amount_at_risk == 0


def test_partial_refund_of_a_pending_order_is_one_missed_webhook(world: World) -> None:
    world.payment("ord-1", cancel_amount=3000, at=kst(2026, 11, 20))
    world.order("ord-1", "cus_1", status="pending")
    result = world.run()
    assert kinds_of(result) == {"missed_webhook": 1}
    row = result["missed_webhook"].iloc[0]
    assert row["also_kind"] == "refund_not_reflected" and int(row["amount_at_risk"]) == PRICE - 3000
    assert result.amount_at_risk == PRICE - 3000


def test_at_risk_counts_a_merchant_uids_money_once_and_never_mixes_currencies(world: World) -> None:
    world.key("cus_1")
    world.sub("cus_1", anchor_day=20)
    world.renewal("cus_1", kst(2026, 10, 20))
    # the renewal failed, and the handler marked the order paid anyway: two kinds, one merchant_uid
    mu = "sub-cus_1-202611"
    imp = world.payment(mu, customer_uid="cus_1", status="failed", at=kst(2026, 11, 20))
    world.schedule(mu, "cus_1", kst(2026, 11, 20), status="executed", payment_status="failed", imp_uid=imp)
    world.order(mu, "cus_1", status="paid", paid_at=kst(2026, 11, 20, 10, 1))
    world.order("usd-1", "cus_2", status="pending", amount=12, currency="USD")
    world.payment("usd-1", customer_uid="cus_2", amount=12, currency="USD", at=kst(2026, 11, 20))
    result = world.run()
    assert kinds_of(result) == {"phantom_paid": 1, "unpaid_renewal": 1, "missed_webhook": 1}
    assert result.amount_at_risk == PRICE
    assert result.amount_at_risk_by_currency == {"KRW": PRICE, "USD": 12}
    assert "12 USD" in result.headline()


# -- grace, baselines, missing store -----------------------------------------------------------------------


def test_unknown_payment_and_refund_wait_for_grace(world: World) -> None:
    world.order("ord-0", "cus_0", status="pending")
    world.payment("ghost", customer_uid="cus_1", at=AS_OF - timedelta(minutes=5))
    imp = world.payment("ord-1", status="cancelled", cancel_amount=1000, at=kst(2026, 11, 20),
                        paid_at=kst(2026, 11, 20), cancelled_at=AS_OF - timedelta(minutes=5))  # fmt: skip
    world.cancellation(imp, 1000, AS_OF - timedelta(minutes=5))
    world.order("ord-1", "cus_1", status="paid", paid_at=kst(2026, 11, 20))
    assert kinds_of(world.run()) == {}
    assert kinds_of(world.run(as_of=AS_OF + timedelta(minutes=15))) == {
        "unknown_payment": 1,
        "refund_not_reflected": 1,
    }


def test_amount_mismatch_and_a_fresh_cancellation_wait_for_grace(world: World) -> None:
    world.order("ord-1", "cus_1", status="pending", amount=PRICE)
    world.payment("ord-1", customer_uid="cus_1", amount=100, at=AS_OF - timedelta(minutes=5))
    world.key("cus_2")
    world.sub("cus_2", anchor_day=20, status="cancelled", cancelled_at=AS_OF - timedelta(minutes=5))
    world.renewal("cus_2", kst(2026, 11, 20))
    world.booked("cus_2", kst(2026, 12, 20))
    assert kinds_of(world.run()) == {}
    assert kinds_of(world.run(as_of=AS_OF + timedelta(minutes=15))) == {
        "amount_mismatch": 1,
        "orphan_schedule": 1,
    }


def test_adhoc_runs_are_marked_and_never_the_baseline(world: World) -> None:
    world.order("ord-0", "cus_0", status="pending")
    world.payment("ghost", customer_uid="cus_1", at=kst(2026, 11, 20))
    first = world.run()
    assert not first.adhoc and len(first.new) == 1
    past = world.run(as_of=AS_OF - timedelta(days=30))  # before the ghost payment: nothing, ad hoc
    subset = world.run(kinds=["phantom_paid"])
    assert past.adhoc and subset.adhoc and len(past.findings) == 0
    assert "ad-hoc" in past.headline()
    tomorrow = world.run(as_of=AS_OF + timedelta(days=1))
    assert not tomorrow.adhoc and tomorrow.previous_run_id == first.run_id
    assert len(tomorrow.new) == 0 and len(tomorrow.resolved) == 0
    assert tomorrow.findings["first_seen"].iloc[0] == first.findings["first_seen"].iloc[0]


def test_reconcile_on_a_missing_path_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "store.duckdb"
    with pytest.raises(ReconcileError, match="no such store"):
        reconcile(str(missing), progress=False)
    assert not missing.exists() and not missing.parent.exists()
