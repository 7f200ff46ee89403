"""The sandbox's switches for unsettled V1 behaviours: each reading is played as described."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import fields

import httpx
import pytest

from portone_recon.sandbox import SandboxWorld
from portone_recon.sandbox.server import SandboxServer
from portone_recon.sandbox.variants import VARIANTS, ApiVariant


def _paid(world: SandboxWorld) -> str:
    world.issue_billing_key("cus_a")
    p = world.pay_again(customer_uid="cus_a", merchant_uid="m-1", amount=10_000, name="구독")
    return str(p["imp_uid"])


def test_partial_cancel_can_set_cancelled_and_leave_money(world: SandboxWorld) -> None:
    world.variant = ApiVariant(partial_cancel_status="cancelled")
    imp = _paid(world)
    world.advance(seconds=600)
    world.cancel_payment(imp_uid=imp, amount=1_000)
    p = world.payments[imp]
    assert (p["status"], p["cancel_amount"], p["cancelled_at"]) == ("cancelled", 1_000, world.now)
    world.advance(seconds=600)
    world.cancel_payment(imp_uid=imp, amount=2_000)  # a second partial refund is still accepted
    assert world.payments[imp]["cancel_amount"] == 3_000
    world.variant = ApiVariant()
    other = world.pay_again(customer_uid="cus_a", merchant_uid="m-2", amount=500, name="추가")["imp_uid"]
    world.cancel_payment(imp_uid=other, amount=100)
    assert world.payments[other]["status"] == "paid"  # the documented reading


@pytest.mark.parametrize(("moves", "first"), [(True, "refunded"), (False, "later")])
def test_updated_sorting_with_and_without_refunds(world: SandboxWorld, moves: bool, first: str) -> None:
    world.variant = ApiVariant(updated_on_partial_cancel=moves)
    refunded = _paid(world)
    world.advance(seconds=600)
    later = world.pay_again(customer_uid="cus_a", merchant_uid="m-2", amount=500, name="추가")["imp_uid"]
    world.advance(seconds=600)
    world.cancel_payment(imp_uid=refunded, amount=1_000)  # after ``later`` was paid
    ids = world.query_payments_by_status("paid", 0, world.now + 1, "-updated")
    assert ids[0] == {"refunded": refunded, "later": later}[first]


def test_card_type_as_text_and_lookup_404_for_all(world: SandboxWorld) -> None:
    world.variant = ApiVariant(card_type="str", unknown_in_lookup="404")
    world.issue_billing_key("cus_a")
    assert isinstance(world.billing_keys["cus_a"]["card_type"], str)
    c = httpx.Client(transport=world.transport(), base_url="https://sandbox.invalid")
    token = c.post("/users/getToken", json={"imp_key": world.imp_key, "imp_secret": world.imp_secret})
    c.headers["Authorization"] = token.json()["response"]["access_token"]
    assert c.get("/subscribe/customers", params={"customer_uid[]": ["cus_a"]}).status_code == 200
    assert c.get("/subscribe/customers", params={"customer_uid[]": ["cus_a", "nobody"]}).status_code == 404
    world.variant = ApiVariant()
    assert c.get("/subscribe/customers", params={"customer_uid[]": ["cus_a", "nobody"]}).status_code == 207


@pytest.fixture
def served(world: SandboxWorld) -> Iterator[str]:
    server = SandboxServer(world, port=0)
    server.start_background()
    try:
        yield server.base_url
    finally:
        server.stop()


def test_schedule_window_switch_and_the_control_surface(world: SandboxWorld, served: str) -> None:
    with httpx.Client(base_url=served) as c:
        assert c.get("/__sandbox/variant").json()["response"]["schedule_window_days"] == 92
        token = c.post("/users/getToken", json={"imp_key": world.imp_key, "imp_secret": world.imp_secret})
        c.headers["Authorization"] = token.json()["response"]["access_token"]
        q = {"schedule_from": world.now, "schedule_to": world.now + 91 * 86400}
        assert c.get("/subscribe/payments/schedule", params=q).status_code == 200
        r = c.post("/__sandbox/variant", json={"schedule_window_days": 90})
        assert r.json()["response"]["schedule_window_days"] == 90
        assert c.get("/subscribe/payments/schedule", params=q).status_code == 400
        assert c.post("/__sandbox/variant", json={"card_type": "float"}).status_code == 400
        assert c.post("/__sandbox/variant", json={"colour": "red"}).status_code == 400
    assert world.variant.card_type == "int"  # a refused change changes nothing


def test_every_named_variant_is_valid() -> None:
    # each switch flipped on its own, and all of them together
    names = [f.name for f in fields(ApiVariant)]
    default = VARIANTS["documented"].to_dict()
    alone = {
        n
        for v in VARIANTS.values()
        for n in names
        if [m for m in names if v.to_dict()[m] != default[m]] == [n]
    }
    assert alone == set(names)
    assert all(VARIANTS["all-unkind"].to_dict()[n] != default[n] for n in names)
    assert all(isinstance(v, ApiVariant) for v in VARIANTS.values())
    with pytest.raises(ValueError, match="partial_cancel_status"):
        ApiVariant(partial_cancel_status="refunded")  # type: ignore[arg-type]
