"""plan_fixes is pure: findings in, a deterministic FixPlan out."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

from portone_recon._time import KST
from portone_recon.actions import FixPlan, plan_fixes, rebook_merchant_uid
from portone_recon.actions.plan import ACTION_KINDS
from portone_recon.errors import ActionError

from .conftest import finding

AS_OF = datetime(2026, 11, 27, 6, 0, tzinfo=KST)


SUBS = pd.DataFrame(
    [
        {"customer_uid": "cus_1", "status": "active", "amount": 9900, "anchor_day": 31},
        {"customer_uid": "cus_2", "status": "active", "amount": 14900, "anchor_day": 15},
        {"customer_uid": "cus_3", "status": "active", "amount": 4900, "anchor_day": 3},
        {"customer_uid": "cus_4", "status": "cancelled", "amount": 4900, "anchor_day": 3},
    ]
)


def findings_frame() -> pd.DataFrame:
    return pd.DataFrame(
        [
            finding(
                "missed_webhook",
                customer_uid="cus_1",
                merchant_uid="sub-cus_1-202610",
                imp_uid="imp_000000000001",
                portone_status="paid",
                local_status="pending",
                portone_amount=9900,
                local_amount=9900,
            ),
            finding("missing_next_schedule", customer_uid="cus_1", local_amount=9900),
            finding(
                "unpaid_renewal",
                customer_uid="cus_2",
                schedule_merchant_uid="sub-cus_2-202611",
                portone_status="failed",
                portone_amount=14900,
                event_at=pd.Timestamp("2026-11-15 10:00", tz=KST),
            ),
            finding(
                "duplicate_schedule",
                customer_uid="cus_3",
                schedule_merchant_uid="sub-cus_3-202612-dup",
                portone_amount=4900,
                detail="2 schedules booked in one billing period; keep sub-cus_3-202612, revoke this one (x)",
            ),
            finding("orphan_schedule", customer_uid="cus_4", schedule_merchant_uid="sub-cus_4-202612"),
            finding(
                "schedule_amount_mismatch",
                customer_uid="cus_3",
                schedule_merchant_uid="sub-cus_3-202612",
                portone_amount=3900,
                local_amount=4900,
                event_at=pd.Timestamp("2026-12-03 10:00", tz=KST),
            ),
            finding("amount_mismatch", customer_uid="cus_9", merchant_uid="m9", imp_uid="imp_9"),
            finding("duplicate_charge", customer_uid="cus_8", imp_uid="imp_8"),
        ]
    )


def test_each_fixable_kind_maps_to_its_action_in_safe_order() -> None:
    plan = plan_fixes(findings_frame(), subscriptions=SUBS, as_of=AS_OF)
    kinds = [a.kind for a in plan.actions]
    # unschedule first (so a replacement is booked after the wrong one is revoked), rebook last
    assert kinds == sorted(kinds, key=ACTION_KINDS.index)
    by = {(a.kind, a.key) for a in plan.actions}
    assert ("reverify", "sub-cus_1-202610") in by
    assert ("unschedule", "sub-cus_3-202612-dup") in by
    assert ("unschedule", "sub-cus_4-202612") in by
    assert ("unschedule", "sub-cus_3-202612") in by
    assert ("retry", "sub-cus_2-202611") in by
    rebooks = {a.customer_uid: a for a in plan.actions if a.kind == "rebook"}
    assert set(rebooks) == {"cus_1", "cus_2", "cus_3"}
    assert {u["kind"] for u in plan.unplanned} == {"amount_mismatch", "duplicate_charge"}
    assert all(u["reason"] for u in plan.unplanned)


def test_action_ids_are_deterministic_and_unique() -> None:
    a = plan_fixes(findings_frame(), subscriptions=SUBS, as_of=AS_OF)
    b = plan_fixes(findings_frame().iloc[::-1], subscriptions=SUBS, as_of=AS_OF)
    assert [x.action_id for x in a.actions] == [x.action_id for x in b.actions]
    assert len({x.action_id for x in a.actions}) == len(a.actions)
    assert all(re.fullmatch(r"act_[0-9a-f]{20}", x.action_id) for x in a.actions)


def test_rebook_request_anchor_clamped_at_month_end() -> None:
    # anchor 31, as_of 31 Jan 12:00 KST -> next period 28 Feb 10:00 KST, period ends 31 Mar
    plan = plan_fixes(
        pd.DataFrame([finding("missing_next_schedule", customer_uid="cus_1")]),
        subscriptions=SUBS,
        as_of=datetime(2026, 1, 31, 12, 0, tzinfo=KST),
    )
    (act,) = plan.actions
    entry = act.request["json"]["schedules"][0]
    assert act.request["method"] == "POST"
    assert act.request["path"] == "/subscribe/payments/schedule"
    assert act.request["json"]["customer_uid"] == "cus_1"
    assert entry["schedule_at"] == int(datetime(2026, 2, 28, 10, 0, tzinfo=KST).timestamp())
    assert entry["amount"] == 9900 == act.amount
    assert entry["merchant_uid"] == "rebook-cus_1-202602"
    assert act.target["period_start"] == "2026-02-28"
    assert act.target["period_end"] == "2026-03-31"


def test_rebook_before_the_hour_on_anchor_day_books_today() -> None:
    plan = plan_fixes(
        pd.DataFrame([finding("missing_next_schedule", customer_uid="cus_2")]),
        subscriptions=SUBS,
        as_of=datetime(2026, 11, 15, 9, 59, tzinfo=KST),
        schedule_hour=10,
    )
    entry = plan.actions[0].request["json"]["schedules"][0]
    assert entry["schedule_at"] == int(datetime(2026, 11, 15, 10, 0, tzinfo=KST).timestamp())


def test_schedule_amount_mismatch_rebooks_same_period_with_subscription_amount() -> None:
    plan = plan_fixes(findings_frame(), ["schedule_amount_mismatch"], subscriptions=SUBS, as_of=AS_OF)
    assert [a.kind for a in plan.actions] == ["unschedule", "rebook"]
    rb = plan.actions[1]
    assert rb.amount == 4900
    assert rb.target["period_start"] == "2026-12-03"
    assert rb.target["merchant_uid"] != "sub-cus_3-202612"  # never collides with the revoked one


def test_retry_is_followed_by_a_rebook_that_requires_it() -> None:
    plan = plan_fixes(findings_frame(), ["unpaid_renewal"], subscriptions=SUBS, as_of=AS_OF)
    retry, rebook = plan.actions
    assert retry.kind == "retry" and rebook.kind == "rebook"
    assert retry.request["path"] == "/subscribe/payments/schedule/sub-cus_2-202611/retry"
    assert retry.target["period_start"] == "2026-11-15" and retry.target["period_end"] == "2026-12-15"
    assert rebook.target["requires"] == retry.action_id


def test_stuck_scheduled_renewal_is_left_for_review() -> None:
    f = finding("unpaid_renewal", customer_uid="cus_2", schedule_merchant_uid="s", portone_status="scheduled")
    plan = plan_fixes(pd.DataFrame([f]), subscriptions=SUBS, as_of=AS_OF)
    assert plan.actions == ()
    assert "stuck" in plan.unplanned[0]["reason"]


def test_cancelled_subscription_is_never_rebooked() -> None:
    plan = plan_fixes(
        pd.DataFrame([finding("missing_next_schedule", customer_uid="cus_4")]),
        subscriptions=SUBS,
        as_of=AS_OF,
    )
    assert plan.actions == ()
    assert "cancelled" in plan.unplanned[0]["reason"]


def test_filters_by_kind_action_kind_and_customer() -> None:
    f = findings_frame()
    assert {a.kind for a in plan_fixes(f, ["rebook"], subscriptions=SUBS, as_of=AS_OF)} == {"rebook"}
    assert {a.kind for a in plan_fixes(f, ["missed_webhook"], subscriptions=SUBS, as_of=AS_OF)} == {
        "reverify"
    }
    only = plan_fixes(f, customers=["cus_3"], subscriptions=SUBS, as_of=AS_OF)
    assert {a.customer_uid for a in only} == {"cus_3"}
    with pytest.raises(ActionError, match="unknown kind"):
        plan_fixes(f, ["nonsense"], as_of=AS_OF)


def test_without_subscriptions_no_money_moves_unless_allowed() -> None:
    f = finding("missing_next_schedule", customer_uid="cus_x", local_amount=7700, anchor_day=30)
    plan = plan_fixes(pd.DataFrame([f]), as_of=datetime(2027, 2, 1, tzinfo=KST))
    assert plan.actions == ()
    assert "needs subscriptions" in plan.unplanned[0]["reason"]
    (act,) = plan_fixes(
        pd.DataFrame([f]), as_of=datetime(2027, 2, 1, tzinfo=KST), allow_inferred=True
    ).actions
    assert act.amount == 7700
    assert act.target["period_start"] == "2027-02-28"


def test_merchant_uid_rules() -> None:
    assert rebook_merchant_uid("cus_000123", datetime(2026, 12, 1).date()) == "rebook-cus_000123-202612"
    long_a = rebook_merchant_uid("x" * 60 + "a", datetime(2026, 12, 1).date())
    long_b = rebook_merchant_uid("x" * 60 + "b", datetime(2026, 12, 1).date())
    odd = rebook_merchant_uid("고객 #7/8", datetime(2026, 12, 1).date())
    for uid in (long_a, long_b, odd):
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,40}", uid), uid
        assert uid.endswith("-202612")
    assert long_a != long_b
    assert rebook_merchant_uid("x" * 60 + "a", datetime(2026, 12, 1).date()) == long_a


def test_json_round_trip_and_rendering(tmp_path: Path) -> None:
    plan = plan_fixes(findings_frame(), subscriptions=SUBS, as_of=AS_OF)
    path = tmp_path / "plan.json"
    plan.save(path)
    back = FixPlan.load(path)
    assert back.actions == plan.actions
    assert back.as_of == AS_OF
    assert back.unplanned == tuple(dict(u) for u in plan.unplanned)
    assert "정기결제" in path.read_text(encoding="utf-8")  # Korean kept readable
    assert "\n" not in repr(plan) and "actions" in repr(plan)
    html = plan._repr_html_()
    assert "<table" in html and "rebook" in html
    frame = plan.to_frame()
    assert list(frame["action_id"]) == [a.action_id for a in plan.actions]
    assert FixPlan(())._repr_html_()


def test_load_refuses_bad_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(ActionError, match=r"bad\.json"):
        FixPlan.load(bad)
    bad.write_text('{"version": 2, "actions": [{"action_id": "a", "kind": "explode"}]}', encoding="utf-8")
    with pytest.raises(ActionError, match="action 1 \\(a\\): field 'target' is missing"):
        FixPlan.load(bad)
    bad.write_text('{"version": 1, "actions": []}', encoding="utf-8")
    with pytest.raises(ActionError, match=r"version 1.*re-plan"):
        FixPlan.load(bad)
    with pytest.raises(ActionError, match="cannot read"):
        FixPlan.load(tmp_path / "missing.json")


def test_accepts_a_result_object() -> None:
    class Result:
        findings = findings_frame()
        as_of = AS_OF
        run_id = "run_1"

    plan = plan_fixes(Result(), subscriptions=SUBS)
    assert plan.run_id == "run_1" and plan.as_of == AS_OF and len(plan) > 0


def test_what_a_request_moves_is_counted_from_the_request() -> None:
    from portone_recon.actions.requests import Money, money_of

    entries = [
        {"merchant_uid": f"m{i}", "schedule_at": 1, "amount": 82500, "currency": "KRW"} for i in range(12)
    ]
    request = {"json": {"customer_uid": "c", "schedules": entries}}
    assert money_of("rebook", {"amount": 82500}, request) == Money(12, 990_000, "KRW")
    assert money_of("retry", {"amount": 14900, "currency": "KRW"}, {}) == Money(1, 14900, "KRW")
    assert money_of("unschedule", {}, {"json": {"merchant_uid": ["x"]}}).amount == 0
