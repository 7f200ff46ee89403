"""Fixtures of the sync tests: synthetic PortOne JSON and pages."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest

BASE = 1_760_000_000  # 2025-10-09 (unix seconds)


def payment(n: int, **over: Any) -> dict[str, Any]:
    """A paid payment JSON as PortOne returns it."""
    p: dict[str, Any] = {
        "imp_uid": f"imp_{n:012d}",
        "merchant_uid": f"order_{n}",
        "pay_method": "card",
        "channel": "api",
        "pg_provider": "nice_v2",
        "pg_tid": f"T{n}",
        "sandbox": False,
        "card_name": "신한카드",
        "card_number": "559410*********4",
        "name": "월간 구독",
        "amount": 8900,
        "cancel_amount": 0,
        "currency": "KRW",
        "buyer_name": "홍길동",
        "buyer_email": "a@b.c",
        "buyer_tel": "010-0000-0000",
        "custom_data": None,
        "status": "paid",
        "started_at": BASE + n,
        "paid_at": BASE + n + 2,
        "failed_at": 0,
        "cancelled_at": 0,
        "fail_reason": None,
        "cancel_reason": None,
        "receipt_url": "https://example.invalid/r",
        "cancel_history": [],
        "customer_uid": f"cust_{n % 7}",
        "customer_uid_usage": "payment.scheduled",
    }
    p.update(over)
    return p


def cancel(n: int, amount: int, at: int, **over: Any) -> dict[str, Any]:
    c: dict[str, Any] = {
        "pg_tid": f"C{n}",
        "amount": amount,
        "cancelled_at": at,
        "reason": "고객 요청",
        "cancellation_id": f"cx_{n}",
        "receipt_url": None,
    }
    c.update(over)
    return c


def schedule(n: int, **over: Any) -> dict[str, Any]:
    s: dict[str, Any] = {
        "customer_uid": f"cust_{n % 7}",
        "merchant_uid": f"sched_{n}",
        "imp_uid": None,
        "schedule_at": BASE + 86400 * n,
        "executed_at": 0,
        "revoked_at": 0,
        "amount": 8900,
        "currency": "KRW",
        "name": "월간 구독",
        "buyer_name": "홍길동",
        "buyer_email": None,
        "buyer_tel": None,
        "custom_data": None,
        "schedule_status": "scheduled",
        "payment_status": None,
        "fail_reason": None,
    }
    s.update(over)
    return s


@dataclass(frozen=True)
class FakePage:
    """Looks like the client's RawPage."""

    endpoint: str
    items: list[Any]
    body: bytes = field(default=b"")
    params: tuple[tuple[str, str], ...] = ()
    total: int = 0
    next: int = 0


def page(
    items: list[Any], endpoint: str = "/payments/status/{payment_status}", *, raw: bool = True
) -> FakePage:
    """A page whose body is the envelope exactly as PortOne sends it."""
    body = orjson.dumps(
        {
            "code": 0,
            "message": None,
            "response": {"total": len(items), "previous": 0, "next": 0, "list": items},
        }
    )
    return FakePage(endpoint=endpoint, items=items, body=body if raw else b"", total=len(items))


@pytest.fixture
def make_page() -> Any:
    return page
