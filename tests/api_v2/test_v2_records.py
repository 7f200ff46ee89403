"""Tolerant V2 readers: V2 ids onto the V1 model, minor units, unknown cases quarantined, never a crash."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from portone_recon.api.v2.records import read_billing_key, read_cancellations, read_payment, read_schedule


def paid(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "status": "PAID",
        "id": "order-1",
        "transactionId": "tx-1",
        "merchantId": "m",
        "storeId": "store-1",
        "version": "V2",
        "channel": {"type": "LIVE", "pgProvider": "TOSSPAYMENTS", "pgMerchantId": "x"},
        "billingKey": "bk-1",
        "scheduleId": "sch-1",
        "requestedAt": "2026-03-01T00:59:59.123Z",
        "updatedAt": "2026-03-01T01:00:00Z",
        "statusChangedAt": "2026-03-01T01:00:00Z",
        "paidAt": "2026-03-01T01:00:00+09:00",
        "orderName": "월간",
        "amount": {
            "total": 9900,
            "taxFree": 0,
            "discount": 0,
            "paid": 9900,
            "cancelled": 0,
            "cancelledTaxFree": 0,
        },
        "currency": "KRW",
        "customer": {"id": "cust-1", "name": {"full": "홍길동"}},
        "origin": {"platformType": "API", "ipAddress": "1.2.3.4"},
        "method": {"type": "PaymentMethodCard", "card": {"number": "1234****", "name": "KB"}},
        "webhooks": [{"id": "w", "status": "FAILED_NOT_OK_RESPONSE", "triggeredAt": "2026-03-01T01:00:01Z"}],
        "disputes": [],
        "aFieldFromTheFuture": {"x": 1},
    }
    base.update(over)
    return base


def test_a_paid_v2_payment_maps_onto_the_v1_model() -> None:
    rec, why = read_payment(paid())
    assert why is None and rec is not None
    assert (rec["merchant_uid"], rec["customer_uid"], rec["imp_uid"]) == ("order-1", "cust-1", "tx-1")
    assert rec["status"] == "paid" and rec["status_v2"] == "PAID"
    assert rec["amount"] == 9900 and rec["amount_exact"] == Decimal(9900)
    assert rec["customer_uid_usage"] == "payment.scheduled" and rec["pay_method"] == "card"
    assert rec["paid_at"].utcoffset().total_seconds() == 9 * 3600
    assert rec["webhook_status"] == "FAILED_NOT_OK_RESPONSE" and rec["sandbox"] is False


@pytest.mark.parametrize(
    ("status", "v1"),
    [
        ("PARTIAL_CANCELLED", "paid"),
        ("PAY_PENDING", "ready"),
        ("VIRTUAL_ACCOUNT_ISSUED", "ready"),
        ("CANCELLED", "cancelled"),
    ],
)
def test_statuses_keep_their_meaning(status: str, v1: str) -> None:
    rec, _ = read_payment(paid(status=status, amount={"total": 9900, "cancelled": 3000}))
    assert (
        rec is not None
        and rec["status"] == v1
        and rec["status_v2"] == status
        and rec["cancel_amount"] == 3000
    )


def test_minor_units_become_exact_major_units() -> None:
    rec, _ = read_payment(paid(currency="USD", amount={"total": 999, "cancelled": 0}))
    assert rec is not None and rec["amount_exact"] == Decimal("9.99") and rec["amount"] is None
    rec, _ = read_payment(paid(currency="USD", amount={"total": 1000, "cancelled": 0}))
    assert rec is not None and rec["amount"] == 10


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"status": "SOMETHING_NEW"}, "status 'SOMETHING_NEW'"),
        ({"transactionId": None}, "transactionId is missing"),
        ({"amount": {"total": "9900"}}, "amount.total"),
        ({"paidAt": "yesterday"}, "paidAt"),
        ({"currency": 5}, "currency"),
    ],
)
def test_unreadable_records_give_a_reason_instead_of_raising(change: dict[str, Any], reason: str) -> None:
    rec, why = read_payment(paid(**change))
    assert rec is None and why is not None and reason in why


def test_unknown_method_case_and_v1_payment_are_read() -> None:
    rec, why = read_payment(
        paid(method={"type": "PaymentMethodHologram"}, version="V1", transactionId="imp_123")
    )
    assert why is None and rec is not None
    assert rec["pay_method"] == "hologram" and rec["api_version"] == "V1" and rec["imp_uid"] == "imp_123"


def test_cancellations_keep_only_succeeded_ones() -> None:
    data = paid(
        status="PARTIAL_CANCELLED",
        cancellations=[
            {
                "id": "c1",
                "status": "SUCCEEDED",
                "totalAmount": 1000,
                "reason": "r",
                "requestedAt": "2026-03-02T00:00:00Z",
            },
            {"id": "c2", "status": "REQUESTED", "totalAmount": 500, "requestedAt": "2026-03-03T00:00:00Z"},
        ],
    )
    rows = read_cancellations(data, "KRW")
    assert [(r["cancellation_id"], r["amount"]) for r in rows] == [("c1", 1000)]


def test_schedules_and_billing_keys() -> None:
    sched = {
        "status": "SCHEDULED",
        "id": "sch-9",
        "paymentId": "renew-9",
        "billingKey": "bk-1",
        "customer": {"id": "cust-1"},
        "totalAmount": 9900,
        "currency": "KRW",
        "timeToPay": "2026-04-01T01:00:00Z",
        "customData": "",
    }
    rec, why = read_schedule(sched)
    assert why is None and rec is not None
    assert (rec["merchant_uid"], rec["schedule_status"], rec["payment_status"]) == (
        "renew-9",
        "scheduled",
        None,
    )
    rec, _ = read_schedule({**sched, "status": "FAILED", "completedAt": "2026-04-01T01:00:05Z"})
    assert rec is not None and (rec["schedule_status"], rec["payment_status"]) == ("executed", "failed")
    assert read_schedule({**sched, "status": "PAUSED"})[0] is None
    key = {
        "status": "DELETED",
        "billingKey": "bk-1",
        "customer": {"id": "c"},
        "issuedAt": "2026-01-01T00:00:00Z",
    }
    rec, why = read_billing_key(key)
    assert rec is None and why is not None and "deletedAt" in why
    rec, why = read_billing_key(
        {**key, "deletedAt": "2026-02-01T00:00:00Z", "channels": [{"pgProvider": "X"}]}
    )
    assert why is None and rec is not None and rec["deleted"] and rec["pg_provider"] == "X"
