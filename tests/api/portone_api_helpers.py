"""Sample PortOne V1 bodies (shapes from portone-v1-api.md) and envelope helpers for the API tests."""

from __future__ import annotations

import copy
from typing import Any

import httpx

BASE = "https://api.iamport.test"
SECRET = "s3cr3t-VALUE-never-shown"
TOKEN = "tok_5f1c0ffee_secret_token"
SERVER_NOW = 1_700_000_000

PAYMENT: dict[str, Any] = {
    "imp_uid": "imp_123456789012",
    "merchant_uid": "sub_2024_05_user42",
    "pay_method": "card",
    "channel": "api",
    "pg_provider": "nice_v2",
    "emb_pg_provider": None,
    "pg_tid": "T123",
    "pg_id": "MID0001",
    "sandbox": False,
    "escrow": False,
    "apply_num": "31491375",
    "bank_code": None,
    "bank_name": None,
    "card_code": "366",
    "card_name": "신한카드",
    "card_quota": 0,
    "card_number": "559410*********4",
    "card_type": 1,
    "vbank_code": None,
    "vbank_name": None,
    "vbank_num": None,
    "vbank_holder": None,
    "vbank_date": 0,
    "vbank_issued_at": 0,
    "name": "월간 구독",
    "amount": 8900,
    "cancel_amount": 0,
    "currency": "KRW",
    "buyer_name": "홍길동",
    "buyer_email": "a@b.c",
    "buyer_tel": "010-0000-0000",
    "buyer_addr": None,
    "buyer_postcode": None,
    "custom_data": '{"order_id":42}',
    "user_agent": None,
    "status": "paid",
    "started_at": 1714521600,
    "paid_at": 1714521602,
    "failed_at": 0,
    "cancelled_at": 0,
    "fail_reason": None,
    "cancel_reason": None,
    "receipt_url": "https://receipt.test/1",
    "cancel_history": [],
    "cancel_receipt_urls": [],
    "cash_receipt_issued": False,
    "customer_uid": "user42_card1",
    "customer_uid_usage": "payment.scheduled",
}

SCHEDULE: dict[str, Any] = {
    "customer_uid": "user42_card1",
    "merchant_uid": "sub_2024_06_user42",
    "imp_uid": None,
    "pg_provider": "nice_v2",
    "pg_id": "MID0001",
    "customer_id": None,
    "schedule_at": 1717200000,
    "executed_at": 0,
    "revoked_at": 0,
    "amount": 8900,
    "currency": "KRW",
    "name": "월간 구독",
    "buyer_name": "홍길동",
    "buyer_email": "a@b.c",
    "buyer_tel": "010-0000-0000",
    "buyer_addr": None,
    "buyer_postcode": None,
    "custom_data": None,
    "schedule_status": "scheduled",
    "payment_status": None,
    "fail_reason": None,
    "promotion_id": None,
}

CUSTOMER: dict[str, Any] = {
    "customer_uid": "user42_card1",
    "pg_provider": "nice_v2",
    "pg_id": "MID0001",
    "sandbox": False,
    "customer_id": None,
    "card_name": "신한카드",
    "card_code": "366",
    "card_number": "559410*********4",
    "card_type": 1,
    "customer_name": "홍길동",
    "customer_tel": "010-0000-0000",
    "customer_email": "a@b.c",
    "customer_addr": None,
    "customer_postcode": None,
    "inserted": 1714000000,
    "updated": 1714000000,
}


def payment(**changes: Any) -> dict[str, Any]:
    p = copy.deepcopy(PAYMENT)
    p.update(changes)
    return p


def schedule(**changes: Any) -> dict[str, Any]:
    s = copy.deepcopy(SCHEDULE)
    s.update(changes)
    return s


def customer(**changes: Any) -> dict[str, Any]:
    c = copy.deepcopy(CUSTOMER)
    c.update(changes)
    return c


def env(response: Any, code: int = 0, message: str | None = None) -> dict[str, Any]:
    """A PortOne envelope."""
    return {"code": code, "message": message, "response": response}


def ok(response: Any, status: int = 200) -> httpx.Response:
    return httpx.Response(status, json=env(response))


def fail(status: int, code: int, message: str | None) -> httpx.Response:
    return httpx.Response(status, json=env(None, code, message))


def paged(items: list[Any], *, total: int, page: int, next_: int) -> httpx.Response:
    return ok({"total": total, "previous": page - 1, "next": next_, "list": items})


def token_response(token: str = TOKEN, now: int = SERVER_NOW, lifetime: int = 1800) -> httpx.Response:
    return ok({"access_token": token, "now": now, "expired_at": now + lifetime})


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t
