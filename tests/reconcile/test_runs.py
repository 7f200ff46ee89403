"""Runs over time: stable finding ids, new / resolved, first_seen, all-or-nothing writes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from _recon_world import AS_OF, World, kst

from portone_recon.errors import ReconcileError
from portone_recon.reconcile import load_result, reconcile
from portone_recon.reconcile import runner as runner_mod


def _problems(world: World) -> None:
    world.healthy("cus_ok", 3, [(2026, 10), (2026, 11)])
    world.renewal("cus_1", kst(2026, 11, 20), webhook=False)  # missed_webhook (+ no sub: nothing else)
    world.order("ord-x", "cus_2", status="paid", paid_at=kst(2026, 11, 1))  # phantom_paid
    world.payment("ghost", customer_uid="cus_3", at=kst(2026, 11, 2))  # unknown_payment


def test_rerun_without_changes_is_stable(world: World) -> None:
    _problems(world)
    first = world.run()
    assert first.previous_run_id is None
    assert len(first) == 3 and len(first.new) == 3 and len(first.resolved) == 0
    second = world.run(as_of=AS_OF + timedelta(hours=1))
    assert second.previous_run_id == first.run_id
    assert set(second.findings["finding_id"]) == set(first.findings["finding_id"])
    assert len(second.new) == 0 and len(second.resolved) == 0
    # first_seen stays at the first run's as_of; age grows with as_of
    assert set(second.findings["first_seen"]) == {AS_OF}
    merged = first.findings.merge(second.findings, on="finding_id")
    assert ((merged["age_y"] - merged["age_x"]) == timedelta(hours=1)).all()


def test_fixing_one_problem_resolves_exactly_that_finding(world: World) -> None:
    _problems(world)
    first = world.run()
    world.execute(
        "UPDATE orders SET status = 'paid', paid_at = ? WHERE merchant_uid = ?", [AS_OF, "sub-cus_1-202611"]
    )
    second = world.run()
    assert list(second.resolved["kind"]) == ["missed_webhook"]
    assert list(second.resolved["merchant_uid"]) == ["sub-cus_1-202611"]
    assert len(second.new) == 0
    assert len(second) == len(first) - 1
    # a new problem shows up as new, with its own id
    world.payment("ghost-2", at=kst(2026, 11, 3))
    third = world.run()
    assert list(third.new["merchant_uid"]) == ["ghost-2"]
    assert len(third.resolved) == 0


def test_runs_and_findings_are_stored(world: World) -> None:
    _problems(world)
    result = world.run()
    runs = world.store.query("SELECT * FROM recon_runs")
    assert list(runs["run_id"]) == [result.run_id]
    assert int(runs["finding_count"].iloc[0]) == 3
    assert int(runs["amount_at_risk"].iloc[0]) == result.amount_at_risk
    assert bool(runs["subscriptions_inferred"].iloc[0]) is False  # cus_ok has a subscription
    stored = world.store.query("SELECT finding_id, kind FROM findings WHERE run_id = ?", [result.run_id])
    assert set(stored["finding_id"]) == set(result.findings["finding_id"])
    again = load_result(world.store)
    assert again.run_id == result.run_id
    assert set(again.findings["finding_id"]) == set(result.findings["finding_id"])
    assert again.as_of == result.as_of and again.grace == result.grace


def test_a_failing_rule_writes_nothing(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    _problems(world)
    world.run()
    real = runner_mod.load_rule

    def broken(kind: str) -> str:
        return "SELECT no_such_column FROM orders" if kind == "orphan_schedule" else real(kind)

    monkeypatch.setattr(runner_mod, "load_rule", broken)
    with pytest.raises(ReconcileError, match="rule orphan_schedule"):
        world.run()
    assert len(world.store.query("SELECT * FROM recon_runs")) == 1
    assert len(world.store.query("SELECT * FROM findings")) == 3


def test_subset_of_kinds_only_resolves_those(world: World) -> None:
    _problems(world)
    world.run()
    only = world.run(kinds=["missed_webhook"])
    assert set(only.counts) == {"missed_webhook"}
    assert len(only.resolved) == 0  # phantom/unknown were not checked, so not "resolved"
    with pytest.raises(ReconcileError, match="unknown finding kind"):
        world.run(kinds=["nope"])


def test_bad_arguments_are_reconcile_errors(world: World) -> None:
    with pytest.raises(ReconcileError, match="ISO 8601"):
        reconcile(world.store, as_of="yesterday-ish", progress=False)
    with pytest.raises(ReconcileError, match="duration"):
        reconcile(world.store, grace="soon", progress=False)
    with pytest.raises(ReconcileError, match="no reconciliation run"):
        load_result(world.store)
