"""Life cycle with the clock: schedules execute, webhooks fire or are lost, failures are retried."""

from __future__ import annotations

import httpx
import orjson
import pytest
from sandbox_test_helpers import START, schedule_entry

from portone_recon.errors import SandboxError
from portone_recon.sandbox import CardBehaviour, SandboxClock, SandboxRefusal, SandboxWorld, Webhook, kst

DAY = 86400


def test_clock_is_settable_and_refuses_naive_datetimes() -> None:
    clock = SandboxClock(kst(2026, 1, 1))
    assert clock.now.utcoffset().total_seconds() == 9 * 3600  # type: ignore[union-attr]
    clock.set(kst(2026, 2, 1, 12))
    assert clock.now_unix == int(kst(2026, 2, 1, 12).timestamp())
    with pytest.raises(ValueError, match="naive"):
        clock.set(kst(2026, 1, 1).replace(tzinfo=None))


def test_advance_executes_in_order_at_each_schedule_at(world: SandboxWorld) -> None:
    seen: list[tuple[int, dict]] = []
    world.webhook_sink = lambda hook: seen.append((world.now, hook.body))
    world.default_notice_url = "https://merchant.example/webhook"
    world.issue_billing_key("cus_1")
    world.issue_billing_key("cus_2", behaviour=CardBehaviour.decline("[F104] 거래정지 카드"))
    t = world.now
    world.create_schedules("cus_1", [schedule_entry("b", t + 100), schedule_entry("a", t + 100)])
    world.create_schedules(
        "cus_2", [schedule_entry("c", t + 50, notice_url="https://merchant.example/per-schedule")]
    )
    hooks = world.advance(seconds=1000)
    assert [h.body["merchant_uid"] for h in hooks] == ["c", "a", "b"]  # (schedule_at, merchant_uid)
    assert [at for at, _ in seen] == [t + 50, t + 100, t + 100]  # clock at the schedule's instant
    assert world.now == t + 1000
    failed = world.schedules["c"]
    assert (failed["schedule_status"], failed["payment_status"], failed["fail_reason"]) == (
        "executed",
        "failed",
        "[F104] 거래정지 카드",
    )
    assert hooks[0].url == "https://merchant.example/per-schedule"
    assert hooks[1].url == "https://merchant.example/webhook"
    assert hooks[0].body == {"imp_uid": failed["imp_uid"], "merchant_uid": "c", "status": "failed"}
    p = world.payments[world.schedules["a"]["imp_uid"]]
    assert (p["status"], p["customer_uid_usage"], p["channel"], p["paid_at"]) == (
        "paid",
        "payment.scheduled",
        "api",
        t + 100,
    )
    assert all(h.delivered and not h.dropped for h in hooks)


def test_handler_books_next_schedule_during_advance(world: SandboxWorld) -> None:
    """The merchant recipe: on paid, re-fetch, check the amount, book the next charge."""
    world.issue_billing_key("cus_chain")
    booked: list[str] = []

    def handler(hook: Webhook) -> None:
        p = world.get_payment(hook.body["imp_uid"])
        assert p["amount"] == 8900
        if hook.body["status"] == "paid":
            n = len(booked) + 1
            mu = f"chain-{n}"
            world.create_schedules("cus_chain", [schedule_entry(mu, world.now + 30 * DAY)])
            booked.append(mu)

    world.webhook_sink = handler
    world.create_schedules("cus_chain", [schedule_entry("chain-0", world.now + DAY)])
    hooks = world.advance(seconds=100 * DAY)
    # day 1, 31, 61, 91 executed; the one booked on day 91 is still scheduled
    assert [h.body["merchant_uid"] for h in hooks] == ["chain-0", "chain-1", "chain-2", "chain-3"]
    assert world.schedules["chain-4"]["schedule_status"] == "scheduled"
    assert world.next_schedule_at() == world.schedules["chain-4"]["schedule_at"]


