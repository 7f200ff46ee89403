"""Nothing automatic moves money for a customer whose money a finding hands to a person."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
import pytest

from portone_recon._time import KST
from portone_recon.actions import apply, plan_fixes, record_plan
from portone_recon.actions.holds import HOLD_KINDS, is_hold
from portone_recon.store import Store

from .conftest import (
    AS_OF,
    SUBSCRIPTIONS,
    build_merchant,
    finding,
    findings,
    load_local,
    load_subs,
    store_run,
    writes,
)

#: Each manual-review kind, as reconcile reports it for cus_b (whose renewal failed) and cus_c.
HOLDERS: dict[str, dict[str, Any]] = {
    "phantom_paid": {"merchant_uid": "ord-cus_b-202610b", "suggested_action": "manual_review"},
    "amount_mismatch": {
        "merchant_uid": "sub-cus_b-202610",
        "imp_uid": "imp_x",
        "suggested_action": "manual_review",
    },
    "duplicate_charge": {"imp_uid": "imp_dup", "suggested_action": "refund_review"},
    "charged_after_cancel": {"merchant_uid": "ord-cus_b-cancelled", "suggested_action": "refund_review"},
    "unknown_payment": {"merchant_uid": "console-cus_b-1", "suggested_action": "manual_review"},
}


def holder(kind: str, cu: str = "cus_b", **kw: Any) -> dict[str, Any]:
    return finding(
        kind, customer_uid=cu, severity="critical", finding_id=f"h_{kind}_{cu}", **{**HOLDERS[kind], **kw}
    )


def fixable() -> list[dict[str, Any]]:
    """cus_b: a failed renewal (retry + rebook) and a duplicate booking (unschedule)."""
    return [
        finding(
            "unpaid_renewal",
            customer_uid="cus_b",
            schedule_merchant_uid="sub-cus_b-202611",
            portone_status="failed",
            portone_amount=14900,
            event_at=pd.Timestamp("2026-11-25 10:00", tz=KST),
            finding_id="f_retry",
        ),
        finding(
            "duplicate_schedule",
            customer_uid="cus_b",
            schedule_merchant_uid="sub-cus_b-202612-x",
            detail="2 schedules booked in one billing period; keep sub-cus_b-202612, revoke this one (x)",
            finding_id="f_dup",
        ),
    ]


def test_every_review_kind_holds() -> None:
    assert set(HOLDERS) == HOLD_KINDS
    assert is_hold("a_future_kind", "manual_review") and is_hold("another", "refund_review")
    assert not is_hold("missing_next_schedule", "rebook")


@pytest.mark.parametrize("kind", sorted(HOLDERS))
def test_a_review_finding_holds_money_but_not_unschedules(kind: str) -> None:
    frame = pd.DataFrame([holder(kind), *fixable()])
    plan = plan_fixes(frame, subscriptions=SUBSCRIPTIONS, as_of=AS_OF)
    assert [a.kind for a in plan.actions] == ["unschedule"]  # risk-reducing actions stay planned
    held = plan.held_frame()
    assert sorted(held["kind"]) == ["rebook", "retry"]
    assert set(held["held_by"]) == {f"h_{kind}_cus_b"} | set(held.loc[held["kind"] == "rebook", "held_by"])
    retry_hold = held[held["kind"] == "retry"].iloc[0]
    assert retry_hold["held_by_kind"] == kind
    reasons = {u["finding_id"]: u["reason"] for u in plan.unplanned}
    key = HOLDERS[kind].get("merchant_uid") or HOLDERS[kind].get("imp_uid")
    assert reasons["f_retry"] == f"on hold: {kind} {key} needs review (finding h_{kind}_cus_b)"
    assert "held" in repr(plan) or "on hold" in repr(plan)


@pytest.mark.parametrize("kind", sorted(HOLDERS))
def test_include_held_plans_and_marks_and_triage_lifts(kind: str) -> None:
    frame = pd.DataFrame([holder(kind), *fixable()])
    marked = plan_fixes(frame, subscriptions=SUBSCRIPTIONS, as_of=AS_OF, include_held=True)
    money = [a for a in marked.actions if a.moves_money]
    assert sorted(a.kind for a in money) == ["rebook", "retry"]
    retry = next(a for a in money if a.kind == "retry")
    assert retry.held_by == f"h_{kind}_cus_b" and marked.params["include_held"] is True
    assert marked.to_frame().set_index("kind").loc["retry", "held_by"] == f"h_{kind}_cus_b"
    # a person acknowledged the review finding: the hold lifts and nothing is marked
    lifted = plan_fixes(frame, subscriptions=SUBSCRIPTIONS, as_of=AS_OF, triaged=[f"h_{kind}_cus_b"])
    assert sorted(a.kind for a in lifted.actions) == ["rebook", "retry", "unschedule"]
    assert all(a.held_by is None for a in lifted.actions) and not lifted.held
    # the findings frame says so itself (reconcile's triage columns)
    acked = frame.assign(triage_state=["acknowledged", None, None])
    assert sorted(a.kind for a in plan_fixes(acked, subscriptions=SUBSCRIPTIONS, as_of=AS_OF).actions) == [
        "rebook",
        "retry",
        "unschedule",
    ]


def test_a_hold_on_another_subscription_of_the_same_card_does_not_hold_this_one() -> None:
    subs = pd.DataFrame(
        [
            {
                "customer_uid": "cus_b",
                "subscription_id": "music",
                "status": "active",
                "amount": 14900,
                "anchor_day": 25,
            },
            {
                "customer_uid": "cus_b",
                "subscription_id": "video",
                "status": "active",
                "amount": 4900,
                "anchor_day": 3,
            },
        ]
    )
    rows = [{**f, "subscription_id": "music"} for f in fixable()]
    other = holder("duplicate_charge", subscription_id="video")
    plan = plan_fixes(pd.DataFrame([other, *rows]), subscriptions=subs, as_of=AS_OF)
    assert sorted(a.kind for a in plan.actions) == ["rebook", "retry", "unschedule"]
    # a hold that names no subscription holds all of the customer's
    plan = plan_fixes(pd.DataFrame([holder("unknown_payment"), *rows]), subscriptions=subs, as_of=AS_OF)
    assert [a.kind for a in plan.actions] == ["unschedule"]


def test_apply_skips_money_when_a_review_finding_appears_after_the_plan(world: Any, store: Store) -> None:
    client = world.client()
    ids = build_merchant(client, lambda to: world.advance(to=to))
    load_local(store)
    load_subs(store)
    plan = record_plan(
        store, plan_fixes(store_run(store, findings(ids)), subscriptions=SUBSCRIPTIONS), now=AS_OF
    )
    assert any(a.kind == "retry" and a.customer_uid == "cus_b" for a in plan.actions)
    # a later reconcile (before the apply) finds that cus_b's October order was marked paid by hand
    store_run(
        store,
        pd.DataFrame([holder("phantom_paid")]),
        as_of=datetime(2026, 11, 27, 6, 5, tzinfo=KST),
        run_id="run_later",
    )
    world.requests.clear()
    report = apply(plan, client, store, dry_run=False, progress=False)
    rows = report.outcomes.set_index(["kind", "customer_uid"])
    assert rows.loc[("retry", "cus_b"), "status"] == "skipped"
    assert "on hold: phantom_paid ord-cus_b-202610b needs review" in rows.loc[("retry", "cus_b"), "message"]
    assert rows.loc[("rebook", "cus_b"), "status"] == "skipped"  # follows the skipped retry
    assert rows.loc[("rebook", "cus_a"), "status"] == "succeeded"  # other customers are not held
    sent = writes(world.requests)
    assert "POST /subscribe/payments/schedule/sub-cus_b-202611/retry" not in sent
    assert sent.count("POST /subscribe/payments/unschedule") == 2  # unschedules are never held


def test_acknowledging_the_review_finding_lifts_the_hold_on_the_next_plan(world: Any, store: Store) -> None:
    from portone_recon import acknowledge, unacknowledge
    from portone_recon.actions import plan_for_store

    client = world.client()
    ids = build_merchant(client, lambda to: world.advance(to=to))
    load_local(store)
    load_subs(store)
    store_run(store, pd.DataFrame([holder("phantom_paid"), *findings(ids).to_dict("records")]))
    held = plan_for_store(store)
    assert [(h["kind"], h["held_by"]) for h in held.held] == [
        ("retry", "h_phantom_paid_cus_b"),
        ("rebook", "h_phantom_paid_cus_b"),
    ]
    acknowledge(
        store, ["h_phantom_paid_cus_b"], note="paid by bank transfer on 11-26; retry is fine", by="kim"
    )
    lifted = plan_for_store(store)
    assert not lifted.held
    assert {a.kind for a in lifted.actions if a.customer_uid == "cus_b"} == {"retry", "rebook"}
    # applied with the acknowledgement in force: the retry goes out
    report = apply(lifted, client, store, dry_run=False, progress=False)
    assert (
        report.outcomes.set_index(["kind", "customer_uid"]).loc[("retry", "cus_b"), "status"] == "succeeded"
    )
    # taken back: the next plan holds again
    unacknowledge(store, ["h_phantom_paid_cus_b"])
    assert plan_for_store(store).held


def test_the_daily_report_shows_held_actions_apart_with_their_finding(world: Any, store: Store) -> None:
    from portone_recon.reports import build_daily

    ids = build_merchant(world.client(), lambda to: world.advance(to=to))
    load_local(store)
    load_subs(store)
    store_run(store, pd.DataFrame([holder("phantom_paid"), *findings(ids).to_dict("records")]))
    report = build_daily(store.path, as_of=AS_OF, reconcile=False)
    assert report.held is not None and sorted(report.held["kind"]) == ["rebook", "retry"]
    assert set(report.held["held_by"]) == {"h_phantom_paid_cus_b"}
    html = report.plan_html()
    assert "보류된 조치 2건" in html and "h_phantom_paid_cus_b" in html
    assert report.summary()["held_actions"] == 2
    # the plan table above it holds no money-moving action for cus_b
    plan = report.plan
    assert plan is not None
    assert plan[(plan["customer_uid"] == "cus_b") & plan["kind"].isin(["retry", "rebook"])].empty
