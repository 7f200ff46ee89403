"""The V2 sandbox's rendered-JSON cache changes nothing: a warmed view answers byte for byte what a fresh
view renders, and every change the world makes to an object shows in the next listing."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
from v2_world import START, mixed_world

from portone_recon.sandbox.v2_api import SandboxV2, rfc3339

AUTH = {"Authorization": "PortOne sandbox_v2_secret"}
LO = rfc3339(int((START - timedelta(days=10)).timestamp()))
HI = rfc3339(int((START + timedelta(days=400)).timestamp()))


def _pages(v2: SandboxV2) -> dict[str, bytes]:
    """Every listing of the view as raw bodies (small pages, so several per listing)."""
    out = {}
    with httpx.Client(base_url="https://v2.invalid", transport=v2.transport()) as c:
        for path, extra in (
            ("/payments", {}),
            ("/payment-schedules", {}),
            ("/billing-keys", {"timeRangeField": "STATUS_TIMESTAMP"}),
        ):
            for number in range(4):
                body = {"page": {"number": number, "size": 5}, "filter": {"from": LO, "until": HI, **extra}}
                r = c.get(path, params={"requestBody": json.dumps(body)}, headers=AUTH)
                assert r.status_code == 200
                out[f"{path}#{number}"] = r.content
    return out


def _fresh(v2: SandboxV2) -> dict[str, bytes]:
    return _pages(SandboxV2(v2.world, v1_customers=v2.v1_customers))


def test_a_warmed_view_answers_what_a_fresh_view_renders() -> None:
    _, v2 = mixed_world()
    v2.warm()
    assert _pages(v2) == _fresh(v2)


def test_world_changes_show_in_the_next_listing() -> None:
    w, v2 = mixed_world(v2_only=True)
    before = _pages(v2)
    paid = sorted(i for i, p in w.payments.items() if p["status"] == "paid")
    w.cancel_payment(imp_uid=paid[1], amount=500, reason="partial")
    w.delete_billing_key("v2_cust_0")
    w.advance(to=START + timedelta(days=100))  # executes due schedules: new payments, schedule states
    after = _pages(v2)
    assert after != before
    assert after == _fresh(v2)
    # An edit made directly to a world object (no world method) is seen as well.
    first = json.loads(after["/payments#0"])["items"][0]
    w.payments[first["transactionId"]]["name"] = "renamed in place"
    edited = _pages(v2)
    assert json.loads(edited["/payments#0"])["items"][0]["orderName"] == "renamed in place"
    assert edited == _fresh(v2)


def test_a_changed_view_setting_renders_again() -> None:
    _, v2 = mixed_world()
    v2.warm()
    before = _pages(v2)
    v2.v1_customers = set()
    assert _pages(v2) != before
    assert _pages(v2) == _fresh(v2)
