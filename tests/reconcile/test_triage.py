"""Triage: acknowledge / explain / won't fix a finding by its stable id, with history and an end date."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from _recon_world import AS_OF, World, kst

import portone_recon as pr
from portone_recon.actions import load_recon, plan_fixes
from portone_recon.errors import ReconcileError
from portone_recon.reconcile import (
    ReconResult,
    acknowledge,
    active_triage,
    load_result,
    triage_history,
    unacknowledge,
)


def _problems(world: World) -> None:
    world.renewal("cus_1", kst(2026, 11, 20), webhook=False)  # missed_webhook (+ missing_next_schedule)
    world.order("ord-x", "cus_2", status="paid", paid_at=kst(2026, 11, 1))  # phantom_paid (critical)
    world.payment("ghost", customer_uid="cus_3", at=kst(2026, 11, 2))  # unknown_payment (medium)


def _id(result: ReconResult, kind: str) -> str:
    return str(result[kind]["finding_id"].iloc[0])


def test_acknowledged_findings_leave_open_but_stay_in_the_result(world: World) -> None:
    _problems(world)
    first = world.run()
    assert len(first.open) == len(first) and len(first.acknowledged) == 0
    assert first.findings["triage_state"].isna().all()
    phantom = _id(first, "phantom_paid")
    entries = pr.acknowledge(world.store, [phantom], note="manual discount, agreed by sales", by="kim")
    assert [(e.finding_id, e.state, e.by) for e in entries] == [(phantom, "acknowledged", "kim")]

    second = world.run(as_of=AS_OF + timedelta(days=2))
    assert len(second) == len(first)  # still reported
    assert list(second.acknowledged["finding_id"]) == [phantom]
    assert phantom not in set(second.open["finding_id"])
    row = second.findings.set_index("finding_id").loc[phantom]
    assert (row["triage_state"], row["triage_note"], row["triage_by"]) == (
        "acknowledged",
        "manual discount, agreed by sales",
        "kim",
    )
    assert row["triage_until"] is None
    # first_seen stays at the first run; age in whole KST days
    assert row["first_seen"] == AS_OF and int(row["age_days"]) == 2
    # the only critical finding is acknowledged: no open critical left, but high ones are
    assert second.has_findings("critical") and not second.has_open_findings("critical")
    assert second.has_open_findings("high")
    summary = second.to_dict()
    assert summary["acknowledged"] == 1 and summary["open"] == len(second) - 1
    assert summary["open_counts_by_severity"]["critical"] == 0
    assert "1 acknowledged" in second.headline()


def test_stored_runs_and_the_fix_planner_see_the_same_triage(world: World) -> None:
    _problems(world)
    first = world.run()
    webhook = _id(first, "missed_webhook")
    acknowledge(world.store, webhook, note="PG outage", state="explained", until="2026-12-31")
    fresh = world.run()
    stored = load_result(world.store, fresh.run_id)
    recon = load_recon(world.store, fresh.run_id)
    for frame in (fresh.findings, stored.findings, recon.findings):
        by_id = frame.set_index("finding_id")
        assert by_id.loc[webhook, "triage_state"] == "explained"
        assert by_id.loc[webhook, "triage_until"] == date(2026, 12, 31)
        assert by_id["triage_state"].notna().sum() == 1
        assert "age_days" in frame.columns
    # an acknowledgement made after a run applies when the run is read back (the planner's view)
    phantom = _id(first, "phantom_paid")
    acknowledge(world.store, phantom, note="checking with sales")
    later = load_recon(world.store, fresh.run_id).findings.set_index("finding_id")
    assert later.loc[phantom, "triage_state"] == "acknowledged"
    plan_fixes(load_recon(world.store, fresh.run_id))  # the planner takes the frame with triage columns


def test_until_day_holds_through_that_day_then_the_finding_is_open_again(world: World) -> None:
    _problems(world)
    first = world.run()
    fid = _id(first, "unknown_payment")
    acknowledge(world.store, [fid], note="look again on Monday", until=date(2026, 11, 29))
    on_the_day = world.run(as_of=kst(2026, 11, 29, 23, 59))
    assert fid in set(on_the_day.acknowledged["finding_id"])
    after = world.run(as_of=kst(2026, 11, 30, 0, 1))
    assert fid in set(after.open["finding_id"]) and len(after.acknowledged) == 0
    assert set(active_triage(world.store, at=kst(2026, 11, 29, 12))) == {fid}
    assert active_triage(world.store, at=kst(2026, 11, 30, 12)) == {}


def test_explained_and_wont_fix_need_a_reason_and_states_are_checked(world: World) -> None:
    _problems(world)
    fid = _id(world.run(), "unknown_payment")
    for state in ("explained", "wont_fix"):
        with pytest.raises(ReconcileError, match="needs a note"):
            acknowledge(world.store, [fid], note="  ", state=state)
    with pytest.raises(ReconcileError, match="unknown triage state 'ignored'"):
        acknowledge(world.store, [fid], note="x", state="ignored")
    with pytest.raises(ReconcileError, match="YYYY-MM-DD"):
        acknowledge(world.store, [fid], note="x", until="next monday")
    assert len(triage_history(world.store)) == 0
    acknowledge(world.store, [fid], note="test card of the QA team", state="wont_fix")
    assert active_triage(world.store)[fid].state == "wont_fix"


def test_unknown_ids_are_refused_by_name_and_nothing_is_written(world: World) -> None:
    _problems(world)
    fid = _id(world.run(), "unknown_payment")
    with pytest.raises(ReconcileError) as err:
        acknowledge(world.store, [fid, "deadbeef00000000", "nope"], note="x")
    assert "deadbeef00000000, nope" in str(err.value) and fid not in str(err.value)
    with pytest.raises(ReconcileError, match="nope"):
        unacknowledge(world.store, [fid, "nope"])
    assert len(triage_history(world.store)) == 0


def test_unacknowledge_reopens_and_history_keeps_every_step(world: World) -> None:
    _problems(world)
    fid = _id(world.run(), "phantom_paid")
    acknowledge(world.store, [fid], note="first look", by="kim")
    acknowledge(world.store, [fid], note="sales confirmed the discount", by="lee", state="explained")
    assert active_triage(world.store)[fid].note == "sales confirmed the discount"
    assert unacknowledge(world.store, [fid]) == 1
    assert active_triage(world.store) == {}
    assert fid in set(world.run().open["finding_id"])
    history = triage_history(world.store, fid)
    assert list(history["state"]) == ["acknowledged", "explained", "open"]
    assert list(history["by"])[:2] == ["kim", "lee"]


def test_a_resolved_finding_clears_its_decision_and_comes_back_open(world: World) -> None:
    _problems(world)
    first = world.run()
    fid = _id(first, "unknown_payment")
    imp_uid = str(first["unknown_payment"]["imp_uid"].iloc[0])
    acknowledge(world.store, [fid], note="refund pending")
    world.execute("DELETE FROM payments WHERE merchant_uid = 'ghost'")
    second = world.run()
    assert fid in set(second.resolved["finding_id"])
    assert second.resolved["triage_state"].isna().all()
    assert list(triage_history(world.store, fid)["state"]) == ["acknowledged", "resolved"]
    assert active_triage(world.store) == {}
    world.payment("ghost", customer_uid="cus_3", at=kst(2026, 11, 2), imp_uid=imp_uid)
    third = world.run()
    assert fid in set(third.new["finding_id"]) and fid in set(third.open["finding_id"])


def test_a_run_of_some_kinds_keeps_the_decisions_of_the_others(world: World) -> None:
    _problems(world)
    fid = _id(world.run(), "phantom_paid")
    acknowledge(world.store, [fid], note="x")
    partial = world.run(kinds=["unknown_payment"])
    assert len(partial.resolved) == 0
    assert set(active_triage(world.store)) == {fid}


def test_json_records_carry_id_first_seen_age_and_triage(world: World) -> None:
    _problems(world)
    first = world.run()
    fid = _id(first, "phantom_paid")
    acknowledge(world.store, [fid], note="n", until="2026-12-31", by="kim")
    rows = json.loads(world.run(as_of=AS_OF + timedelta(days=1)).to_json())
    row = next(r for r in rows if r["finding_id"] == fid)
    assert row["first_seen"] == AS_OF.isoformat() and row["age_days"] == 1
    assert (row["triage_state"], row["triage_until"], row["triage_by"]) == (
        "acknowledged",
        "2026-12-31",
        "kim",
    )
    assert all(r["triage_state"] is None for r in rows if r["finding_id"] != fid)
