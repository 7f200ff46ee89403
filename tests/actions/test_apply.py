"""apply against the in-process sandbox: journal, idempotency, dry-run, unknown outcomes, the lock."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pandas as pd
import pytest

from portone_recon.actions import apply, journal_frame, plan_fixes, rebook, reverify
from portone_recon.actions.journal import apply_lock, lock_path_for
from portone_recon.errors import ApplyInProgressError, CapExceededError
from portone_recon.store import Store

from .conftest import AS_OF, SUBSCRIPTIONS, build_merchant, findings, load_local, load_subs, store_run, writes


@pytest.fixture
def setup(world: Any, store: Store) -> tuple[Any, Any, Store, Any]:
    client = world.client()
    ids = build_merchant(client, lambda to: world.advance(to=to))
    load_local(store)
    load_subs(store)
    plan = plan_fixes(store_run(store, findings(ids)), subscriptions=SUBSCRIPTIONS)
    world.requests.clear()
    return world, client, store, plan


def status_of(report: Any) -> dict[str, str]:
    return {f"{r.kind}:{r.key}": r.status for r in report.outcomes.itertuples()}


def test_plan_has_the_expected_actions(setup: Any) -> None:
    _, _, _, plan = setup
    assert Counter(a.kind for a in plan.actions) == {"unschedule": 2, "reverify": 2, "retry": 1, "rebook": 2}


def test_dry_run_sends_no_write_and_writes_no_journal(setup: Any) -> None:
    world, client, store, plan = setup
    report = apply(plan, client, store, progress=False)
    assert report.dry_run
    assert writes(world.requests) == []
    assert journal_frame(store).empty
    st = status_of(report)
    assert st["reverify:sub-cus_a-202611"] == "would_send"
    assert st["unschedule:sub-cus_c-202612-x"] == "would_send"
    assert st["retry:sub-cus_b-202611"] == "would_send"
    # the amount-mismatch reverify would not mark anything paid
    assert st["reverify:sub-cus_e-202611"] == "would_skip"
    requests = " ".join(report.outcomes["request"])
    assert "POST /subscribe/payments/schedule " in requests
    assert '"merchant_uid": "rebook-cus_a-202612"' in requests and "2026-12-03 10:00 KST" in requests
    assert report.exit_code == 1
    assert (
        store.query("SELECT status FROM orders WHERE merchant_uid = 'sub-cus_a-202611'")["status"][0]
        == "pending"
    )


def test_apply_twice_has_exactly_one_side_effect_per_action(setup: Any) -> None:
    world, client, store, plan = setup
    first = apply(plan, client, store, dry_run=False, progress=False)
    st = status_of(first)
    assert st["reverify:sub-cus_a-202611"] == "succeeded"
    assert st["unschedule:sub-cus_c-202612-x"] == "succeeded"
    assert st["unschedule:sub-cus_d-202612"] == "succeeded"
    assert st["retry:sub-cus_b-202611"] == "succeeded"
    assert st["rebook:rebook-cus_a-202612"] == "succeeded"
    assert st["rebook:rebook-cus_b-202612"] == "succeeded"
    assert st["reverify:sub-cus_e-202611"] == "failed"  # amount mismatch: reported, never auto-fixed
    first_writes = Counter(writes(world.requests))
    assert first_writes == {
        "POST /subscribe/payments/unschedule": 2,
        "POST /subscribe/payments/schedule/sub-cus_b-202611/retry": 1,
        "POST /subscribe/payments/schedule": 2,
    }

    second = apply(plan, client, store, dry_run=False, progress=False)
    assert set(second.outcomes["outcome"]) == {"already"}
    assert Counter(writes(world.requests)) == first_writes  # nothing sent the second time

    # PortOne state: one new schedule per rebook, revoked duplicates, one paid retry
    assert world.schedules["rebook-cus_a-202612"]["schedule_status"] == "scheduled"
    assert world.schedules["rebook-cus_a-202612"]["amount"] == 9900
    assert world.schedules["rebook-cus_b-202612"]["amount"] == 14900
    assert world.schedules["sub-cus_c-202612-x"]["schedule_status"] == "revoked"
    assert world.schedules["sub-cus_c-202612"]["schedule_status"] == "scheduled"
    paid_b = [world.payments[i] for i in world.payment_ids_by_merchant_uid["sub-cus_b-202611"]]
    assert [p["status"] for p in paid_b] == ["failed", "paid"]

    # local orders: reverified and retried ones are paid, the mismatched one is untouched
    orders = store.query("SELECT merchant_uid, status, imp_uid FROM orders ORDER BY merchant_uid")
    got = dict(zip(orders["merchant_uid"], orders["status"], strict=True))
    assert got["sub-cus_a-202611"] == "paid"
    assert got["sub-cus_b-202611"] == "paid"
    assert got["sub-cus_e-202611"] == "pending"

    j = journal_frame(store)
    assert len(j) == len(plan.actions)
    assert (j["attempts"] <= 1).all()
    mismatch = j[j["target"].str.contains("sub-cus_e-202611")].iloc[0]
    assert "amount mismatch" in mismatch["message"] and "10,900" in mismatch["message"]
    assert first.exit_code == 1 and "failed 1" in repr(first)
    assert first._repr_html_().startswith("<b>")
    json.dumps(first.to_dict(), default=str)


def test_dropped_response_is_unknown_then_resolved_by_reading(setup: Any) -> None:
    world, client, store, plan = setup
    world.faults.drop_response(route="POST /subscribe/payments/schedule", times=1)
    world.faults.drop_response(route="POST /subscribe/payments/schedule/*/retry", times=1)
    first = apply(plan, client, store, dry_run=False, progress=False)
    st = status_of(first)
    assert st["retry:sub-cus_b-202611"] == "unknown"
    assert st["rebook:rebook-cus_a-202612"] == "unknown"
    # the dependent rebook waits for its retry to be resolved
    assert st["rebook:rebook-cus_b-202612"] == "planned"
    # the writes were applied by PortOne even though no answer came back
    assert "rebook-cus_a-202612" in world.schedules
    assert len(world.payment_ids_by_merchant_uid["sub-cus_b-202611"]) == 2

    second = apply(plan, client, store, dry_run=False, progress=False)
    st2 = status_of(second)
    assert st2["retry:sub-cus_b-202611"] == "succeeded"
    assert st2["rebook:rebook-cus_a-202612"] == "succeeded"
    assert st2["rebook:rebook-cus_b-202612"] == "succeeded"
    msgs = dict(zip(second.outcomes["key"], second.outcomes["message"], strict=True))
    assert "resolved by reading" in msgs["sub-cus_b-202611"]
    assert "resolved by reading" in msgs["rebook-cus_a-202612"]
    w = Counter(writes(world.requests))
    assert w["POST /subscribe/payments/schedule/sub-cus_b-202611/retry"] == 1  # never re-sent
    assert w["POST /subscribe/payments/schedule"] == 2  # cus_a once (dropped), cus_b once
    assert len(world.payment_ids_by_merchant_uid["sub-cus_b-202611"]) == 2  # no second charge
    assert (
        store.query("SELECT status FROM orders WHERE merchant_uid = 'sub-cus_b-202611'")["status"][0]
        == "paid"
    )


def test_skips_what_is_no_longer_needed(setup: Any) -> None:
    world, client, store, plan = setup
    # someone fixed things by hand before the apply ran
    client.unschedule(customer_uid="cus_d", merchant_uids=["sub-cus_d-202612"])
    manual = {"merchant_uid": "manual-a", "schedule_at": int(AS_OF.timestamp()) + 6 * 86400, "amount": 9900}
    client.create_schedules("cus_a", [manual])
    world.requests.clear()
    report = apply(plan, client, store, dry_run=False, progress=False)
    st = status_of(report)
    assert st["unschedule:sub-cus_d-202612"] == "skipped"
    assert st["rebook:rebook-cus_a-202612"] == "skipped"
    msgs = dict(zip(report.outcomes["key"], report.outcomes["message"], strict=True))
    assert "already revoked" in msgs["sub-cus_d-202612"]
    assert "covered by scheduled manual-a" in msgs["rebook-cus_a-202612"]
    assert "POST /subscribe/payments/unschedule" in writes(world.requests)  # only cus_c's
    assert writes(world.requests).count("POST /subscribe/payments/unschedule") == 1
    assert "rebook-cus_a-202612" not in world.schedules


def test_business_refusal_is_recorded_with_korean_message_and_not_retried(setup: Any) -> None:
    world, client, store, plan = setup
    only = plan.filter(kinds=["rebook"], customers=["cus_a"])

    def delete_key(point: str, action: Any) -> None:
        if point == "before_send":  # the key disappears between the re-check and the send
            world.delete_billing_key("cus_a")

    report = apply(only, client, store, dry_run=False, progress=False, hook=delete_key)
    row = report.outcomes.iloc[0]
    assert row["status"] == "failed"
    assert "등록된 고객정보가 없습니다." in row["message"]
    again = apply(only, client, store, dry_run=False, progress=False)
    assert again.outcomes.iloc[0]["outcome"] == "already"
    assert writes(world.requests).count("POST /subscribe/payments/schedule") == 1


def test_duplicate_merchant_uid_refusal_reads_the_existing_schedule(setup: Any) -> None:
    world, client, store, plan = setup
    only = plan.filter(kinds=["rebook"], customers=["cus_a"])
    act = only.actions[0]
    body = act.request["json"]

    def book_first(point: str, action: Any) -> None:
        if point == "before_send":  # another process booked the same merchant_uid meanwhile
            world.create_schedules("cus_a", body["schedules"])

    report = apply(only, client, store, dry_run=False, progress=False, hook=book_first)
    row = report.outcomes.iloc[0]
    assert row["status"] == "succeeded", row["message"]
    assert "exists at PortOne" in row["message"]
    assert sum(1 for s in world.schedules.values() if s["customer_uid"] == "cus_a") == 2


def test_over_a_cap_nothing_is_sent_and_the_cap_is_named(setup: Any) -> None:
    world, client, store, plan = setup
    # three money-moving requests: the retry (14,900) and two rebooks (9,900 + 14,900)
    with pytest.raises(CapExceededError, match=r"3 money-moving requests.*max_actions is 2, exceeded by 1"):
        apply(plan, client, store, dry_run=False, max_actions=2, progress=False)
    with pytest.raises(CapExceededError, match=r"39,700 KRW.*max_amount is 10,000, exceeded by 29,700"):
        apply(plan, client, store, dry_run=False, max_amount=10_000, progress=False)
    assert writes(world.requests) == []
    assert journal_frame(store).empty
    done = apply(plan, client, store, dry_run=False, max_amount=39_700, progress=False)
    assert done.amount_sent == {"KRW": 39_700} and done.requests_sent == 3


def test_a_second_apply_fails_at_once_naming_the_holder(setup: Any) -> None:
    _world, client, store, plan = setup
    seen: list[str] = []

    def nested(point: str, action: Any) -> None:
        if point == "before_send" and not seen:
            with pytest.raises(ApplyInProgressError) as err:
                apply(plan, client, store, dry_run=False, progress=False)
            seen.append(str(err.value))

    apply(plan, client, store, dry_run=False, progress=False, hook=nested)
    import os

    assert seen and f"pid {os.getpid()}" in seen[0] and "apply.lock" in seen[0]
    # released afterwards
    with apply_lock(lock_path_for(store)) as info:
        assert info["pid"] == os.getpid()


def test_single_action_helpers(setup: Any) -> None:
    world, client, store, _plan = setup
    dry = reverify(client, store, merchant_uid="sub-cus_a-202611")
    assert dry.dry_run and dry.outcomes.iloc[0]["status"] == "would_send"
    done = reverify(client, store, merchant_uid="sub-cus_a-202611", dry_run=False)
    assert done.outcomes.iloc[0]["status"] == "succeeded"
    subs = pd.DataFrame([{"customer_uid": "cus_a", "status": "active", "amount": 9900, "anchor_day": 3}])
    r = rebook(client, store, "cus_a", as_of=AS_OF, subscriptions=subs, dry_run=False)
    assert r.outcomes.iloc[0]["status"] == "succeeded"
    assert world.schedules["rebook-cus_a-202612"]["schedule_at"] == int(
        pd.Timestamp("2026-12-03 10:00", tz="Asia/Seoul").timestamp()
    )
    again = rebook(client, store, "cus_a", as_of=AS_OF, subscriptions=subs, dry_run=False)
    assert again.outcomes.iloc[0]["outcome"] == "already"
