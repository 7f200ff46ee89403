"""The V2 sandbox's own rules: auth, store defaulting, requestBody, page reach, idempotency, readings."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
import pytest
from v2_world import START, mixed_world

from portone_recon.sandbox.v2_api import SandboxV2, rfc3339

AUTH = {"Authorization": "PortOne sandbox_v2_secret"}


def _client(v2: SandboxV2) -> httpx.Client:
    return httpx.Client(base_url="https://v2.invalid", transport=v2.transport())


def _listing(**flt: object) -> dict[str, str]:
    body = {"page": {"number": 0, "size": 500}, "filter": flt}
    return {"requestBody": json.dumps(body)}


def test_auth_store_and_page_reach_are_enforced() -> None:
    _, v2 = mixed_world()
    with _client(v2) as c:
        r = c.get("/payments", headers={"Authorization": "Bearer x"})
        assert r.status_code == 401 and r.json()["type"] == "UNAUTHORIZED"
        r = c.get("/payments", params=_listing(storeId="store-other"), headers=AUTH)
        assert r.status_code == 403 and r.json()["type"] == "FORBIDDEN"
        body = {"page": {"number": 60, "size": 1000}}
        r = c.get("/payments", params={"requestBody": json.dumps(body)}, headers=AUTH)
        assert r.status_code == 400 and r.json()["type"] == "INVALID_REQUEST"
        # The same listing as a JSON body, and the store defaulting to the credential's.
        lo = rfc3339(int((START - timedelta(days=1)).timestamp()))
        hi = rfc3339(int((START + timedelta(days=80)).timestamp()))
        a = c.request("GET", "/payments", json={"filter": {"from": lo, "until": hi}}, headers=AUTH).json()
        b = c.get(
            "/payments", params=_listing(**{"from": lo, "until": hi, "storeId": v2.store_id}), headers=AUTH
        ).json()
        assert a["page"]["totalCount"] == b["page"]["totalCount"] > 0
        assert {i["storeId"] for i in b["items"]} == {v2.store_id}


def test_schedules_default_to_the_past_90_days_and_hide_the_future() -> None:
    _, v2 = mixed_world(v2_only=True)
    with _client(v2) as c:
        default = c.get("/payment-schedules", headers=AUTH).json()["items"]
        far = rfc3339(int((START + timedelta(days=400)).timestamp()))
        explicit = c.get(
            "/payment-schedules", params=_listing(until=far, **{"from": rfc3339(1)}), headers=AUTH
        )
        everything = explicit.json()["items"]
    assert all(s["status"] != "SCHEDULED" for s in default)
    assert any(s["status"] == "SCHEDULED" for s in everything) and len(everything) > len(default)


def test_v1_customers_payments_are_v1_and_their_schedules_hidden_unless_switched() -> None:
    _, v2 = mixed_world()
    far = rfc3339(int((START + timedelta(days=400)).timestamp()))
    params = _listing(until=far, **{"from": rfc3339(1)})
    with _client(v2) as c:
        hidden = c.get("/payment-schedules", params=params, headers=AUTH).json()["items"]
        v2.v1_schedules_visible = True
        shown = c.get("/payment-schedules", params=params, headers=AUTH).json()["items"]
        pays = c.get("/payments", params=params, headers=AUTH).json()["items"]
    assert not any(s["customer"]["id"].startswith("v1_") for s in hidden)
    assert any(s["customer"]["id"].startswith("v1_") for s in shown)
    v1 = [p for p in pays if p["customer"]["id"].startswith("v1_")]
    assert v1 and {p["version"] for p in v1} == {"V1"}
    assert all(p["transactionId"].startswith("imp_") for p in v1)


def test_a_decline_either_way_and_idempotent_replay() -> None:
    _, v2 = mixed_world()
    key = v2.billing_key_of("v2_cust_3")
    body = {"billingKey": key, "orderName": "x", "amount": {"total": 500}, "currency": "KRW"}
    with _client(v2) as c:
        r = c.post("/payments/d-1/billing-key", json=body, headers=AUTH)
        assert r.status_code == 502 and r.json()["type"] == "PG_PROVIDER"
        v2.decline_as_error = False
        r = c.post("/payments/d-2/billing-key", json=body, headers=AUTH)
        assert r.status_code == 200
        assert c.get("/payments/d-2", headers=AUTH).json()["status"] == "FAILED"
        ok = {**body, "billingKey": v2.billing_key_of("v2_cust_0")}
        headers = {**AUTH, "Idempotency-Key": '"same-key-000000001"'}
        first = c.post("/payments/i-1/billing-key", json=ok, headers=headers)
        again = c.post("/payments/i-1/billing-key", json=ok, headers=headers)
        assert first.status_code == again.status_code == 200 and first.json() == again.json()
        plain = c.post("/payments/i-1/billing-key", json=ok, headers=AUTH)
        assert plain.status_code == 409 and plain.json()["type"] == "ALREADY_PAID"


def test_the_webhook_log_shows_a_lost_delivery() -> None:
    _, v2 = mixed_world()
    with _client(v2) as c:
        lost = c.get("/payments/sub_v2_cust_1_1", headers=AUTH).json()
        fine = c.get("/payments/sub_v2_cust_0_1", headers=AUTH).json()
    assert [h["status"] for h in lost["webhooks"]] == ["FAILED_UNEXPECTED_ERROR"]
    assert [h["status"] for h in fine["webhooks"]] == ["SUCCEEDED"]
    assert lost["status"] == "PAID"


@pytest.mark.parametrize("inclusive", [True, False])
def test_until_bound_either_way(inclusive: bool) -> None:
    w, v2 = mixed_world()
    v2.until_inclusive = inclusive
    # a payment listed at its paid_at (a partial refund would move its status time)
    p = next(p for p in w.payments.values() if p["status"] == "paid" and not p["cancel_amount"])
    at = rfc3339(int(p["paid_at"]))
    with _client(v2) as c:
        items = c.get("/payments", params=_listing(until=at, **{"from": rfc3339(1)}), headers=AUTH).json()[
            "items"
        ]
    assert (p["imp_uid"] in {i["transactionId"] for i in items}) is inclusive
