"""The one place a fix-up's PortOne request is built: from the action's target, never from a file.

The planner shows these requests to people; apply builds them again from the recorded target right
before sending. What a request moves (:func:`money_of`) is counted from the request itself: every
schedule entry of a booking, the charge of a retry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from portone_recon.errors import ActionError


@dataclass(frozen=True)
class Money:
    """What one request moves: ``entries`` charges or bookings totalling ``amount`` in ``currency``."""

    entries: int
    amount: int
    currency: str


def _need(target: Mapping[str, Any], key: str, kind: str) -> Any:
    value = target.get(key)
    if value is None or value == "":
        raise ActionError(f"{kind} action: target field {key!r} is missing")
    return value


def _need_int(target: Mapping[str, Any], key: str, kind: str) -> int:
    value = _need(target, key, kind)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ActionError(f"{kind} action: target field {key!r} must be a whole number, got {value!r}")
    return value


def _need_instant(target: Mapping[str, Any], key: str, kind: str) -> datetime:
    value = _need(target, key, kind)
    try:
        at = datetime.fromisoformat(str(value))
    except ValueError:
        raise ActionError(f"{kind} action: target field {key!r} is not an ISO instant: {value!r}") from None
    if at.tzinfo is None:
        raise ActionError(f"{kind} action: target field {key!r} has no UTC offset: {value!r}")
    return at


def rebook_request(target: Mapping[str, Any]) -> dict[str, Any]:
    """``POST /subscribe/payments/schedule`` booking exactly one period of one subscription."""
    kind = "rebook"
    cu = str(_need(target, "customer_uid", kind))
    amount = _need_int(target, "amount", kind)
    if amount <= 0:
        raise ActionError(f"rebook action: amount must be > 0, got {amount}")
    entry: dict[str, Any] = {
        "merchant_uid": str(_need(target, "merchant_uid", kind)),
        "schedule_at": int(_need_instant(target, "schedule_at", kind).timestamp()),
        "currency": str(_need(target, "currency", kind)),
        "amount": amount,
        "name": str(_need(target, "name", kind)),
    }
    if target.get("notice_url"):
        entry["notice_url"] = str(target["notice_url"])
    return {
        "method": "POST",
        "endpoint": "/subscribe/payments/schedule",
        "path": "/subscribe/payments/schedule",
        "json": {"customer_uid": cu, "schedules": [entry]},
    }


def retry_request(target: Mapping[str, Any]) -> dict[str, Any]:
    """``POST /subscribe/payments/schedule/{merchant_uid}/retry``: charge a failed schedule again."""
    smu = str(_need(target, "schedule_merchant_uid", "retry"))
    return {
        "method": "POST",
        "endpoint": "/subscribe/payments/schedule/{merchant_uid}/retry",
        "path": f"/subscribe/payments/schedule/{smu}/retry",
    }


def unschedule_request(target: Mapping[str, Any]) -> dict[str, Any]:
    """``POST /subscribe/payments/unschedule`` of one schedule (never ``customer_uid`` alone: that would
    revoke every schedule of the billing key)."""
    smu = str(_need(target, "schedule_merchant_uid", "unschedule"))
    body: dict[str, Any] = {"merchant_uid": [smu]}
    if target.get("customer_uid"):
        body = {"customer_uid": str(target["customer_uid"]), "merchant_uid": [smu]}
    return {
        "method": "POST",
        "endpoint": "/subscribe/payments/unschedule",
        "path": "/subscribe/payments/unschedule",
        "json": body,
    }


def reverify_request(merchant_uid: str | None, imp_uid: str | None, amount: int) -> dict[str, Any]:
    """The read a reverify makes and the local write it would do."""
    if imp_uid:
        read = {"method": "GET", "endpoint": "/payments/{imp_uid}", "path": f"/payments/{imp_uid}"}
    elif merchant_uid:
        read = {
            "method": "GET",
            "endpoint": "/payments/findAll/{merchant_uid}",
            "path": f"/payments/findAll/{merchant_uid}",
        }
    else:
        raise ActionError("reverify action: target has neither imp_uid nor merchant_uid")
    return {**read, "local": {"mark_paid": {"merchant_uid": merchant_uid, "expected_amount": amount}}}


def build_request(kind: str, target: Mapping[str, Any]) -> dict[str, Any]:
    """The request of an action of ``kind`` with this target."""
    if kind == "rebook":
        return rebook_request(target)
    if kind == "retry":
        return retry_request(target)
    if kind == "unschedule":
        return unschedule_request(target)
    if kind == "reverify":
        amount = target.get("expected_amount")
        return reverify_request(
            target.get("merchant_uid"), target.get("imp_uid"), int(amount) if isinstance(amount, int) else 0
        )
    raise ActionError(f"unknown action kind {kind!r}")


def money_of(kind: str, target: Mapping[str, Any], request: Mapping[str, Any]) -> Money:
    """What a request moves, counted from the request (every booked entry) or, for a retry, the charge."""
    if kind == "rebook":
        body = request.get("json") or {}
        entries = body.get("schedules") or []
        total = 0
        currency = "KRW"
        for e in entries:
            total += int(e["amount"])
            currency = str(e.get("currency") or "KRW")
        return Money(len(entries), total, currency)
    if kind == "retry":
        return Money(1, _need_int(target, "amount", "retry"), str(target.get("currency") or "KRW"))
    return Money(0, 0, str(target.get("currency") or "KRW"))
