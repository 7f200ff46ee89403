"""The V2 sandbox's switches for UNCONFIRMED behaviours: each plays the reading it names, and every answer
under it still fits PortOne's published V2 schema."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from portone_recon.api.v2 import PortOneV2Client
from portone_recon.config import Settings
from portone_recon.sandbox.scenario import generate_merchant
from portone_recon.sandbox.v2_api import SandboxV2, rfc3339

sys.path.insert(0, str(Path(__file__).parent.parent / "contract_v2"))
from v2_contract_check import check_answer
from v2_world import START, Recorder, mixed_world

AUTH = {"Authorization": "PortOne sandbox_v2_secret"}
FAR = int(datetime(2100, 1, 1, tzinfo=UTC).timestamp())


@contextmanager
def _http(v2: SandboxV2) -> Iterator[httpx.Client]:
    """A client of ``v2`` whose every answer is checked against the schema when the block ends."""
    recorder = Recorder(v2.transport())
    with httpx.Client(base_url="https://v2.invalid", transport=recorder, headers=AUTH) as c:
        yield c
    problems = [p for req, res in recorder.exchanges for p in check_answer(req, res)]
    assert not problems, problems[:5]


def _everything(c: httpx.Client, path: str, **flt: Any) -> dict[str, Any]:
    body = {
        "page": {"number": 0, "size": 5000},
        "filter": {
            "from": rfc3339(1),
            "until": rfc3339(FAR),
            **flt,
        },
    }
    out: dict[str, Any] = c.get(path, params={"requestBody": json.dumps(body)}).json()
    return out


def test_ready_before_time_to_pay_lists_each_booked_schedule_as_a_ready_payment() -> None:
    w, v2 = mixed_world()
    booked = [s for s in w.schedules.values() if s["schedule_status"] == "scheduled"]
    v2_booked = {s["merchant_uid"] for s in booked if v2.is_v2_customer(s["customer_uid"])}
    assert v2_booked and len(v2_booked) < len(booked)
    one = sorted(v2_booked)[0]
    with _http(v2) as c:
        before = {p["id"] for p in _everything(c, "/payments")["items"]}
        assert c.get(f"/payments/{one}").status_code == 404
        v2.ready_before_time_to_pay = True
        items = _everything(c, "/payments")["items"]
        ready = {p["id"]: p for p in items if p["status"] == "READY"}
        got = c.get(f"/payments/{one}").json()
        only_ready = _everything(c, "/payments", status=["READY"])["items"]
    assert set(ready) == v2_booked and not v2_booked & before  # V1 schedules make no V2 payment
    assert got == ready[one] and got["scheduleId"] and got["amount"]["paid"] == 0
    assert {p["id"] for p in only_ready} == v2_booked
    # Run the schedule: its payment is the execution's attempt, not the READY one's.
    w.advance(to=datetime.fromtimestamp(w.schedules[one]["schedule_at"] + 60, UTC))
    with _http(v2) as c:
        ran = c.get(f"/payments/{one}").json()
    assert ran["status"] in ("PAID", "FAILED") and ran["transactionId"] != got["transactionId"]


def test_issuance_listed_shows_issuance_transactions_as_zero_amount_payments() -> None:
    sc = generate_merchant(60, 4, seed=5)
    v2 = SandboxV2(sc.world)
    issued = {i for i, p in sc.world.payments.items() if p.get("customer_uid_usage") == "issue"}
    assert issued
    with _http(v2) as c:
        hidden = {p["transactionId"] for p in _everything(c, "/payments")["items"]}
        v2.issuance_listed = True
        shown = {p["transactionId"]: p for p in _everything(c, "/payments")["items"]}
    assert not issued & hidden and issued <= set(shown)
    for imp in issued:
        p = shown[imp]
        assert p["status"] == "PAID" and p["amount"]["total"] == 0 and "scheduleId" not in p
        assert p["billingKey"] == v2.billing_key_of(p["customer"]["id"])


@pytest.mark.parametrize("shown", ["customer_uid", "own_id", "hidden"])
def test_v1_keys_show_under_their_customer_uid_their_own_id_or_not_at_all(shown: str) -> None:
    _, v2 = mixed_world()
    v2.v1_keys = shown  # type: ignore[assignment]
    pay = {"orderName": "x", "amount": {"total": 500}, "currency": "KRW"}
    with _http(v2) as c:
        keys = {k["customer"]["id"]: k["billingKey"] for k in _everything(c, "/billing-keys")["items"]}
        by_uid = c.get("/billing-keys/v1_cust_0")
        charged = c.post(
            "/payments/k-1/billing-key", json={**pay, "billingKey": v2.billing_key_of("v1_cust_0")}
        )
    v1 = {cu: key for cu, key in keys.items() if cu.startswith("v1_")}
    assert keys["v2_cust_0"] == v2.billing_key_of("v2_cust_0") != "v2_cust_0"
    if shown == "hidden":
        assert not v1 and by_uid.status_code == 404 and charged.status_code == 404
        assert charged.json()["type"] == "BILLING_KEY_NOT_FOUND"
    elif shown == "own_id":
        assert v1 and all(key != cu and v2.customer_of_key(key) == cu for cu, key in v1.items())
        assert by_uid.status_code == 404 and charged.status_code == 200
    else:
        assert v1 and all(key == cu for cu, key in v1.items())
        assert by_uid.status_code == 200 and charged.status_code == 200


def test_v1_payment_id_is_the_merchant_uid_or_the_imp_uid() -> None:
    w, v2 = mixed_world()
    v1 = next(p for p in w.payments.values() if str(p.get("customer_uid")).startswith("v1_"))
    v2p = next(p for p in w.payments.values() if str(p.get("customer_uid")).startswith("v2_"))
    with _http(v2) as c:
        assert c.get(f"/payments/{v1['merchant_uid']}").json()["transactionId"] == v1["imp_uid"]
        v2.v1_payment_id = "imp_uid"
        listed = {p["transactionId"]: p for p in _everything(c, "/payments")["items"]}
        by_imp = c.get(f"/payments/{v1['imp_uid']}")
        by_mu = c.get(f"/payments/{v1['merchant_uid']}")
        still = c.get(f"/payments/{v2p['merchant_uid']}")
    assert (
        listed[v1["imp_uid"]]["id"] == v1["imp_uid"] and listed[v2p["imp_uid"]]["id"] == v2p["merchant_uid"]
    )
    assert by_imp.status_code == 200 and by_imp.json()["transactionId"] == v1["imp_uid"]
    assert by_mu.status_code == 404 and still.status_code == 200


def test_max_window_days_refuses_a_longer_range_and_the_client_lists_it_in_pieces() -> None:
    _, v2 = mixed_world()
    lo, hi = START - timedelta(days=1), START + timedelta(days=200)
    settings = Settings(api_secret="sandbox_v2_secret", v2_api_base="https://v2.invalid")
    with PortOneV2Client(settings, transport=v2.transport(), sleep=lambda s: None) as c:
        whole = {(p["transactionId"], p["status"]) for p in c.payments(lo, hi)}
        schedules = {s["id"] for s in c.schedules(lo, hi)}
    v2.max_window_days = 10
    with _http(v2) as h:
        body = {"filter": {"from": rfc3339(int(lo.timestamp())), "until": rfc3339(int(hi.timestamp()))}}
        refused = h.get("/payments", params={"requestBody": json.dumps(body)})
    assert refused.status_code == 400 and refused.json()["type"] == "INVALID_REQUEST"
    with PortOneV2Client(settings, transport=v2.transport(), sleep=lambda s: None) as c:
        assert {(p["transactionId"], p["status"]) for p in c.payments(lo, hi)} == whole
        assert {s["id"] for s in c.schedules(lo, hi)} == schedules
    assert whole and schedules
