"""Tolerant readers of V2 objects: raw JSON -> the flat record the store keeps, or the reason it cannot be.

PortOne promises that V2 answers may gain fields, enum values and oneOf cases. A reader therefore never
raises on a record: it returns ``(record, None)`` or ``(None, reason)`` with the first field that could not
be read named, and the caller stores or quarantines. Unknown fields are ignored (the raw JSON is kept); an
unknown ``status`` (a new oneOf case) is a reason, since no rule can know what it means.

V2 ids map onto the V1 model: payment ``id`` is the merchant's order id (``merchant_uid``), ``customer.id``
the customer (``customer_uid``), ``transactionId`` the attempt (``imp_uid``; for a V1 payment read through
V2 it *is* the V1 imp_uid). Amounts are int64 minor units; ``amount_exact`` holds major units like V1's
(an amount whose major value does not fit the store's ``DECIMAL(18, 4)`` is unreadable). A time is RFC
3339 (:data:`RFC3339_PATTERN`: date, ``T``, time, optional fraction, ``Z`` or an offset); a currency is
three ASCII capitals.

The bulk sync reads the same objects in SQL (:mod:`portone_recon.sync.v2_sql`) by these same rules;
these readers are the reference (single payments, and the wording of why a record is unreadable), and
the tests run every odd record through both.

Two shapes are read for what they are whatever PortOne turns out to send:

* a payment of amount 0 that no schedule made is a billing-key issuance transaction
  (``customer_uid_usage = 'issue'``, as V1 records one): it moves no money and no order is behind it;
* a READY payment tied to a schedule (:data:`SCHEDULE_PLACEHOLDER_SQL`) is the schedule's payment before
  it runs, not an attempt: the sync keeps no row of it (the schedule row says all it knows).
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Any

#: V2 payment status -> the V1 status the rules read (``status_v2`` keeps the V2 word).
PAYMENT_STATUS = {
    "READY": "ready",
    "PAY_PENDING": "ready",
    "VIRTUAL_ACCOUNT_ISSUED": "ready",
    "PAID": "paid",
    "PARTIAL_CANCELLED": "paid",
    "FAILED": "failed",
    "CANCELLED": "cancelled",
}
#: V2 schedule status -> (V1 schedule_status, V1 payment_status).
SCHEDULE_STATUS: dict[str, tuple[str, str | None]] = {
    "SCHEDULED": ("scheduled", None),
    "STARTED": ("scheduled", None),
    "PENDING": ("executed", None),
    "SUCCEEDED": ("executed", "paid"),
    "FAILED": ("executed", "failed"),
    "REVOKED": ("revoked", None),
}
BILLING_KEY_STATUSES = frozenset({"ISSUED", "DELETED"})
#: A staged ``payments`` row that is a schedule's payment before it runs (no attempt was made).
SCHEDULE_PLACEHOLDER_SQL = "status_v2 = 'READY' AND schedule_id IS NOT NULL"
#: ISO 4217 currencies without a minor unit (the rest: 2 places, except the 3-place ones below).
ZERO_DECIMAL = frozenset(
    {
        "KRW",
        "JPY",
        "VND",
        "CLP",
        "ISK",
        "UGX",
        "XAF",
        "XOF",
        "XPF",
        "PYG",
        "RWF",
        "KMF",
        "GNF",
        "DJF",
        "BIF",
        "VUV",
    }
)
THREE_DECIMAL = frozenset({"BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"})
#: An RFC 3339 instant (ASCII digits; the fraction may be longer than microseconds, which are kept).
#: Also the pattern of the SQL reader (RE2 and Python's ``re`` read it alike).
RFC3339_PATTERN = (
    r"([0-9]{4}-[0-9]{2}-[0-9]{2})[Tt ]((?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9])(\.[0-9]+)?"
    r"([Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
)
#: An ISO 4217 currency code.
CURRENCY_PATTERN = "[A-Z]{3}"
#: Major amounts must be below this in magnitude (the store's ``DECIMAL(18, 4)``).
MAJOR_LIMIT = 10**14
_RFC3339 = re.compile(RFC3339_PATTERN)
_CURRENCY = re.compile(CURRENCY_PATTERN)

Record = dict[str, Any]


class _Unreadable(Exception):
    """A field that cannot be read (internal: turned into a reason string)."""


def minor_exponent(currency: str) -> int:
    """Decimal places of ``currency``'s minor unit (ISO 4217)."""
    if currency in ZERO_DECIMAL:
        return 0
    return 3 if currency in THREE_DECIMAL else 2


