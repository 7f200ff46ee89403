"""The merchant-scale code paths: candidate pre-filters must never lose a finding, and runs carry timings."""

from __future__ import annotations

import pytest
from _recon_world import PRICE, World, keys, kst

from portone_recon.reconcile import load_result


def test_every_attempt_of_a_candidate_order_is_aggregated(world: World) -> None:
    # only the paid attempt makes ord-1 a candidate; the failed one must still be counted
    world.order("ord-1", "cus_1", status="pending")
    world.payment("ord-1", customer_uid="cus_1", status="failed", at=kst(2026, 11, 20, 9))
    paid = world.payment("ord-1", customer_uid="cus_1", at=kst(2026, 11, 20, 9, 5))
    # a retried renewal that finally paid is no phantom; one that never paid is
    world.order("ord-2", "cus_2", status="paid", paid_at=kst(2026, 11, 20, 10))
    world.payment("ord-2", customer_uid="cus_2", status="failed", at=kst(2026, 11, 20, 9))
    world.payment("ord-2", customer_uid="cus_2", at=kst(2026, 11, 20, 9, 30))
    world.order("ord-3", "cus_3", status="paid", paid_at=kst(2026, 11, 20, 10))
    world.payment("ord-3", customer_uid="cus_3", status="failed", at=kst(2026, 11, 20, 9))
    world.payment("ord-3", customer_uid="cus_3", status="failed", at=kst(2026, 11, 20, 9, 30))
    # refunds over two attempts add up; each alone is within what the order records
    world.order("ord-4", "cus_4", status="paid", paid_at=kst(2026, 11, 2, 10), refunded_amount=500)
    world.payment("ord-4", customer_uid="cus_4", status="cancelled", cancel_amount=400, at=kst(2026, 11, 2))
    world.payment("ord-4", customer_uid="cus_4", cancel_amount=300, at=kst(2026, 11, 3))
    result = world.run()
    mw = result["missed_webhook"].set_index("merchant_uid")
    assert set(mw.index) == {"ord-1"}
    assert mw.loc["ord-1", "imp_uid"] == paid and "2 attempt(s)" in mw.loc["ord-1", "detail"]
    assert keys(result, "phantom_paid", "merchant_uid") == {"ord-3"}
    assert "2 attempt(s), none paid (last: failed)" in result["phantom_paid"]["detail"].iloc[0]
    rr = result["refund_not_reflected"].set_index("merchant_uid")
    assert set(rr.index) == {"ord-4"} and int(rr.loc["ord-4", "portone_amount"]) == 700
    assert int(rr.loc["ord-4", "amount_at_risk"]) == 200


def test_duplicate_charge_prefilter_is_exact(world: World) -> None:
    # cus_1: two charges 64 months apart share "period mod 64" (the pre-filter's collision): not duplicates
    world.sub("cus_1", anchor_day=5)
    world.payment("old-1", customer_uid="cus_1", at=kst(2021, 7, 5))
    world.payment("new-1", customer_uid="cus_1", at=kst(2026, 11, 5))
    world.order("old-1", "cus_1", status="paid", paid_at=kst(2021, 7, 5))
    world.order("new-1", "cus_1", status="paid", paid_at=kst(2026, 11, 5))
    # cus_2: a real duplicate in one period, next to a charge of another amount (an add-on: not a renewal)
    world.sub("cus_2", anchor_day=5)
    world.payment("r-2", customer_uid="cus_2", at=kst(2026, 11, 5))
    second = world.payment("again-2", customer_uid="cus_2", at=kst(2026, 11, 6))
    world.payment("addon-2", customer_uid="cus_2", amount=PRICE + 1, at=kst(2026, 11, 7))
    for mu in ("r-2", "again-2"):
        world.order(mu, "cus_2", status="paid", paid_at=kst(2026, 11, 5))
    world.order("addon-2", "cus_2", status="paid", amount=PRICE + 1, paid_at=kst(2026, 11, 7))
    result = world.run()
    dc = result["duplicate_charge"]
    assert list(dc["imp_uid"]) == [second]
    assert list(dc["local_status"]) == ["paid"]


def test_runs_carry_step_timings(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    world.healthy("cus_1", 5, [(2026, 9), (2026, 10), (2026, 11)])
    result = world.run(profile=True)
    steps = result.timings
    assert {"prepare _recon_mu", "rule missed_webhook", "rule duplicate_charge", "total"} <= set(steps)
    assert all(v >= 0 for v in steps.values())
    assert steps["total"] >= steps["rule missed_webhook"]
    assert "rule unpaid_renewal" in capsys.readouterr().err
    frame = result.timings_frame()
    assert list(frame.columns) == ["step", "seconds", "share"] and len(frame) == len(steps)
    assert "total" in result.to_dict()["timings"]
    assert "rule unpaid_renewal" not in repr(result)
    assert load_result(world.store, result.run_id).timings.keys() == steps.keys()