def test_webhook_loss_by_id_and_by_rate(world: SandboxWorld) -> None:
    got: list[str] = []
    world.webhook_sink = lambda h: got.append(h.body["merchant_uid"])
    world.issue_billing_key("cus_w")
    world.drop_webhooks_for.add("w-1")
    world.create_schedules("cus_w", [schedule_entry(f"w-{i}", world.now + 60 + i) for i in range(3)])
    hooks = world.advance(seconds=3600)
    assert got == ["w-0", "w-2"]
    lost = [h for h in hooks if h.dropped]
    assert [h.body["merchant_uid"] for h in lost] == ["w-1"]
    assert not lost[0].delivered
    assert world.payments[world.schedules["w-1"]["imp_uid"]]["status"] == "paid"  # charged anyway

    lossy = SandboxWorld(start=START, seed=3, webhook_loss_rate=0.5, webhook_sink=lambda h: None)
    lossy.issue_billing_key("cus")
    lossy.create_schedules("cus", [schedule_entry(f"l-{i:03d}", lossy.now + 60 + i) for i in range(200)])
    out = lossy.advance(seconds=3600)
    dropped = sum(h.dropped for h in out)
    assert 60 < dropped < 140
    assert all(h.delivered != h.dropped for h in out)


def test_webhooks_through_an_httpx_transport(world: SandboxWorld) -> None:
    received: list[bytes] = []

    def merchant(request: httpx.Request) -> httpx.Response:
        received.append(request.content)
        return httpx.Response(500 if b"fail" in request.content else 200)

    world.webhook_sink = httpx.MockTransport(merchant)
    world.default_notice_url = "https://merchant.example/hook"
    world.issue_billing_key("cus_t")
    world.create_schedules("cus_t", [schedule_entry("t-1", world.now + 60)])
    (hook,) = world.advance(seconds=120)
    assert orjson.loads(received[0]) == hook.body
    assert (hook.delivered, hook.status_code) == (True, 200)


def test_only_the_documented_events_fire(world: SandboxWorld) -> None:
    world.issue_billing_key("cus_e")
    world.issue_billing_key("cus_e_bad", behaviour=CardBehaviour.decline())
    paid = world.pay_again(customer_uid="cus_e", merchant_uid="e-1", amount=1000, name="n")
    world.pay_again(customer_uid="cus_e_bad", merchant_uid="e-2", amount=1000, name="n")  # failed: no webhook
    assert [h.body for h in world.outbox] == [
        {"imp_uid": paid["imp_uid"], "merchant_uid": "e-1", "status": "paid"}
    ]
    world.cancel_payment(imp_uid=paid["imp_uid"], amount=100)  # API cancel, no enable_webhook: none
    assert len(world.outbox) == 1
    world.cancel_payment(imp_uid=paid["imp_uid"], amount=100, enable_webhook=True)
    world.cancel_payment(imp_uid=paid["imp_uid"], from_console=True)  # console refund: always
    partial, full = world.outbox[1].body, world.outbox[2].body
    assert partial["status"] == "paid"
    assert full["status"] == "cancelled"
    history = world.payments[paid["imp_uid"]]["cancel_history"]
    assert [partial["cancellation_id"], full["cancellation_id"]] == [
        c["cancellation_id"] for c in history[1:]
    ]
    world.issue_billing_key("cus_key_only")  # issuance: no webhook
    assert len(world.outbox) == 3


def test_failed_schedule_retried_and_decline_nth(world: SandboxWorld) -> None:
    world.issue_billing_key("cus_n", behaviour=CardBehaviour.decline_nth(2))
    t = world.now
    world.create_schedules("cus_n", [schedule_entry("n-1", t + DAY), schedule_entry("n-2", t + 2 * DAY)])
    world.advance(seconds=3 * DAY)
    assert world.schedules["n-1"]["payment_status"] == "paid"
    assert world.schedules["n-2"]["payment_status"] == "failed"
    p = world.retry_schedule("n-2")  # 3rd charge: approved
    assert p["status"] == "paid"
    assert world.schedules["n-2"]["payment_status"] == "paid"
    assert world.charge_counts["cus_n"] == 3
    assert len(world.payment_ids_by_merchant_uid["n-2"]) == 2
    assert [h.body["status"] for h in world.outbox] == ["paid", "failed", "paid"]


