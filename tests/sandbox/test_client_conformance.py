"""Conformance: the real PortOneClient against the sandbox, for every endpoint it calls and every error."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sandbox_test_helpers import schedule_entry

from portone_recon.api import PortOneClient
from portone_recon.errors import (
    BadRequestError,
    BusinessError,
    NotFoundError,
    OutcomeUnknownError,
    RateLimitError,
    ServerError,
)
from portone_recon.sandbox import CardBehaviour, SandboxWorld

DAY = 86400


@pytest.fixture
def client(world: SandboxWorld) -> Iterator[PortOneClient]:
    c = world.client()
    try:
        yield c
    finally:
        c.close()


def test_payments_endpoints(world: SandboxWorld, client: PortOneClient) -> None:
    world.issue_billing_key("cus_1", customer_name="홍길동")
    world.issue_billing_key("cus_2", behaviour=CardBehaviour.decline("[F114] 잔액부족"))
    paid = client.pay_again(customer_uid="cus_1", merchant_uid="o-1", amount=8900, name="월간 구독")
    assert (paid.status, paid.amount, paid.channel, paid.customer_uid_usage) == (
        "paid",
        8900,
        "api",
        "payment",
    )
    assert paid.paid_at == world.clock.now
    failed = client.pay_again(customer_uid="cus_2", merchant_uid="o-2", amount=8900, name="월간 구독")
    assert (failed.status, failed.fail_reason, failed.paid_at) == ("failed", "[F114] 잔액부족", None)

    assert client.fetch_payment(paid.imp_uid).buyer_name == "홍길동"
    multi = client.fetch_payments(imp_uids=[paid.imp_uid, "imp_000000000001"], merchant_uids=["o-2"])
    assert {p.imp_uid for p in multi.found} == {paid.imp_uid, failed.imp_uid}
    assert "imp_000000000001" in multi.missing
    assert client.find_payment("o-1").imp_uid == paid.imp_uid
    assert client.find_payment("o-2", "failed").imp_uid == failed.imp_uid
    assert [p.imp_uid for p in client.iter_payments_by_merchant_uid("o-1")] == [paid.imp_uid]

    world.advance(seconds=DAY)
    since, until = world.clock.now - timedelta(days=200), world.clock.now + timedelta(seconds=1)
    assert [p.imp_uid for p in client.iter_payments_by_status("paid", since, until)] == [paid.imp_uid]
    assert [p.imp_uid for p in client.iter_payments_by_status("failed", since, until)] == [failed.imp_uid]
    assert len(list(client.iter_payments_by_status("all", since, until))) == 2
    pages = list(client.iter_payment_pages("paid", since, until))
    assert sum(len(pg.items) for pg in pages) == 1

    part = client.cancel_payment(imp_uid=paid.imp_uid, amount=900, reason="부분환불", checksum=8900)
    assert (part.status, part.cancel_amount, len(part.cancel_history)) == ("paid", 900, 1)
    full = client.cancel_payment(merchant_uid="o-1", full=True, reason="전액환불")
    assert (full.status, full.cancel_amount, full.net_amount) == ("cancelled", 8900, 0)
    assert full.cancel_history[1].cancellation_id


def test_payment_errors(world: SandboxWorld, client: PortOneClient) -> None:
    with pytest.raises(NotFoundError) as nf:
        client.fetch_payment("imp_999999999999")
    assert (nf.value.http_status, nf.value.code, nf.value.message) == (
        404,
        -1,
        "존재하지 않는 결제정보입니다.",
    )
    with pytest.raises(NotFoundError):
        client.find_payment("nope")
    with pytest.raises(BusinessError) as be:
        client.cancel_payment(imp_uid="imp_999999999999", full=True)
    assert (be.value.code, be.value.message) == (1, "취소할 결제건이 존재하지 않습니다.")
    world.issue_billing_key("cus_1")
    p = world.pay_again(customer_uid="cus_1", merchant_uid="o-9", amount=100, name="n")
    client.cancel_payment(imp_uid=p["imp_uid"], full=True)
    with pytest.raises(BusinessError) as twice:
        client.cancel_payment(imp_uid=p["imp_uid"], full=True)
    assert twice.value.message == "이미 전액취소된 주문입니다."
    with pytest.raises(BusinessError) as unknown:
        client.pay_again(customer_uid="ghost", merchant_uid="o-10", amount=100, name="n")
    assert unknown.value.message == "등록되지 않은 구매자입니다."


def test_billing_key_endpoints(world: SandboxWorld, client: PortOneClient) -> None:
    key = client.issue_billing_key(
        "cus_k", card_number="4242-4242-4242-4242", expiry="2030-12", birth="900101", customer_name="김철수"
    )
    assert (key.customer_uid, key.pg_provider, key.customer_name) == ("cus_k", "nice_v2", "김철수")
    assert client.fetch_billing_key("cus_k").card_number == key.card_number
    multi = client.fetch_billing_keys(["cus_k", "cus_zz"])
    assert [k.customer_uid for k in multi.found] == ["cus_k"]
    assert multi.missing == ["cus_zz"]
    world.pay_again(customer_uid="cus_k", merchant_uid="k-1", amount=100, name="n")
    assert [p.merchant_uid for p in client.iter_billing_key_payments("cus_k")] == ["k-1"]
    with pytest.raises(BusinessError) as bad_card:
        client.issue_billing_key("cus_bad", card_number="4000-0000-0000-0127", expiry="2030-12")
    assert bad_card.value.code == -1
    deleted = client.delete_billing_key("cus_k", reason="해지")
    assert deleted.customer_uid == "cus_k"
    with pytest.raises(NotFoundError) as gone:
        client.fetch_billing_key("cus_k")
    assert gone.value.message == "요청하신 customer_uid(cus_k)로 등록된 정보를 찾을 수 없습니다."


def test_schedule_endpoints(world: SandboxWorld, client: PortOneClient) -> None:
    world.issue_billing_key("cus_s", behaviour=CardBehaviour.decline_nth(2))
    t = world.now
    created = client.create_schedules(
        "cus_s",
        [schedule_entry(f"s-{m}", t + (m * 30 + 1) * DAY) for m in range(8)],  # ~8 months
    )
    assert [s.merchant_uid for s in created] == [f"s-{m}" for m in range(8)]
    assert created[0].schedule_status == "scheduled"
    with pytest.raises(BusinessError) as dup:
        client.create_schedules("cus_s", [schedule_entry("s-0", t + DAY)])
    assert dup.value.code == 1
    with pytest.raises(BusinessError) as nokey:
        client.create_schedules("ghost", [schedule_entry("g-0", t + DAY)])
    assert nokey.value.message == "등록된 고객정보가 없습니다."

    assert client.fetch_schedule("s-3").amount == 8900
    since, until = world.clock.now, world.clock.now + timedelta(days=400)
    listed = list(client.iter_schedules(since, until))  # > 3 months: split into windows
    assert sorted(s.merchant_uid for s in listed) == sorted(f"s-{m}" for m in range(8))
    assert len(list(client.iter_schedules(since, until, status="scheduled"))) == 8
    per_customer = list(client.iter_customer_schedules("cus_s", since, until))
    assert len(per_customer) == 8
    assert len(list(client.iter_billing_key_schedules("cus_s", since, until))) == 8

    moved = client.update_schedule("s-7", t + 300 * DAY)
    assert moved.schedule_at == world.clock.now + timedelta(days=300)
    revoked = client.unschedule(customer_uid="cus_s", merchant_uids=["s-6"])
    assert [s.schedule_status for s in revoked] == ["revoked"]
    with pytest.raises(BusinessError) as none:
        client.unschedule(customer_uid="cus_s", merchant_uids=["s-6"])
    assert none.value.message == "취소할 예약결제 기록이 존재하지 않습니다."

    world.advance(seconds=40 * DAY)  # s-0 paid (charge 1), s-1 failed (charge 2)
    assert client.fetch_schedule("s-1").payment_status == "failed"
    with pytest.raises(BadRequestError):
        client.retry_schedule("s-0")  # already paid
    retried = client.retry_schedule("s-1")
    assert (retried.status, retried.customer_uid_usage) == ("paid", "payment.scheduled")
    again = client.reschedule("s-6", world.now + DAY)  # a revoked entry can be re-armed
    assert (again.schedule_status, again.payment_status) == ("scheduled", None)
    with pytest.raises(BadRequestError):
        client.update_schedule("s-0", world.now + DAY)
    with pytest.raises(NotFoundError):
        client.fetch_schedule("nope")


def test_token_expiry_mid_session_is_refreshed(world: SandboxWorld, client: PortOneClient) -> None:
    world.issue_billing_key("cus_t")
    client.fetch_billing_key("cus_t")
    world.advance(seconds=3 * 3600)  # the cached token is long expired in sandbox time
    assert client.fetch_billing_key("cus_t").customer_uid == "cus_t"
    world.expire_token()
    assert client.fetch_billing_key("cus_t").customer_uid == "cus_t"
    statuses = [e["status"] for e in world.requests]
    assert statuses.count(401) == 2


def test_client_retries_faults_and_reports_unknown_outcomes(
    world: SandboxWorld, client: PortOneClient
) -> None:
    world.issue_billing_key("cus_f")
    world.faults.script([503, 429], route="GET /subscribe/customers/*")
    assert client.fetch_billing_key("cus_f").customer_uid == "cus_f"  # retried through 503 and 429
    world.faults.drop_response(route="POST /subscribe/payments/again")
    with pytest.raises(OutcomeUnknownError):
        client.pay_again(customer_uid="cus_f", merchant_uid="f-1", amount=100, name="n")
    assert client.find_payment("f-1").status == "paid"  # resolved by reading, not by re-sending
    again_posts = [e for e in world.requests if e["route"] == "/subscribe/payments/again"]
    assert len(again_posts) == 1  # never re-sent
    world.faults.fail_rate(429, 1.0, route="GET /payments/find/*", retry_after=0)
    with pytest.raises(RateLimitError):
        client.find_payment("f-1")
    world.faults.clear()
    world.faults.script([500])
    with pytest.raises((ServerError, OutcomeUnknownError)):
        client.pay_again(customer_uid="cus_f", merchant_uid="f-2", amount=100, name="n")


def test_large_listing_pages_of_1000(world: SandboxWorld) -> None:
    world.issue_billing_key("cus_big")
    for i in range(2500):
        world.pay_again(customer_uid="cus_big", merchant_uid=f"big-{i}", amount=1000, name="n")
        if i % 500 == 0:
            world.advance(seconds=60)
    with world.client(concurrency=4) as c:
        since = world.clock.now - timedelta(days=1)
        got = [
            p.imp_uid
            for p in c.iter_payments_by_status("paid", since, world.clock.now + timedelta(seconds=1))
        ]
    assert len(got) == len(set(got)) == 2500
    pages = [e for e in world.requests if e["route"] == "/payments/status/{payment_status}"]
    assert len(pages) == 3
