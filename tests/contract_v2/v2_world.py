"""A small mixed merchant for the V2 tests: V2 and V1 customers, schedules, a refund, a lost webhook."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx

from portone_recon._time import KST
from portone_recon.sandbox import CardBehaviour, SandboxWorld
from portone_recon.sandbox.v2_api import SandboxV2

START = datetime(2025, 1, 1, 9, 0, tzinfo=KST)


class Recorder(httpx.BaseTransport):
    """Keeps every request and its answer."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.exchanges: list[tuple[httpx.Request, httpx.Response]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        response.read()
        self.exchanges.append((request, response))
        return response


def mixed_world(v2_only: bool = False) -> tuple[SandboxWorld, SandboxV2]:
    w = SandboxWorld(start=START, seed=5, default_notice_url="https://shop.invalid/hook")
    names = [f"v2_cust_{i}" for i in range(4)] + ([] if v2_only else [f"v1_cust_{i}" for i in range(3)])
    for i, cu in enumerate(names):
        w.issue_billing_key(cu, behaviour=CardBehaviour.decline() if i == 3 else None)
        w.create_schedules(
            cu,
            [
                {
                    "merchant_uid": f"sub_{cu}_{m}",
                    "schedule_at": int((START + timedelta(days=30 * m + 3)).timestamp()),
                    "amount": 8900,
                    "name": "월간 구독",
                }
                for m in range(5)
            ],
        )
    w.drop_webhooks_for.add("sub_v2_cust_1_1")
    w.advance(to=START + timedelta(days=70))
    paid = sorted(i for i, p in w.payments.items() if p["status"] == "paid")
    w.cancel_payment(imp_uid=paid[0], amount=1000, reason="부분 환불")
    v2 = SandboxV2(w, v1_customers=[c for c in names if c.startswith("v1_")])
    return w, v2