def to_major(minor: int, currency: str) -> Decimal:
    """An int64 minor-unit amount in major units (exact): 999 USD cents -> Decimal('9.99')."""
    return Decimal(minor).scaleb(-minor_exponent(currency))


def whole(value: Decimal) -> int | None:
    """The integer of an amount with no fraction, else None (the project's rule for the BIGINT column)."""
    return int(value) if value == value.to_integral_value() else None


def parse_rfc3339(text: Any, field: str, *, required: bool = False) -> datetime | None:
    if text is None:
        if required:
            raise _Unreadable(f"{field} is missing")
        return None
    if not isinstance(text, str):
        raise _Unreadable(f"{field} must be an RFC 3339 string, got {text!r}")
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise _Unreadable(f"{field} is not an RFC 3339 time: {text!r}")
    day, clock, fraction, offset = match.groups()
    offset = "+00:00" if offset in ("Z", "z") else offset
    try:
        return datetime.fromisoformat(f"{day}T{clock}{(fraction or '')[:7]}{offset}")
    except ValueError:
        raise _Unreadable(f"{field} is not an RFC 3339 time: {text!r}") from None


def _str(data: Any, key: str, where: str, *, required: bool = False) -> str | None:
    value = data.get(key) if isinstance(data, dict) else None
    if value is None:
        if required:
            raise _Unreadable(f"{where}{key} is missing")
        return None
    if not isinstance(value, str) or (required and not value):
        raise _Unreadable(f"{where}{key} must be a non-empty string, got {value!r}")
    return value


def _int(data: Any, key: str, where: str, *, required: bool = True) -> int | None:
    value = data.get(key) if isinstance(data, dict) else None
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Unreadable(f"{where}{key} must be an integer amount (minor units), got {value!r}")
    return value


