"""End to end against the in-process sandbox (the simulator speaking portone-v1-api.md)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from portone_recon._time import KST
from portone_recon.errors import OutcomeUnknownError
from portone_recon.sandbox.world import SandboxWorld

START = datetime(2026, 1, 1, tzinfo=KST)


@pytest.fixture
def world() -> SandboxWorld:
    w = SandboxWorld(start=START, seed=3)
    w.issue_billing_key("cu_1")
    return w


def test_windows_and_concurrent_pages_return_every_payment_once(world: SandboxWorld) -> None:
    expected = []
    for i in range(12):
        p = world.pay_again(customer_uid="cu_1", merchant_uid=f"m_{i}", amount=1000 + i, name="월간")
        expected.append(p["imp_uid"])
        world.advance(seconds=17 * 86400)
    with world.client(concurrency=3) as client:
        got = list(client.iter_payments_by_status("paid", START, START + timedelta(days=210), limit=2))
        again = list(client.iter_payments_by_status("paid", START, START + timedelta(days=210), limit=2))
    assert sorted(p.imp_uid for p in got) == sorted(expected)
    assert [p.imp_uid for p in got] == [p.imp_uid for p in again]  # stable order
    assert {p.amount for p in got} == set(range(1000, 1012))


def test_dropped_write_is_outcome_unknown_and_resolved_by_reading(world: SandboxWorld) -> None:
    world.faults.drop_response(route="POST /subscribe/payments/again")
    with world.client() as client:
        with pytest.raises(OutcomeUnknownError) as info:
            client.pay_again(customer_uid="cu_1", merchant_uid="m_drop", amount=8900, name="월간")
        assert info.value.request.json["merchant_uid"] == "m_drop"
        found = client.find_payment("m_drop")
    assert found.status == "paid" and found.amount == 8900
    assert len(world.payment_ids_by_merchant_uid["m_drop"]) == 1  # sent once, never re-sent


def test_503_retry_and_401_refresh_against_sandbox(world: SandboxWorld) -> None:
    p = world.pay_again(customer_uid="cu_1", merchant_uid="m_1", amount=8900, name="월간")
    sleeps: list[float] = []
    with world.client(sleep=sleeps.append) as client:
        assert client.fetch_payment(p["imp_uid"]).amount == 8900
        world.faults.script([503, None], route="GET /payments/*")
        assert client.fetch_payment(p["imp_uid"]).status == "paid"
        assert len(sleeps) == 1
        world.expire_token()
        assert client.fetch_payment(p["imp_uid"]).imp_uid == p["imp_uid"]
        # getToken, GET, 503 + retry, 401 + getToken + retry
        assert client.api_calls == 7
