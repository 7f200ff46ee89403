"""Apply re-checks each action's own reason with fresh data right before sending (in-process sandbox).

Each test builds a small merchant at PortOne, stores the finding reconcile would report, plans, changes
the world the way a real day would, applies, and checks what reached PortOne (the sandbox request log).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import pytest

from portone_recon._time import KST
from portone_recon.actions import apply, journal_frame, plan_fixes, record_plan
from portone_recon.errors import PlanRefusedError
from portone_recon.sandbox.world import CardBehaviour
from portone_recon.store import Store

from .conftest import APPROVE, entry, finding, store_run, writes


def kst(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=KST)


def add_subs(store: Store, *rows: dict[str, Any]) -> None:
    """Subscriptions as the merchant loaded them (status, amount, interval, anchor, started, cancelled)."""
    frame = pd.DataFrame(
        [
            {
                "customer_uid": r["customer_uid"],
                "status": r.get("status", "active"),
                "amount": r["amount"],
                "interval_months": r.get("interval_months", 1),
                "anchor_day": r["anchor_day"],
                "started_at": pd.Timestamp(r.get("started_at", "2026-01-01"), tz=KST),
                "cancelled_at": pd.Timestamp(r["cancelled_at"], tz=KST) if r.get("cancelled_at") else pd.NaT,
            }
            for r in rows
        ]
    )
    with store.transaction() as con:
        con.execute("DELETE FROM subscriptions")
        con.register("_s", frame)
        con.execute(
            "INSERT INTO subscriptions (customer_uid, status, status_raw, amount, interval_months, "
            "anchor_day, started_at, cancelled_at, source, loaded_at) SELECT customer_uid, status, status, "
            "amount, interval_months, anchor_day, started_at, cancelled_at, 'test', now() FROM _s"
        )
        con.unregister("_s")


def subs_frame(store: Store) -> pd.DataFrame:
    return store.query("SELECT * FROM subscriptions")


@pytest.fixture
def merchant(world: Any, store: Store) -> Any:
    class M:
        def __init__(self) -> None:
            self.world = world
            self.client = world.client()
            self.store = store
            self.runs = 0

        def key(self, cu: str, card: str = APPROVE) -> None:
            self.client.issue_billing_key(cu, card_number=card, expiry="2030-12", birth="900101")

        def plan(self, *rows: dict[str, Any], **kw: Any) -> Any:
            self.runs += 1
            recon = store_run(
                self.store, pd.DataFrame(list(rows)), as_of=self.world.clock.now, run_id=f"run_{self.runs}"
            )
            return plan_fixes(recon, subscriptions=subs_frame(self.store), **kw)

        def apply(self, plan: Any, **kw: Any) -> Any:
            self.world.requests.clear()
            return apply(plan, self.client, self.store, dry_run=False, progress=False, **kw)

        def sent(self) -> list[str]:
            return writes(self.world.requests)

    return M()


def only(report: Any) -> dict[str, Any]:
    assert len(report.outcomes) == 1, report.outcomes
    return dict(report.outcomes.iloc[0])


def test_annual_rebook_books_next_year_and_creates_its_local_order(merchant: Any) -> None:
    m = merchant
    m.key("cus_y")
    m.world.advance(to=kst("2026-12-05 09:00"))
    add_subs(
        m.store,
        {
            "customer_uid": "cus_y",
            "amount": 99000,
            "interval_months": 12,
            "anchor_day": 2,
            "started_at": "2025-11-02",
        },
    )
    plan = m.plan(
        finding(
            "missing_next_schedule", customer_uid="cus_y", event_at=pd.Timestamp("2026-11-02 10:00", tz=KST)
        )
    )
    out = only(m.apply(plan))
    assert out["status"] == "succeeded", out
    booked = m.world.schedules["rebook-cus_y-202711"]
    assert booked["schedule_at"] == int(kst("2027-11-02 10:00").timestamp()) and booked["amount"] == 99000
    order = m.store.query(
        "SELECT customer_uid, amount, status FROM orders WHERE merchant_uid = 'rebook-cus_y-202711'"
    )
    assert order.to_dict("records") == [{"customer_uid": "cus_y", "amount": 99000, "status": "pending"}]
    assert "local order rebook-cus_y-202711 created" in out["message"]


def test_rebook_skipped_when_the_period_was_paid_by_again_on_another_day(merchant: Any) -> None:
    m = merchant
    m.key("cus_g")
    m.client.create_schedules("cus_g", [entry("sub-cus_g-202612-odd", "2026-12-20", 7900)])
    m.world.advance(to=kst("2026-12-06 09:00"))
    add_subs(m.store, {"customer_uid": "cus_g", "amount": 9900, "anchor_day": 5, "started_at": "2026-01-05"})
    plan = m.plan(
        finding(
            "schedule_amount_mismatch",
            customer_uid="cus_g",
            schedule_merchant_uid="sub-cus_g-202612-odd",
            portone_amount=7900,
            local_amount=9900,
            event_at=pd.Timestamp("2026-12-20 10:00", tz=KST),
        )
    )
    assert [a.kind for a in plan.actions] == ["unschedule", "rebook"]
    # support charged the December period by hand (again) on the 6th, a different merchant_uid
    m.client.pay_again(
        customer_uid="cus_g", merchant_uid="manual-cus_g-1206", amount=9900, name="12월 수동 결제"
    )
    report = m.apply(plan)
    st = dict(zip(report.outcomes["kind"], report.outcomes["status"], strict=True))
    assert st == {"unschedule": "succeeded", "rebook": "skipped"}
    msg = report.outcomes.set_index("kind").loc["rebook", "message"]
    assert "already paid by" in msg and "manual-cus_g-1206" in msg
    assert m.sent() == ["POST /subscribe/payments/unschedule"]


def test_duplicate_unschedule_skipped_when_the_kept_schedule_was_revoked(merchant: Any) -> None:
    m = merchant
    m.key("cus_c")
    m.client.create_schedules(
        "cus_c",
        [entry("sub-cus_c-202612", "2026-12-10", 4900), entry("sub-cus_c-202612-x", "2026-12-10", 4900, 11)],
    )
    m.world.advance(to=kst("2026-11-27 06:00"))
    add_subs(m.store, {"customer_uid": "cus_c", "amount": 4900, "anchor_day": 10})
    plan = m.plan(
        finding(
            "duplicate_schedule",
            customer_uid="cus_c",
            schedule_merchant_uid="sub-cus_c-202612-x",
            detail="2 schedules booked in one billing period; keep sub-cus_c-202612, revoke this one (x)",
        )
    )
    assert plan.actions[0].target["keep_merchant_uid"] == "sub-cus_c-202612"
    m.client.unschedule(
        customer_uid="cus_c", merchant_uids=["sub-cus_c-202612"]
    )  # someone revoked the keeper
    out = only(m.apply(plan))
    assert out["status"] == "skipped" and "to keep (sub-cus_c-202612) is not scheduled" in out["message"]
    assert m.sent() == []
    assert m.world.schedules["sub-cus_c-202612-x"]["schedule_status"] == "scheduled"  # the only one left


def test_orphan_unschedule_needs_a_single_key_get_not_a_multi_lookup(merchant: Any) -> None:
    m = merchant
    m.key("cus_o")
    m.client.create_schedules("cus_o", [entry("sub-cus_o-202612", "2026-12-05", 4900)])
    m.world.advance(to=kst("2026-11-27 06:00"))
    # no subscriptions loaded: reconcile inferred the orphan from a billing-key lookup that said 404 for
    # the whole batch, although this key exists
    f = finding(
        "orphan_schedule", customer_uid="cus_o", schedule_merchant_uid="sub-cus_o-202612", portone_amount=4900
    )
    plan = m.plan(f)
    out = only(m.apply(plan))
    assert out["status"] == "skipped" and "not an orphan by fresh data" in out["message"]
    assert m.sent() == []
    assert "GET /subscribe/customers/cus_o" in [f"{r['method']} {r['path']}" for r in m.world.requests]
    # the key really is deleted now: the next plan's unschedule goes out
    m.world.delete_billing_key("cus_o")
    m.world.advance(seconds=60)
    out = only(m.apply(m.plan({**f, "finding_id": "f_orphan_2"})))
    assert out["status"] == "succeeded", out
    assert m.sent() == ["POST /subscribe/payments/unschedule"]


def test_orphan_of_a_subscription_reactivated_since_the_plan_is_not_revoked(merchant: Any) -> None:
    m = merchant
    m.key("cus_d")
    m.client.create_schedules("cus_d", [entry("sub-cus_d-202612", "2026-12-05", 4900)])
    m.world.advance(to=kst("2026-11-27 06:00"))
    add_subs(
        m.store,
        {
            "customer_uid": "cus_d",
            "status": "cancelled",
            "amount": 4900,
            "anchor_day": 5,
            "cancelled_at": "2026-11-20",
        },
    )
    plan = m.plan(finding("orphan_schedule", customer_uid="cus_d", schedule_merchant_uid="sub-cus_d-202612"))
    plan = record_plan(m.store, plan, now=m.world.clock.now)  # `fix plan` records it; apply comes later
    assert plan.actions[0].target["orphan_cause"] == "subscription_cancelled"
    add_subs(
        m.store, {"customer_uid": "cus_d", "status": "active", "amount": 4900, "anchor_day": 5}
    )  # came back
    out = only(m.apply(plan))
    assert out["status"] == "skipped" and "finding no longer calls for it" in out["message"]
    assert "ask for a new card" in out["message"]
    assert m.sent() == []


def test_a_plan_older_than_the_limit_is_refused(merchant: Any) -> None:
    m = merchant
    m.key("cus_a")
    m.world.advance(to=kst("2026-11-04 06:00"))
    add_subs(m.store, {"customer_uid": "cus_a", "amount": 9900, "anchor_day": 3})
    plan = m.plan(
        finding(
            "missing_next_schedule", customer_uid="cus_a", event_at=pd.Timestamp("2026-11-03 10:00", tz=KST)
        )
    )
    recorded = record_plan(m.store, plan, now=m.world.clock.now - timedelta(hours=25))
    with pytest.raises(PlanRefusedError, match=r"25\.0 h ago; plans older than 24 h are refused"):
        m.apply(recorded)
    assert m.sent() == [] and journal_frame(m.store).empty
    assert only(m.apply(recorded, max_plan_age=timedelta(hours=48)))["status"] == "succeeded"


def test_a_declined_retry_is_retried_on_a_later_day_at_most_max_retries_times(merchant: Any) -> None:
    m = merchant
    m.key("cus_b")
    m.world.card_behaviours["cus_b"] = CardBehaviour.decline()
    m.client.create_schedules("cus_b", [entry("sub-cus_b-202611", "2026-11-25", 14900)])
    m.world.advance(to=kst("2026-11-26 06:00"))
    add_subs(m.store, {"customer_uid": "cus_b", "amount": 14900, "anchor_day": 25})
    f = finding(
        "unpaid_renewal",
        customer_uid="cus_b",
        schedule_merchant_uid="sub-cus_b-202611",
        portone_status="failed",
        portone_amount=14900,
        event_at=pd.Timestamp("2026-11-25 10:00", tz=KST),
    )
    from portone_recon.actions.journal import retries_by_schedule

    retries = 0
    for day in range(5):
        plan = m.plan({**f, "finding_id": f"f_retry_{day}"}, retries_sent=retries_by_schedule(m.store))
        retry = [a for a in plan.actions if a.kind == "retry"]
        if day < 3:
            assert len(retry) == 1 and retry[0].target["attempt_day"] == f"2026-11-{26 + day}"
            report = m.apply(plan)
            st = dict(zip(report.outcomes["kind"], report.outcomes["status"], strict=True))
            assert st["retry"] == "failed" and st["rebook"] == "skipped"  # declined; nothing booked after it
            again = m.apply(plan)  # the same day's attempt is never repeated
            assert set(again.outcomes["outcome"]) == {"already"}
            retries += m.sent().count("POST /subscribe/payments/schedule/sub-cus_b-202611/retry")
        else:
            assert retry == [] and "retried 3 times" in plan.unplanned[0]["reason"]
        m.world.advance(seconds=86400)
    assert retries == 0  # the repeats above sent nothing
    assert len(m.world.payment_ids_by_merchant_uid["sub-cus_b-202611"]) == 1 + 3  # the renewal + 3 retries


def test_a_429_on_a_write_is_retryable_and_the_next_apply_sends_it(merchant: Any) -> None:
    m = merchant
    m.key("cus_a")
    m.world.advance(to=kst("2026-11-04 06:00"))
    add_subs(m.store, {"customer_uid": "cus_a", "amount": 9900, "anchor_day": 3})
    plan = m.plan(
        finding(
            "missing_next_schedule", customer_uid="cus_a", event_at=pd.Timestamp("2026-11-03 10:00", tz=KST)
        )
    )
    m.world.faults.script([429, 429, 429, 429, 429, 429], route="POST /subscribe/payments/schedule")
    first = only(m.apply(plan))
    assert first["status"] == "failed_retryable", first
    assert "rebook-cus_a-202612" not in m.world.schedules
    m.world.faults.clear()
    second = only(m.apply(plan))
    assert second["status"] == "succeeded", second
    assert m.world.schedules["rebook-cus_a-202612"]["amount"] == 9900
    assert only(m.apply(plan))["outcome"] == "already"


def test_a_plan_for_a_reconciliation_in_the_future_is_refused(merchant: Any) -> None:
    m = merchant
    m.key("cus_a")
    m.world.advance(to=kst("2026-11-04 06:00"))
    add_subs(m.store, {"customer_uid": "cus_a", "amount": 9900, "anchor_day": 3})
    f = finding(
        "missing_next_schedule", customer_uid="cus_a", event_at=pd.Timestamp("2098-12-03 10:00", tz=KST)
    )
    recon = store_run(m.store, pd.DataFrame([f]), as_of=kst("2099-01-01 00:00"), run_id="run_2099")
    plan = plan_fixes(recon, subscriptions=subs_frame(m.store))
    assert plan.actions  # the planner is pure: it takes the run's word for the time
    with pytest.raises(PlanRefusedError, match="more than a day ahead of now"):
        m.apply(plan)
    assert m.sent() == [] and journal_frame(m.store).empty


def test_a_dry_run_of_a_replacement_does_not_count_the_schedule_it_replaces(merchant: Any) -> None:
    m = merchant
    m.key("cus_g")
    m.client.create_schedules("cus_g", [entry("sub-cus_g-202612-odd", "2026-12-20", 7900)])
    m.world.advance(to=kst("2026-12-06 09:00"))
    add_subs(m.store, {"customer_uid": "cus_g", "amount": 9900, "anchor_day": 5, "started_at": "2026-01-05"})
    plan = m.plan(
        finding(
            "schedule_amount_mismatch",
            customer_uid="cus_g",
            schedule_merchant_uid="sub-cus_g-202612-odd",
            portone_amount=7900,
            local_amount=9900,
            event_at=pd.Timestamp("2026-12-20 10:00", tz=KST),
        )
    )
    dry = apply(plan, m.client, m.store, progress=False)
    assert set(dry.outcomes["status"]) == {"would_send"}, dry.outcomes[["kind", "message"]]
    done = m.apply(plan)
    assert set(done.outcomes["status"]) == {"succeeded"}
    assert m.world.schedules["sub-cus_g-202612-odd"]["schedule_status"] == "revoked"
    assert m.world.schedules["rebook-cus_g-202612"]["amount"] == 9900
