"""The V2 requests the client sends for one payment or schedule, as values: built here, sent by
:meth:`PortOneV2Client.send`, and shown as they are by a fix-up's preview (one builder for both).

A :class:`V2Request` holds what goes over the wire except the ``Authorization`` header, so showing one
never shows the API secret.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

from portone_recon.api.v2.paging import rfc3339

__all__ = [
    "V2Request",
    "billing_key_payment_request",
    "get_payment_request",
    "revoke_schedule_request",
    "schedule_request",
]


@dataclass(frozen=True)
class V2Request:
    """One V2 request without its credentials.

    Attributes:
        method: HTTP method.
        path: the path, ids percent-escaped.
        endpoint: the path template (named in errors).
        json: the JSON body, if any.
        body_query: JSON sent in the ``requestBody`` query parameter, if any.
        params: plain query parameters (``storeId`` of a read).
        idempotency_key: the ``Idempotency-Key`` header, if any.
    """

    method: str
    path: str
    endpoint: str
    json: dict[str, Any] | None = None
    body_query: dict[str, Any] | None = None
    params: tuple[tuple[str, str], ...] = field(default=())
    idempotency_key: str | None = None

    def describe(self) -> str:
        """The request in full as one line: method, path (with its query), headers that matter, body."""
        line = f"{self.method} {self.path}"
        query = [f"{k}={v}" for k, v in self.params]
        if self.body_query is not None:
            query.append("requestBody=" + json.dumps(self.body_query, ensure_ascii=False, sort_keys=True))
        if query:
            line += "?" + "&".join(query)
        if self.idempotency_key is not None:
            line += f' [Idempotency-Key: "{self.idempotency_key}"]'
        if self.json is not None:
            line += " " + json.dumps(self.json, ensure_ascii=False, sort_keys=True)
        return line


def _seg(value: str, what: str) -> str:
    """A percent-escaped path segment ('/' included), refusing empty ids."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty string, got {value!r}")
    return quote(value, safe="")


def _positive(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{what} must be a positive integer in minor units, got {value!r}")
    return value


def _store(store_id: str | None) -> dict[str, str]:
    return {"storeId": store_id} if store_id else {}


def payment_input(
    *,
    store_id: str | None,
    billing_key: str,
    order_name: str,
    amount: int,
    currency: str,
    customer_id: str | None,
    notice_urls: list[str] | None,
) -> dict[str, Any]:
    """A ``BillingKeyPaymentInput`` (the body of a billing-key payment, the ``payment`` of a schedule)."""
    _seg(billing_key, "billing_key")
    body: dict[str, Any] = {
        **_store(store_id),
        "billingKey": billing_key,
        "orderName": order_name,
        "amount": {"total": _positive(amount, "amount")},
        "currency": currency,
    }
    if customer_id:
        body["customer"] = {"id": customer_id}
    if notice_urls:
        body["noticeUrls"] = list(notice_urls)
    return body


def get_payment_request(payment_id: str, *, store_id: str | None) -> V2Request:
    """``GET /payments/{paymentId}``."""
    return V2Request(
        "GET",
        f"/payments/{_seg(payment_id, 'payment_id')}",
        "/payments/{paymentId}",
        params=(("storeId", store_id),) if store_id else (),
    )


def billing_key_payment_request(
    payment_id: str,
    *,
    store_id: str | None,
    billing_key: str,
    order_name: str,
    amount: int,
    currency: str = "KRW",
    customer_id: str | None = None,
    notice_urls: list[str] | None = None,
    idempotency_key: str,
) -> V2Request:
    """``POST /payments/{paymentId}/billing-key`` with an ``Idempotency-Key``."""
    return V2Request(
        "POST",
        f"/payments/{_seg(payment_id, 'payment_id')}/billing-key",
        "/payments/{paymentId}/billing-key",
        json=payment_input(
            store_id=store_id,
            billing_key=billing_key,
            order_name=order_name,
            amount=amount,
            currency=currency,
            customer_id=customer_id,
            notice_urls=notice_urls,
        ),
        idempotency_key=_seg(idempotency_key, "idempotency_key") and idempotency_key,
    )


def schedule_request(
    payment_id: str,
    *,
    store_id: str | None,
    billing_key: str,
    order_name: str,
    amount: int,
    time_to_pay: datetime,
    currency: str = "KRW",
    customer_id: str | None = None,
    notice_urls: list[str] | None = None,
) -> V2Request:
    """``POST /payments/{paymentId}/schedule``; the store id goes inside ``payment`` (as the SDK does)."""
    payment = payment_input(
        store_id=store_id,
        billing_key=billing_key,
        order_name=order_name,
        amount=amount,
        currency=currency,
        customer_id=customer_id,
        notice_urls=notice_urls,
    )
    return V2Request(
        "POST",
        f"/payments/{_seg(payment_id, 'payment_id')}/schedule",
        "/payments/{paymentId}/schedule",
        json={"payment": payment, "timeToPay": rfc3339(time_to_pay)},
    )


def revoke_schedule_request(schedule_id: str, *, store_id: str | None) -> V2Request:
    """``DELETE /payment-schedules`` for ONE schedule id (the call is all-or-nothing)."""
    _seg(schedule_id, "schedule_id")
    return V2Request(
        "DELETE",
        "/payment-schedules",
        "/payment-schedules",
        body_query={**_store(store_id), "scheduleIds": [schedule_id]},
    )
