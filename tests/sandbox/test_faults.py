"""Fault injection: scripted and random 5xx/429, latency, dropped responses, token expiry."""

from __future__ import annotations

import httpx
import pytest
from sandbox_test_helpers import BASE, authed, schedule_entry

from portone_recon.errors import SandboxError
from portone_recon.sandbox import Faults, SandboxWorld


def test_scripted_sequence_then_normal(world: SandboxWorld, http: httpx.Client) -> None:
    world.faults.script([503, None, 429], route="GET /payments/*", retry_after=7)
    r1 = http.get("/payments/imp_000000000001")
    assert r1.status_code == 503
    assert r1.json()["response"] is None
    assert http.get("/payments/imp_000000000001").status_code == 404  # None: answered normally
    r3 = http.get("/payments/imp_000000000001")
    assert r3.status_code == 429
    assert r3.headers["retry-after"] == "7"
    assert http.get("/payments/imp_000000000001").status_code == 404  # script exhausted
    assert [e["status"] for e in world.requests[-4:]] == [503, 404, 429, 404]


def test_429_gets_a_default_retry_after_and_routes_match_templates(
    world: SandboxWorld, http: httpx.Client
) -> None:
    world.faults.script([429], route="GET /payments/status/{payment_status}")
    r = http.get("/payments/status/paid")
    assert r.status_code == 429
    assert float(r.headers["retry-after"]) >= 1
    assert http.get("/payments/status/paid").status_code == 200


def test_rate_faults_are_seeded(world: SandboxWorld) -> None:
    def statuses(seed: int) -> list[int]:
        w = SandboxWorld(start=world.clock.now, seed=seed)
        w.faults.fail_rate(502, 0.5, route="GET *")
        c = authed(w)
        return [c.get("/payments/imp_000000000001").status_code for _ in range(60)]

    a, b = statuses(1), statuses(1)
    assert a == b
    assert 10 < a.count(502) < 50
    assert set(a) == {502, 404}


def test_latency_uses_the_injected_sleep(world: SandboxWorld, http: httpx.Client) -> None:
    slept: list[float] = []
    world.faults.sleep = slept.append
    world.faults.add_latency(0.25, route="GET /subscribe/*").add_latency(
        0.5, route="GET /subscribe/customers/*"
    )
    http.get("/subscribe/customers/cus_none")
    http.get("/payments/imp_000000000001")
    assert slept == [0.5]


def test_dropped_response_applies_the_write(world: SandboxWorld, http: httpx.Client) -> None:
    world.issue_billing_key("cus_d")
    world.faults.drop_response(route="POST /subscribe/payments/again")
    with pytest.raises(httpx.ReadTimeout):
        http.post(
            "/subscribe/payments/again",
            json={"customer_uid": "cus_d", "merchant_uid": "d-1", "amount": 5000, "name": "n"},
        )
    (imp,) = world.payment_ids_by_merchant_uid["d-1"]
    assert world.payments[imp]["status"] == "paid"  # the charge happened
    found = http.get("/payments/find/d-1").json()["response"]  # the caller resolves the unknown outcome
    assert found["imp_uid"] == imp
    assert world.requests[-2]["dropped"] is True
    # times=1: the next write is answered
    r = http.post(
        "/subscribe/payments/schedule",
        json={"customer_uid": "cus_d", "schedules": [schedule_entry("d-2", world.now + 60)]},
    )
    assert r.status_code == 200


def test_expire_token_now(world: SandboxWorld) -> None:
    c = httpx.Client(transport=world.transport(), base_url=BASE)
    tok = world.issue_token(world.imp_key, world.imp_secret)["access_token"]
    c.headers["Authorization"] = tok
    assert c.get("/payments/imp_000000000001").status_code == 404
    world.expire_token()
    assert c.get("/payments/imp_000000000001").status_code == 401
    new = world.issue_token(world.imp_key, world.imp_secret)["access_token"]
    assert new != tok


def test_configure_from_json_and_clear(world: SandboxWorld, http: httpx.Client) -> None:
    f = world.faults
    f.configure(
        {
            "latency": {"*": 0},
            "errors": [
                {"route": "GET /payments/*", "sequence": [500]},
                {"route": "POST *", "status": 503, "rate": 1.0},
            ],
            "drop_response": [{"route": "POST /payments/cancel", "times": 2}],
        }
    )
    assert f.to_dict()["drop_response"] == [{"route": "POST /payments/cancel", "times": 2}]
    assert http.get("/payments/imp_000000000001").status_code == 500
    assert http.post("/payments/cancel", json={"imp_uid": "x"}).status_code == 503
    f.configure({"clear": True})
    assert f.to_dict() == {"latency": {}, "errors": [], "drop_response": []}
    with pytest.raises(SandboxError):
        f.configure({"bogus": 1})
    with pytest.raises(SandboxError):
        Faults().fail_rate(200, 0.5)
