"""Every V2 request the client builds and every V2 sandbox answer conform to PortOne's published V2 schema.

The facts come from ``portone_v2_schema.json`` (derived by ``derive_v2_schema.py``, committed here).
"""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from v2_contract_check import SCHEMA, check_answer, check_named, check_request
from v2_world import START, Recorder, mixed_world

from portone_recon.api.v2 import PortOneV2Client
from portone_recon.config import Settings
from portone_recon.errors import ConflictError, NotFoundError


@pytest.fixture(scope="module")
def exchanges() -> list[tuple[httpx.Request, httpx.Response]]:
    _, v2 = mixed_world()
    recorder = Recorder(v2.transport())
    settings = Settings(
        api_secret="sandbox_v2_secret", v2_api_base="https://v2.invalid", store_id=v2.store_id
    )
    with PortOneV2Client(settings, transport=recorder, sleep=lambda s: None) as c:
        since, until = START - timedelta(days=1), START + timedelta(days=400)
        pays = list(c.payments(since, START + timedelta(days=80)))
        list(c.payments(since, START + timedelta(days=80), timestamp_type="CREATED_AT", version="V1"))
        scheds = list(c.schedules(since, until))
        keys = list(c.billing_keys(since, until))
        assert pays and scheds and keys
        c.get_payment(pays[0]["id"])
        c.get_schedule(scheds[0]["id"])
        c.get_billing_key(keys[0]["billingKey"])
        c.find_by_transaction(pays[0]["transactionId"], since, START + timedelta(days=80))
        with pytest.raises(NotFoundError):
            c.get_payment("nope/with slash")
        key = v2.billing_key_of("v2_cust_0")
        c.create_schedule(
            "rebook-v2_cust_0-202506", billing_key=key, order_name="월간", amount=8900,
            time_to_pay=START + timedelta(days=160), customer_id="v2_cust_0",
        )  # fmt: skip
        with pytest.raises(ConflictError):
            c.create_schedule(
                "rebook-v2_cust_0-202506", billing_key=key, order_name="월간", amount=8900,
                time_to_pay=START + timedelta(days=160),
            )  # fmt: skip
        c.pay_with_billing_key(
            "addon-1",
            billing_key=key,
            order_name="추가",
            amount=3300,
            customer_id="v2_cust_0",
            idempotency_key="addon-1-key-0001",
        )
        assert c.revoke_schedule("schedule-rebook-v2_cust_0-202506") is True
        assert c.revoke_schedule("schedule-rebook-v2_cust_0-202506") is False
    return recorder.exchanges


def test_every_v2_request_uses_the_schemas_paths_parameters_and_bodies(
    exchanges: list[tuple[httpx.Request, httpx.Response]],
) -> None:
    assert [p for req, _ in exchanges for p in check_request(req)] == []
    called = {
        check_request.__globals__["endpoint_of"](r.method, r.url.raw_path.decode().split("?")[0])
        for r, _ in exchanges
    }
    assert set(SCHEMA["endpoints"]) - called == set()


def test_every_v2_answer_has_the_schemas_fields_types_enums_and_cases(
    exchanges: list[tuple[httpx.Request, httpx.Response]],
) -> None:
    assert len([1 for _, r in exchanges if r.status_code == 200]) >= 10
    assert [p for q, r in exchanges for p in check_answer(q, r)] == []
    versions = {
        item["version"]
        for q, r in exchanges
        if q.url.path == "/payments" and r.status_code == 200
        for item in r.json()["items"]
    }
    assert versions == {"V1", "V2"}


def test_the_checks_catch_what_they_are_for() -> None:
    paid = {"status": "PAID", "id": "x", "amount": {"total": "9900"}, "bogus": 1, "paidAt": "yesterday"}
    found = list(check_named(paid, "Payment", "p"))
    assert any("p.amount.total: expected integer" in f for f in found)
    assert any("p.bogus: not a field" in f for f in found)
    assert any("p.transactionId: required" in f for f in found)
    assert any("p.paidAt: 'yesterday' is not RFC 3339" in f for f in found)
    assert any("not a case of Payment" in f for f in check_named({"status": "PAUSED"}, "Payment", "p"))
    bad = httpx.Request("GET", "https://x/payments", params={"size": "5"})
    assert check_request(bad) == ["get /payments: query parameter 'size' is not in the schema"]
    bad = httpx.Request("DELETE", "https://x/payment-schedules")
    assert check_request(bad) == ["delete /payment-schedules: requestBody required and not sent"]
