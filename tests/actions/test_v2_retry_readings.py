"""A V2 retry of a failed renewal under both readings of "a FAILED payment id can be charged again":
it is charged once (the id itself, or the next retry id when PortOne refuses), never twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from portone_recon._time import KST
from portone_recon.actions.v2_client import V2ActionsClient
from portone_recon.api.v2 import PortOneV2Client
from portone_recon.config import Settings
from portone_recon.sandbox import CardBehaviour, SandboxWorld
from portone_recon.sandbox.v2_api import SandboxV2
from portone_recon.store import Store
from portone_recon.sync.v2 import sync_v2

START = datetime(2025, 3, 1, 9, 0, tzinfo=KST)
READINGS = [None, "MAX_TRANSACTION_COUNT_REACHED", "ALREADY_PAID"]


def _failed_renewal(
    tmp_path: Path, refusal: str | None, *declined: int
) -> tuple[SandboxWorld, SandboxV2, Store]:
    """A V2 customer whose first renewal failed (its card declines the charges ``declined``), synced."""
    w = SandboxWorld(start=START, seed=2)
    w.issue_billing_key("cust_r", behaviour=CardBehaviour.decline_nth(*declined))
    at = int((START + timedelta(days=1)).timestamp())
    w.create_schedules(
        "cust_r", [{"merchant_uid": "sub_r_1", "schedule_at": at, "amount": 8900, "name": "월간"}]
    )
    w.advance(to=START + timedelta(days=2))
    assert w.payments[w.payment_ids_by_merchant_uid["sub_r_1"][-1]]["status"] == "failed"
    v2 = SandboxV2(w)
    v2.failed_id_refusal = refusal
    store = Store(tmp_path / "r.duckdb")
    with _api(v2) as api:
        sync_v2(api, store, now=datetime.fromtimestamp(w.now, UTC), lookback=timedelta(days=30))
    return w, v2, store


def _api(v2: SandboxV2) -> PortOneV2Client:
    settings = Settings(api_secret="sandbox_v2_secret", v2_api_base="https://v2.invalid")
    return PortOneV2Client(settings, transport=v2.transport(), sleep=lambda s: None)


def _paid(w: SandboxWorld) -> list[dict[str, Any]]:
    return [p for p in w.payments.values() if p["customer_uid"] == "cust_r" and p["status"] == "paid"]


def _charges(v2: SandboxV2) -> list[str]:
    return [r["path"] for r in v2.requests if r["method"] == "POST" and r["path"].endswith("/billing-key")]


@pytest.mark.parametrize("refusal", READINGS, ids=["recharged", "refused-400", "refused-409"])
def test_a_failed_renewal_is_retried_once_under_either_reading(tmp_path: Path, refusal: str | None) -> None:
    w, v2, store = _failed_renewal(tmp_path, refusal, 1)
    with _api(v2) as api:
        client = V2ActionsClient(api, store)
        got = client.retry_schedule("sub_r_1")
        assert got.status == "paid"
        assert got.merchant_uid == ("sub_r_1" if refusal is None else "sub_r_1-r1")
        assert [p["merchant_uid"] for p in _paid(w)] == [got.merchant_uid]
        # A re-run (a lost answer, a second apply) finds the charge by reading and sends nothing.
        sent = len(_charges(v2))
        again = V2ActionsClient(api, store).retry_schedule("sub_r_1")
        assert again.imp_uid == got.imp_uid and len(_charges(v2)) == sent
        assert [p.status for p in client.iter_payments_by_merchant_uid("sub_r_1")][-1] == "paid"
    assert len(_paid(w)) == 1


@pytest.mark.parametrize("refusal", READINGS[1:], ids=["refused-400", "refused-409"])
def test_a_declined_retry_id_moves_on_to_the_next_one(tmp_path: Path, refusal: str) -> None:
    w, v2, store = _failed_renewal(tmp_path, refusal, 1, 2)
    with _api(v2) as api:
        first = V2ActionsClient(api, store).retry_schedule("sub_r_1")
        assert (first.merchant_uid, first.status) == ("sub_r_1-r1", "failed")
        second = V2ActionsClient(api, store).retry_schedule("sub_r_1")
        assert (second.merchant_uid, second.status) == ("sub_r_1-r2", "paid")
    assert [p["merchant_uid"] for p in _paid(w)] == ["sub_r_1-r2"]
    # The second retry starts from the last id of the chain, as read back (not from the payment id).
    assert _charges(v2) == [
        "/payments/sub_r_1/billing-key",
        "/payments/sub_r_1-r1/billing-key",
        "/payments/sub_r_1-r1/billing-key",
        "/payments/sub_r_1-r2/billing-key",
    ]
