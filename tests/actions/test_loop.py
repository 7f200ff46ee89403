"""The loop closes: reconcile -> plan -> apply -> sync -> reconcile resolves what was fixed, adds nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from portone_recon.actions import apply, plan_fixes
from portone_recon.reconcile import reconcile
from portone_recon.store import Store
from portone_recon.sync import sync

from .conftest import AS_OF, FIXABLE, SUBSCRIPTIONS, build_merchant, load_local, load_subs


def test_hand_built_merchant_loop_closes(world: Any, store: Store) -> None:
    client = world.client()
    build_merchant(client, lambda to: world.advance(to=to))
    sync(client, store, progress=False)
    load_local(store)
    load_subs(store)
    before = reconcile(store, as_of=AS_OF)
    kinds = set(before.findings["kind"])
    print(
        before.findings[["kind", "customer_uid", "merchant_uid", "schedule_merchant_uid", "portone_status"]]
    )
    assert {"missed_webhook", "unpaid_renewal", "duplicate_schedule", "orphan_schedule"} <= kinds

    plan = plan_fixes(before, FIXABLE, subscriptions=SUBSCRIPTIONS)
    # cus_e's next renewal is held: its paid renewal does not match its order (amount_mismatch)
    assert [(h["customer_uid"], h["held_by_kind"]) for h in plan.held] == [("cus_e", "amount_mismatch")]
    held_finding = set(
        before.findings.query("kind == 'missing_next_schedule' and customer_uid == 'cus_e'")["finding_id"]
    )
    report = apply(plan, client, store, dry_run=False, progress=False)
    print(report.outcomes[["kind", "key", "status", "message"]].to_string())
    assert set(report.outcomes["status"]) == {"succeeded"}

    world.advance(seconds=60)  # time passes; the retry was paid at PortOne's "now"
    sync(client, store, progress=False)
    after = reconcile(store, as_of=AS_OF + timedelta(seconds=60))
    fixed = before.findings[before.findings["kind"].isin(FIXABLE)]
    still = set(after.findings["finding_id"]) & set(fixed["finding_id"])
    assert still == held_finding, after.findings[after.findings["finding_id"].isin(still)]
    assert after.new.empty, after.new[["kind", "customer_uid", "detail"]]
    # what needs a person is still reported
    assert set(after.findings["kind"]) == (kinds - set(FIXABLE)) | {"missing_next_schedule"}


@pytest.mark.slow
def test_labelled_scenario_loop_closes(tmp_path: Any, wall: Any) -> None:
    scenario_mod = pytest.importorskip(
        "portone_recon.sandbox.scenario", reason="scenario generator not built yet"
    )
    from portone_recon.orders import load_orders, load_subscriptions

    sc = scenario_mod.generate_merchant(subscribers=300, months=4, seed=11)
    world = sc.world
    wall.world = world  # apply's wall clock is the sandbox's
    client = world.client()
    store = Store(tmp_path / "scenario.duckdb", lock_timeout=5.0)
    store.migrate()
    sync(client, store, progress=False)
    load_orders(store, sc.orders, progress=False)
    load_subscriptions(store, sc.subscriptions, progress=False)
    before = reconcile(store, as_of=sc.as_of)
    fixable = before.findings[before.findings["kind"].isin(FIXABLE)]
    assert len(fixable) >= 5, before.counts

    plan = plan_fixes(before, FIXABLE, subscriptions=sc.subscriptions)
    report = apply(plan, client, store, dry_run=False, max_actions=10_000, max_amount=10**9, progress=False)
    print(repr(plan), repr(report))
    outcome = dict(zip(report.outcomes["action_id"], report.outcomes["status"], strict=True))
    done: dict[str, bool] = {}
    for a in plan.actions:
        if a.finding_id:
            done[a.finding_id] = done.get(a.finding_id, True) and outcome[a.action_id] == "succeeded"
    fixed = {fid for fid, ok in done.items() if ok}
    assert set(report.outcomes["status"]) == {"succeeded"}, report.outcomes[
        report.outcomes["status"] != "succeeded"
    ]
    # every fixable finding is fixed, or left to a person with the reason (a passed renewal, a period
    # over, a hold, a deleted card)
    left = {u["finding_id"]: u["reason"] for u in plan.unplanned}
    assert set(fixable["finding_id"]) <= fixed | set(left)
    assert all(left.values()) and len(fixed) >= 5

    world.advance(seconds=1)
    sync(client, store, progress=False)
    after = reconcile(store, as_of=sc.as_of + timedelta(seconds=1))
    still = after.findings[after.findings["finding_id"].isin(fixed)]
    assert still.empty, still[["kind", "customer_uid", "detail"]].to_string()
    assert after.new.empty, after.new[["kind", "customer_uid", "detail"]].to_string()
    # findings nobody may auto-fix are all still there
    manual = before.findings[~before.findings["kind"].isin(FIXABLE)]
    retried = {a.key for a in plan.actions if a.kind == "retry" and outcome[a.action_id] == "succeeded"}
    gone = manual[~manual["finding_id"].isin(after.findings["finding_id"])]
    # a phantom "paid" order whose failed charge we retried successfully is now truly paid
    gone = gone[~((gone["kind"] == "phantom_paid") & gone["merchant_uid"].isin(retried))]
    assert gone.empty, gone[
        ["kind", "customer_uid", "merchant_uid", "schedule_merchant_uid", "detail"]
    ].to_string()
