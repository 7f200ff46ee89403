"""The planner never plans money on a guess: intervals, inferred or inactive subscriptions, passed
periods, several plans on one card, retries per day and per period."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
import pytest

from portone_recon._time import KST, billing_period, billing_period_bounds
from portone_recon.actions import plan_fixes

from .conftest import finding


def kst(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=KST)


def sub(cu: str, amount: int, interval: int, anchor: int, started: str, **kw: Any) -> dict[str, Any]:
    return {
        "customer_uid": cu,
        "subscription_id": kw.pop("subscription_id", cu),
        "status": kw.pop("status", "active"),
        "amount": amount,
        "currency": "KRW",
        "interval_months": interval,
        "anchor_day": anchor,
        "started_at": pd.Timestamp(started, tz=KST),
        "cancelled_at": pd.Timestamp(kw.pop("cancelled_at"), tz=KST) if "cancelled_at" in kw else pd.NaT,
    }


def renewal_paid(cu: str, paid_at: str, **kw: Any) -> dict[str, Any]:
    """A missing_next_schedule finding whose last renewal was paid at ``paid_at``."""
    return finding("missing_next_schedule", customer_uid=cu, event_at=pd.Timestamp(paid_at, tz=KST), **kw)


@pytest.mark.parametrize(
    ("interval", "anchor", "started", "paid", "as_of", "period", "amount"),
    [
        # annual: paid 2026-11-02 -> next year, not next month (the reported bug)
        (12, 2, "2025-11-02", "2026-11-02 10:00", "2026-12-05 09:00", ("2027-11-02", "2028-11-02"), 99000),
        # quarterly, anchor 31, started in January: Jan 31, Apr 30, Jul 31, Oct 31, Jan 31
        (3, 31, "2026-01-31", "2026-10-31 10:00", "2026-11-20 09:00", ("2027-01-31", "2027-04-30"), 29700),
        # half-yearly
        (6, 15, "2026-03-15", "2026-09-15 10:00", "2026-11-20 09:00", ("2027-03-15", "2027-09-15"), 59400),
        # monthly, anchor 31 clamps in February
        (1, 31, "2026-01-31", "2026-01-31 10:00", "2026-02-01 09:00", ("2026-02-28", "2026-03-31"), 9900),
    ],
)
def test_rebook_follows_the_subscription_interval_and_anchor(
    interval: int, anchor: int, started: str, paid: str, as_of: str, period: tuple[str, str], amount: int
) -> None:
    subs = pd.DataFrame([sub("cus_y", amount, interval, anchor, started)])
    (act,) = plan_fixes(
        pd.DataFrame([renewal_paid("cus_y", paid)]), subscriptions=subs, as_of=kst(as_of)
    ).actions
    entry = act.request["json"]["schedules"][0]
    assert (act.target["period_start"], act.target["period_end"]) == period
    assert entry["schedule_at"] == int(kst(f"{period[0]} 10:00").timestamp())
    assert entry["amount"] == amount == act.amount
    assert entry["merchant_uid"] == f"rebook-cus_y-{period[0][:4]}{period[0][5:7]}"


def test_the_period_the_finding_names_wins() -> None:
    subs = pd.DataFrame([sub("cus_y", 99000, 12, 2, "2025-11-02")])
    f = finding("missing_next_schedule", customer_uid="cus_y", period_start="2027-11-02")
    (act,) = plan_fixes(pd.DataFrame([f]), subscriptions=subs, as_of=kst("2026-12-05 09:00")).actions
    assert act.target["period_start"] == "2027-11-02"
    misaligned = finding("missing_next_schedule", customer_uid="cus_y", period_start="2027-10-02")
    plan = plan_fixes(pd.DataFrame([misaligned]), subscriptions=subs, as_of=kst("2026-12-05 09:00"))
    assert plan.actions == () and "not a period start" in plan.unplanned[0]["reason"]


def test_python_periods_equal_the_reconcile_rules_macros() -> None:
    duckdb = pytest.importorskip("duckdb")
    from portone_recon.reconcile.rules import load_support, split_statements

    con = duckdb.connect()
    for stmt in split_statements(load_support("_macros")):
        con.execute(stmt)
    cases = [
        (ts, anchor, interval, base)
        for ts in ("2026-01-31 00:00", "2026-02-28 09:00", "2026-03-30 23:59", "2027-11-02 10:00")
        for anchor in (1, 15, 29, 31)
        for interval in (1, 3, 12)
        for base in (0, 2026 * 12 + 1, 2025 * 12 + 10)
    ]
    for ts, anchor, interval, base in cases:
        at = kst(ts)
        got = con.execute(
            "SELECT recon_period($t, $a, $i, $b), "
            "recon_period_start(recon_period($t, $a, $i, $b), $a, $i, $b), "
            "recon_period_end(recon_period($t, $a, $i, $b), $a, $i, $b)",
            {"t": at, "a": anchor, "i": interval, "b": base},
        ).fetchone()
        assert got is not None
        number = billing_period(at, anchor, interval, base)
        assert (number, *billing_period_bounds(number, anchor, interval, base)) == got, (
            ts,
            anchor,
            interval,
            base,
        )


def test_a_passed_renewal_is_a_decision_for_a_person_not_a_skipped_period() -> None:
    subs = pd.DataFrame([sub("cus_m", 9900, 1, 5, "2026-01-05")])
    plan = plan_fixes(
        pd.DataFrame([renewal_paid("cus_m", "2026-10-05 10:00")]),
        subscriptions=subs,
        as_of=kst("2026-11-20 09:00"),
    )
    assert plan.actions == ()
    reason = plan.unplanned[0]["reason"]
    assert "needs a decision" in reason and "2026-11-05" in reason and "has passed" in reason


@pytest.mark.parametrize(
    ("row", "expect"),
    [
        (sub("cus_s", 9900, 1, 5, "2026-01-05", status="cancelled"), "is cancelled"),
        (sub("cus_s", 9900, 1, 5, "2026-01-05", status="paused"), "is paused"),
        (sub("cus_s", 9900, 1, 5, "2026-01-05", status="trialing"), "is trialing"),
        (sub("cus_other", 9900, 1, 5, "2026-01-05"), "no loaded subscription"),
    ],
)
def test_no_money_for_a_subscription_that_is_not_active(row: dict[str, Any], expect: str) -> None:
    fs = pd.DataFrame(
        [
            renewal_paid("cus_s", "2026-11-05 10:00"),
            finding(
                "unpaid_renewal",
                customer_uid="cus_s",
                schedule_merchant_uid="sub-cus_s-202611",
                portone_status="failed",
                portone_amount=9900,
                event_at=pd.Timestamp("2026-11-05 10:00", tz=KST),
            ),
        ]
    )
    plan = plan_fixes(fs, subscriptions=pd.DataFrame([row]), as_of=kst("2026-11-20 09:00"))
    assert plan.actions == ()
    assert len(plan.unplanned) == 2 and all(expect in u["reason"] for u in plan.unplanned), plan.unplanned


def test_cancel_at_period_end_books_nothing_after_it_but_retries_the_current_period() -> None:
    subs = pd.DataFrame([sub("cus_s", 9900, 1, 5, "2026-01-05", cancelled_at="2026-12-05")])
    rebook = plan_fixes(
        pd.DataFrame([renewal_paid("cus_s", "2026-11-05 10:00")]),
        subscriptions=subs,
        as_of=kst("2026-11-20 09:00"),
    )
    assert rebook.actions == () and "cancels at 2026-12-05" in rebook.unplanned[0]["reason"]
    failed = finding(
        "unpaid_renewal",
        customer_uid="cus_s",
        schedule_merchant_uid="sub-cus_s-202611",
        portone_status="failed",
        portone_amount=9900,
        event_at=pd.Timestamp("2026-11-05 10:00", tz=KST),
    )
    plan = plan_fixes(pd.DataFrame([failed]), subscriptions=subs, as_of=kst("2026-11-20 09:00"))
    # the current period is still owed; no follow-up booking after the cancellation
    assert [a.kind for a in plan.actions] == ["retry"]


def test_inferred_subscriptions_plan_no_money_unless_allowed() -> None:
    fs = pd.DataFrame(
        [
            renewal_paid("cus_i", "2026-11-05 10:00", local_amount=9900),
            finding(
                "unpaid_renewal",
                customer_uid="cus_j",
                schedule_merchant_uid="sub-cus_j-202611",
                portone_status="failed",
                portone_amount=4900,
                local_amount=4900,
                event_at=pd.Timestamp("2026-11-10 10:00", tz=KST),
            ),
            finding("orphan_schedule", customer_uid="cus_k", schedule_merchant_uid="sub-cus_k-202612"),
            finding(
                "missed_webhook", customer_uid="cus_l", merchant_uid="m_l", imp_uid="imp_l", local_amount=1
            ),
        ]
    )
    plan = plan_fixes(fs, as_of=kst("2026-11-20 09:00"))
    assert sorted(a.kind for a in plan.actions) == ["reverify", "unschedule"]  # no money moves
    needs = [u for u in plan.unplanned if "needs subscriptions" in u["reason"]]
    assert {u["kind"] for u in needs} == {"missing_next_schedule", "unpaid_renewal"}
    orphan = next(a for a in plan.actions if a.kind == "unschedule")
    assert orphan.target["orphan_cause"] == "unconfirmed"  # apply must confirm the key's deletion
    allowed = plan_fixes(fs, as_of=kst("2026-11-20 09:00"), allow_inferred=True)
    assert sorted(a.kind for a in allowed.actions) == ["rebook", "rebook", "retry", "reverify", "unschedule"]
    assert allowed.params["allow_inferred"] is True


def test_two_subscriptions_on_one_card() -> None:
    subs = pd.DataFrame(
        [
            sub("cus_t", 9900, 1, 5, "2026-01-05", subscription_id="sub_music"),
            sub("cus_t", 4900, 1, 20, "2026-03-20", subscription_id="sub_video"),
        ]
    )
    unnamed = plan_fixes(
        pd.DataFrame([renewal_paid("cus_t", "2026-11-05 10:00")]),
        subscriptions=subs,
        as_of=kst("2026-11-06 09:00"),
    )
    assert unnamed.actions == () and "2 subscriptions" in unnamed.unplanned[0]["reason"]
    named = plan_fixes(
        pd.DataFrame([renewal_paid("cus_t", "2026-11-20 10:00", subscription_id="sub_video")]),
        subscriptions=subs,
        as_of=kst("2026-11-21 09:00"),
    )
    (act,) = named.actions
    assert act.amount == 4900 and act.target["subscription_id"] == "sub_video"
    assert (
        act.target["merchant_uid"] == "rebook-sub_video-202612" and act.target["period_start"] == "2026-12-20"
    )


def test_retry_attempts_are_per_day_and_bounded() -> None:
    subs = pd.DataFrame([sub("cus_r", 14900, 1, 25, "2026-01-25")])
    f = finding(
        "unpaid_renewal",
        customer_uid="cus_r",
        schedule_merchant_uid="sub-cus_r-202611",
        portone_status="failed",
        portone_amount=14900,
        event_at=pd.Timestamp("2026-11-25 10:00", tz=KST),
    )
    day1 = plan_fixes(pd.DataFrame([f]), subscriptions=subs, as_of=kst("2026-11-26 06:00"))
    day2 = plan_fixes(pd.DataFrame([f]), subscriptions=subs, as_of=kst("2026-11-27 06:00"))
    r1, r2 = day1.actions[0], day2.actions[0]
    assert r1.kind == r2.kind == "retry" and r1.action_id != r2.action_id
    assert r1.target["attempt_day"] == "2026-11-26"
    capped = plan_fixes(
        pd.DataFrame([f]),
        subscriptions=subs,
        as_of=kst("2026-11-28 06:00"),
        retries_sent={"sub-cus_r-202611": 3},
    )
    assert capped.actions == () and "retried 3 times" in capped.unplanned[0]["reason"]
    over = plan_fixes(pd.DataFrame([f]), subscriptions=subs, as_of=kst("2026-12-25 00:00"))
    assert over.actions == () and "period ended on 2026-12-25" in over.unplanned[0]["reason"]
    odd = {**f, "portone_amount": 19900}
    refused = plan_fixes(pd.DataFrame([odd]), subscriptions=subs, as_of=kst("2026-11-26 06:00"))
    assert refused.actions == () and "19,900" in refused.unplanned[0]["reason"]


def test_other_currencies_are_left_to_a_person() -> None:
    subs = pd.DataFrame([{**sub("cus_u", 999, 1, 5, "2026-01-05"), "currency": "USD"}])
    plan = plan_fixes(
        pd.DataFrame([renewal_paid("cus_u", "2026-11-05 10:00")]),
        subscriptions=subs,
        as_of=kst("2026-11-20 09:00"),
    )
    assert plan.actions == () and "in USD" in plan.unplanned[0]["reason"]


@pytest.mark.parametrize(("as_of", "planned"), [("2026-11-20 09:00", True), ("2026-12-06 09:00", False)])
def test_a_chain_that_never_started_books_the_period_it_names(as_of: str, planned: bool) -> None:
    subs = pd.DataFrame([sub("cus_n", 9900, 1, 5, "2026-10-05")])
    f = finding(
        "chain_not_started",
        customer_uid="cus_n",
        subscription_id="cus_n",
        period_start="2026-12-05",
        period_end="2027-01-05",
        local_amount=9900,
    )
    plan = plan_fixes(pd.DataFrame([f]), subscriptions=subs, as_of=kst(as_of))
    if planned:
        (act,) = plan.actions
        assert act.kind == "rebook" and act.target["period_start"] == "2026-12-05" and act.amount == 9900
    else:
        assert plan.actions == () and "needs a decision" in plan.unplanned[0]["reason"]


def test_a_booking_after_a_cancel_at_period_end_is_revoked_and_a_lost_card_is_not() -> None:
    subs = pd.DataFrame([sub("cus_p", 9900, 1, 5, "2026-01-05", cancelled_at="2026-12-05")])
    after = finding(
        "orphan_schedule",
        customer_uid="cus_p",
        schedule_merchant_uid="sub-cus_p-202612",
        event_at=pd.Timestamp("2026-12-05 10:00", tz=KST),
    )
    (act,) = plan_fixes(pd.DataFrame([after]), subscriptions=subs, as_of=kst("2026-11-20 09:00")).actions
    assert act.kind == "unschedule" and act.target["orphan_cause"] == "subscription_cancelled"
    active = pd.DataFrame([sub("cus_p", 9900, 1, 5, "2026-01-05")])
    plan = plan_fixes(pd.DataFrame([after]), subscriptions=active, as_of=kst("2026-11-20 09:00"))
    assert plan.actions == () and "ask for a new card" in plan.unplanned[0]["reason"]