def test_deleted_key_schedule_fails_at_execution(world: SandboxWorld) -> None:
    world.issue_billing_key("cus_del")
    world.create_schedules("cus_del", [schedule_entry("d-1", world.now + DAY)])
    world.delete_billing_key("cus_del")
    assert world.schedules["d-1"]["schedule_status"] == "scheduled"  # not revoked by the deletion
    (hook,) = world.advance(seconds=2 * DAY)
    assert hook.body["status"] == "failed"
    assert world.schedules["d-1"]["fail_reason"] == "등록된 고객정보가 없습니다."
    with pytest.raises(Exception, match="cus_del"):
        world.retry_schedule("d-1")


def test_full_refund_of_scheduled_payment_marks_schedule_cancelled(world: SandboxWorld) -> None:
    world.issue_billing_key("cus_r")
    world.create_schedules("cus_r", [schedule_entry("r-1", world.now + 60)])
    world.advance(seconds=120)
    world.cancel_payment(merchant_uid="r-1", from_console=True)
    assert world.schedules["r-1"]["payment_status"] == "cancelled"


def test_rate_behaviour_and_advance_guards(world: SandboxWorld) -> None:
    world.issue_billing_key("cus_rate", behaviour=CardBehaviour.rate(0.3))
    statuses = [
        world.pay_again(customer_uid="cus_rate", merchant_uid=f"rt-{i}", amount=100, name="n")["status"]
        for i in range(300)
    ]
    assert 50 < statuses.count("failed") < 130
    with pytest.raises(SandboxError):
        world.advance(seconds=-1)
    with pytest.raises(SandboxError):
        world.advance(to=kst(2025, 1, 1))
    with pytest.raises(SandboxError):
        world.advance()


def test_handler_error_propagates_and_state_stays_consistent(world: SandboxWorld) -> None:
    def broken(hook: Webhook) -> None:
        raise RuntimeError("merchant bug")

    world.webhook_sink = broken
    world.issue_billing_key("cus_b")
    world.create_schedules(
        "cus_b", [schedule_entry("b-1", world.now + 60), schedule_entry("b-2", world.now + 90)]
    )
    with pytest.raises(RuntimeError, match="merchant bug"):
        world.advance(seconds=3600)
    assert world.schedules["b-1"]["schedule_status"] == "executed"
    assert world.schedules["b-2"]["schedule_status"] == "scheduled"
    world.webhook_sink = None
    world.advance(seconds=3600)
    assert world.schedules["b-2"]["schedule_status"] == "executed"


def test_refusals_carry_code_and_message(world: SandboxWorld) -> None:
    with pytest.raises(SandboxRefusal) as info:
        world.unschedule(customer_uid="nobody")
    assert (info.value.code, info.value.message) == (1, "취소할 예약결제 기록이 존재하지 않습니다.")


def test_direct_bulk_inserts_are_indexed(world: SandboxWorld) -> None:
    """The scenario generator may add objects straight into the dicts; queries and advance still see them."""
    world.issue_billing_key("cus_bulk")
    template = world.create_schedules("cus_bulk", [schedule_entry("bulk-0", world.now + 60)])[0]
    assert world.query_schedules(world.now, world.now + DAY) == ["bulk-0"]
    world.schedules["bulk-1"] = {**template, "merchant_uid": "bulk-1", "schedule_at": world.now + 120}
    assert world.query_schedules(world.now, world.now + DAY) == ["bulk-1", "bulk-0"]
    hooks = world.advance(seconds=600)
    assert [h.body["merchant_uid"] for h in hooks] == ["bulk-0", "bulk-1"]
    p = world.payments[world.schedules["bulk-0"]["imp_uid"]]
    copy = {**p, "imp_uid": world.new_imp_uid(), "merchant_uid": "bulk-x", "cancel_history": []}
    world.payments[copy["imp_uid"]] = copy
    world.payment_ids_by_merchant_uid["bulk-x"] = [copy["imp_uid"]]
    assert copy["imp_uid"] in world.query_payments_by_status("paid", 0, world.now)
    copy["status"] = "failed"  # an edit in place needs reindex()
    world.reindex()
    assert copy["imp_uid"] not in world.query_payments_by_status("paid", 0, world.now)
