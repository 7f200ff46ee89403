"""``sandbox serve --v2``: one world over V1 and V2 on one port, driven by each API's own client."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from portone_recon.api import PortOneClient
from portone_recon.api.v2 import PortOneV2Client
from portone_recon.errors import UnauthorizedError
from portone_recon.sandbox.process import serve_in_subprocess


def _v1(info: dict) -> PortOneClient:
    return PortOneClient(
        imp_key=info["imp_key"],
        imp_secret=info["imp_secret"],
        api_base=info["base_url"],
        sleep=lambda s: None,
    )


def _v2(info: dict, secret: str | None = None) -> PortOneV2Client:
    return PortOneV2Client(
        api_secret=secret or info["v2_api_secret"], v2_api_base=info["v2_base_url"], sleep=lambda s: None
    )


def test_a_v2_merchant_is_served_over_v2_beside_v1_and_the_controls() -> None:
    with serve_in_subprocess("--v2", "--seed", "1", "--start", "2025-01-01T09:00:00+09:00") as info:
        assert info["v2_base_url"] == info["base_url"] + "/v2"
        assert info["v2_api_secret"] == "sandbox_v2_secret"  # the sandbox's fake, fine to print
        assert info["v1_customers"] == []
        with _v1(info) as v1, _v2(info) as v2:
            v1.issue_billing_key("cust_a", card_number="4092-0230-1234-1234", expiry="2030-12")
            now = v1.server_now()
            v2.create_schedule(
                "renewal_a_1",
                billing_key="billing-key-cust_a",
                order_name="월간 구독",
                amount=8900,
                time_to_pay=now + timedelta(days=1),
                customer_id="cust_a",
            )
            assert v1.fetch_schedule("renewal_a_1").schedule_status == "scheduled"  # one world
            moved = httpx.post(
                info["base_url"] + "/__sandbox/advance", json={"seconds": 2 * 86400}, timeout=10
            )
            assert moved.status_code == 200
            paid = v2.get_payment("renewal_a_1")
            assert (paid["status"], paid["version"], paid["amount"]["total"]) == ("PAID", "V2", 8900)
            listed = list(v2.payments(now - timedelta(days=1), now + timedelta(days=3)))
            assert [p["id"] for p in listed] == ["renewal_a_1"]
            assert [p.merchant_uid for p in v1.iter_payments_by_merchant_uid("renewal_a_1")] == [
                "renewal_a_1"
            ]
        with _v2(info, secret="not-the-secret") as wrong, pytest.raises(UnauthorizedError):
            wrong.get_payment("renewal_a_1")


def test_a_mixed_merchant_shows_each_payment_once_with_its_version() -> None:
    args = ("--v2", "mixed", "--subscribers", "40", "--months", "3", "--seed", "3")
    with serve_in_subprocess(*args) as info:
        v1_customers = set(info["v1_customers"])
        assert v1_customers
        with _v2(info) as v2:
            state = httpx.get(info["base_url"] + "/__sandbox/state", timeout=10).json()
            now = datetime.fromtimestamp(int(state["response"]["now"]), UTC)
            listed = list(v2.payments(now - timedelta(days=400), now))
        assert listed
        ids = [p["transactionId"] for p in listed]
        assert len(ids) == len(set(ids))
        for p in listed:
            customer = (p.get("customer") or {}).get("id")
            want = "V1" if customer in v1_customers else "V2"
            assert p["version"] == want, p["id"]
        assert {p["version"] for p in listed} == {"V1", "V2"}


def test_the_worlds_latency_faults_hold_for_v2_routes_too() -> None:
    import threading

    from portone_recon.sandbox import SandboxWorld
    from portone_recon.sandbox.server import SandboxServer
    from portone_recon.sandbox.v2_api import SandboxV2

    world = SandboxWorld(start=datetime(2025, 1, 1, tzinfo=UTC), seed=1)
    waited: list[float] = []
    world.faults.sleep = waited.append  # what the server would sleep, recorded instead
    world.faults.add_latency(0.05, route="GET /payments")
    server = SandboxServer(world, v2=SandboxV2(world, api_secret="s"), v2_prefix="/v2")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        r = httpx.get(f"{base}/v2/payments", headers={"Authorization": "PortOne s"})
        assert r.status_code == 200
        assert waited == [0.05]  # the V2 listing waited as a V1 request on the same route would
    finally:
        server.shutdown()
        server.server_close()