def _obj(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _Unreadable(f"{key} must be an object, got {type(value).__name__}")
    return value


def _money(minor: int | None, currency: str) -> tuple[int | None, Decimal | None]:
    if minor is None:
        return None, None
    exact = to_major(minor, currency)
    if abs(exact) >= MAJOR_LIMIT:
        raise _Unreadable(f"amount {minor} {currency} is out of range")
    return whole(exact), exact


def _currency(data: dict[str, Any]) -> str:
    value = _str(data, "currency", "", required=True)
    assert value is not None
    if _CURRENCY.fullmatch(value) is None:
        raise _Unreadable(f"currency must be an ISO 4217 code, got {value!r}")
    return value


def _last_webhook_status(data: dict[str, Any]) -> str | None:
    hooks = data.get("webhooks")
    if not isinstance(hooks, list) or not hooks:
        return None
    statuses = [h.get("status") for h in hooks if isinstance(h, dict)]
    if any(s == "SUCCEEDED" for s in statuses):
        return "SUCCEEDED"
    last = statuses[-1] if statuses else None
    return last if isinstance(last, str) else None


def read_payment(data: Any) -> tuple[Record | None, str | None]:
    """A V2 ``Payment`` as a ``payments`` row (V1 vocabulary + V2 columns), or why it cannot be stored."""
    try:
        if not isinstance(data, dict):
            raise _Unreadable(f"expected an object, got {type(data).__name__}")
        status_v2 = _str(data, "status", "", required=True)
        assert status_v2 is not None
        if status_v2 not in PAYMENT_STATUS:
            raise _Unreadable(f"status {status_v2!r} is not a payment status this version knows")
        currency = _currency(data)
        amount = _obj(data, "amount")
        total, total_exact = _money(_int(amount, "total", "amount."), currency)
        cancelled, cancelled_exact = _money(
            _int(amount, "cancelled", "amount.", required=False) or 0, currency
        )
        customer = _obj(data, "customer")
        channel = _obj(data, "channel")
        method = _obj(data, "method")
        raw_card = method.get("card")
        card: dict[str, Any] = raw_card if isinstance(raw_card, dict) else {}
        failure = _obj(data, "failure")
        full_name = _customer_name(customer)
        cancellations = data.get("cancellations")
        if cancellations is not None and not isinstance(cancellations, list):
            raise _Unreadable("cancellations must be a list")
        cancel_reason = None
        for entry in cancellations or []:
            if isinstance(entry, dict) and entry.get("status") == "SUCCEEDED":
                cancel_reason = entry.get("reason") if isinstance(entry.get("reason"), str) else cancel_reason
        method_type = method.get("type")
        billing_key = _str(data, "billingKey", "")
        schedule_id = _str(data, "scheduleId", "")
        record: Record = {
            "imp_uid": _str(data, "transactionId", "", required=True),
            "merchant_uid": _str(data, "id", "", required=True),
            "customer_uid": _str(customer, "id", "customer."),
            "customer_uid_usage": _usage(billing_key, schedule_id, total_exact),
            "status": PAYMENT_STATUS[status_v2],
            "amount": total,
            "amount_exact": total_exact,
            "cancel_amount": cancelled,
            "cancel_amount_exact": cancelled_exact,
            "currency": currency,
            "pay_method": _method_name(method_type),
            "channel": _platform(_obj(data, "origin").get("platformType")),
            "pg_provider": channel.get("pgProvider") if isinstance(channel.get("pgProvider"), str) else None,
            "pg_tid": _str(data, "pgTxId", ""),
            "name": _str(data, "orderName", ""),
            "card_name": card.get("name") if isinstance(card.get("name"), str) else None,
            "card_number": card.get("number") if isinstance(card.get("number"), str) else None,
            "buyer_name": full_name if isinstance(full_name, str) else None,
            "buyer_email": customer.get("email") if isinstance(customer.get("email"), str) else None,
            "buyer_tel": customer.get("phoneNumber")
            if isinstance(customer.get("phoneNumber"), str)
            else None,
            "custom_data": _str(data, "customData", ""),
            "fail_reason": failure.get("reason") if isinstance(failure.get("reason"), str) else None,
            "cancel_reason": cancel_reason,
            "started_at": parse_rfc3339(data.get("requestedAt"), "requestedAt"),
            "paid_at": parse_rfc3339(data.get("paidAt"), "paidAt"),
            "failed_at": parse_rfc3339(data.get("failedAt"), "failedAt"),
            "cancelled_at": parse_rfc3339(data.get("cancelledAt"), "cancelledAt"),
            "sandbox": channel.get("type") == "TEST",
            "api_version": data.get("version") if data.get("version") in ("V1", "V2") else None,
            "status_v2": status_v2,
            "store_id": _str(data, "storeId", ""),
            "billing_key": billing_key,
            "schedule_id": schedule_id,
            "webhook_status": _last_webhook_status(data),
            "status_changed_at": parse_rfc3339(data.get("statusChangedAt"), "statusChangedAt"),
        }
    except _Unreadable as exc:
        return None, str(exc)
    return record, None


def read_cancellations(data: dict[str, Any], currency: str) -> list[Record]:
    """The SUCCEEDED ``cancellations[]`` of a readable payment as ``payment_cancellations`` rows."""
    out: list[Record] = []
    for entry in data.get("cancellations") or []:
        if not isinstance(entry, dict) or entry.get("status") != "SUCCEEDED":
            continue
        total = entry.get("totalAmount")
        if isinstance(total, bool) or not isinstance(total, int) or not isinstance(entry.get("id"), str):
            continue
        try:
            amount, exact = _money(total, currency)
        except _Unreadable:
            continue
        try:
            when = parse_rfc3339(entry.get("cancelledAt") or entry.get("requestedAt"), "cancelledAt")
        except _Unreadable:
            when = None
        out.append(
            {
                "cancellation_id": entry["id"],
                "pg_tid": entry.get("pgCancellationId")
                if isinstance(entry.get("pgCancellationId"), str)
                else None,
                "amount": amount,
                "amount_exact": exact,
                "cancelled_at": when,
                "reason": entry.get("reason") if isinstance(entry.get("reason"), str) else None,
                "receipt_url": entry.get("receiptUrl") if isinstance(entry.get("receiptUrl"), str) else None,
            }
        )
    return out


def read_schedule(data: Any) -> tuple[Record | None, str | None]:
    """A V2 ``PaymentSchedule`` as a ``schedules`` row keyed by its ``paymentId`` (the merchant_uid)."""
    try:
        if not isinstance(data, dict):
            raise _Unreadable(f"expected an object, got {type(data).__name__}")
        status_v2 = _str(data, "status", "", required=True)
        assert status_v2 is not None
        if status_v2 not in SCHEDULE_STATUS:
            raise _Unreadable(f"status {status_v2!r} is not a schedule status this version knows")
        schedule_status, payment_status = SCHEDULE_STATUS[status_v2]
        currency = _currency(data)
        amount, exact = _money(_int(data, "totalAmount", ""), currency)
        customer = _obj(data, "customer")
        full_name = _customer_name(customer)
        record: Record = {
            "merchant_uid": _str(data, "paymentId", "", required=True),
            "schedule_id": _str(data, "id", "", required=True),
            "customer_uid": _str(customer, "id", "customer.", required=True),
            "billing_key": _str(data, "billingKey", "", required=True),
            "schedule_status": schedule_status,
            "payment_status": payment_status,
            "status_v2": status_v2,
            "schedule_at": parse_rfc3339(data.get("timeToPay"), "timeToPay", required=True),
            "executed_at": parse_rfc3339(data.get("completedAt") or data.get("startedAt"), "completedAt"),
            "revoked_at": parse_rfc3339(data.get("revokedAt"), "revokedAt"),
            "amount": amount,
            "amount_exact": exact,
            "currency": currency,
            "name": _str(data, "orderName", ""),
            "custom_data": data.get("customData") if isinstance(data.get("customData"), str) else None,
            "buyer_name": full_name if isinstance(full_name, str) else None,
            "buyer_email": customer.get("email") if isinstance(customer.get("email"), str) else None,
            "buyer_tel": customer.get("phoneNumber")
            if isinstance(customer.get("phoneNumber"), str)
            else None,
            "store_id": _str(data, "storeId", ""),
        }
    except _Unreadable as exc:
        return None, str(exc)
    return record, None


def read_billing_key(data: Any) -> tuple[Record | None, str | None]:
    """A V2 ``BillingKeyInfo`` as a ``billing_keys`` row (the key itself in ``billing_key``)."""
    try:
        if not isinstance(data, dict):
            raise _Unreadable(f"expected an object, got {type(data).__name__}")
        status = _str(data, "status", "", required=True)
        if status not in BILLING_KEY_STATUSES:
            raise _Unreadable(f"status {status!r} is not a billing-key status this version knows")
        customer = _obj(data, "customer")
        channels = data.get("channels")
        first = (
            channels[0] if isinstance(channels, list) and channels and isinstance(channels[0], dict) else {}
        )
        methods = data.get("methods")
        card: dict[str, Any] = {}
        if isinstance(methods, list):
            for m in methods:
                if isinstance(m, dict) and isinstance(m.get("card"), dict):
                    card = m["card"]
                    break
        full_name = _customer_name(customer)
        record: Record = {
            "billing_key": _str(data, "billingKey", "", required=True),
            "customer_uid": _str(customer, "id", "customer."),
            "pg_provider": first.get("pgProvider") if isinstance(first.get("pgProvider"), str) else None,
            "pg_id": first.get("pgMerchantId") if isinstance(first.get("pgMerchantId"), str) else None,
            "card_name": card.get("name") if isinstance(card.get("name"), str) else None,
            "card_number": card.get("number") if isinstance(card.get("number"), str) else None,
            "customer_name": full_name if isinstance(full_name, str) else None,
            "customer_email": customer.get("email") if isinstance(customer.get("email"), str) else None,
            "customer_tel": customer.get("phoneNumber")
            if isinstance(customer.get("phoneNumber"), str)
            else None,
            "inserted": parse_rfc3339(data.get("issuedAt"), "issuedAt", required=True),
            "deleted": status == "DELETED",
            "deleted_at": parse_rfc3339(data.get("deletedAt"), "deletedAt", required=status == "DELETED"),
            "store_id": _str(data, "storeId", ""),
        }
    except _Unreadable as exc:
        return None, str(exc)
    return record, None


def _customer_name(customer: dict[str, Any]) -> str | None:
    """``customer.name``: a string in PortOne's schema (``{full}``, the input form, is read too)."""
    name = customer.get("name")
    if isinstance(name, dict):
        name = name.get("full")
    return name if isinstance(name, str) else None


def _usage(billing_key: str | None, schedule_id: str | None, total: Decimal | None) -> str | None:
    """V1's ``customer_uid_usage`` of a payment: ``issue`` for a zero amount no schedule made, else
    ``payment.scheduled`` / ``payment`` when a billing key paid it."""
    if total == 0 and not schedule_id:
        return "issue"
    if not billing_key:
        return None
    return "payment.scheduled" if schedule_id else "payment"


def _platform(value: Any) -> str | None:
    """``origin.platformType`` lower-cased (``API`` -> ``api``); anything but a non-empty string: None."""
    return value.lower() if isinstance(value, str) and value else None


def _method_name(kind: Any) -> str | None:
    """``PaymentMethodCard`` -> ``card``; an unknown case keeps its name (lower-cased)."""
    if not isinstance(kind, str) or not kind:
        return None
    short = kind.removeprefix("PaymentMethod")
    return {"EasyPay": "easy_pay", "VirtualAccount": "vbank", "Transfer": "trans", "Mobile": "phone"}.get(
        short, short.lower()
    )
