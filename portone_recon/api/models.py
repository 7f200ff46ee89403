"""Typed records for PortOne V1 objects, shared by the client, the sync and the sandbox.

Parsing is strict where it matters for money and identity (ids, statuses, amounts, timestamps) and
lenient elsewhere (optional strings). A field of the wrong type raises
:class:`~portone_recon.errors.MalformedResponseError` naming the endpoint and the field path.

Timestamps become timezone-aware datetimes in Asia/Seoul; PortOne's ``0`` ("not yet") becomes None.
Amounts become ``int`` when integral (KRW always is) and :class:`~decimal.Decimal` otherwise.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Generic, Literal, TypeVar

from portone_recon._time import from_unix
from portone_recon.errors import MalformedResponseError

PaymentStatus = Literal["ready", "paid", "failed", "cancelled"]
ScheduleStatus = Literal["scheduled", "executed", "revoked"]
Amount = int | Decimal

PAYMENT_STATUSES: tuple[PaymentStatus, ...] = ("ready", "paid", "failed", "cancelled")
SCHEDULE_STATUSES: tuple[ScheduleStatus, ...] = ("scheduled", "executed", "revoked")
SORTINGS = ("-started", "started", "-paid", "paid", "-updated", "updated")


class _Reader:
    """Reads fields of one JSON object, naming ``where`` (endpoint) and ``path`` in errors."""

    __slots__ = ("data", "endpoint", "method", "path")

    def __init__(self, data: Any, *, path: str, endpoint: str, method: str) -> None:
        if not isinstance(data, Mapping):
            raise MalformedResponseError(
                f"expected an object, got {type(data).__name__}",
                method=method,
                endpoint=endpoint,
                field=path,
            )
        self.data = data
        self.path = path
        self.endpoint = endpoint
        self.method = method

    def _fail(self, name: str, expected: str, value: Any) -> MalformedResponseError:
        return MalformedResponseError(
            f"expected {expected}, got {type(value).__name__} {value!r:.60}",
            method=self.method,
            endpoint=self.endpoint,
            field=f"{self.path}.{name}",
        )

    def str_(self, name: str) -> str:
        value = self.data.get(name)
        if not isinstance(value, str) or not value:
            raise self._fail(name, "a non-empty string", value)
        return value

    def opt_str(self, name: str) -> str | None:
        value = self.data.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self._fail(name, "a string or null", value)
        return value

    def bool_(self, name: str, default: bool = False) -> bool:
        value = self.data.get(name, default)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self._fail(name, "a boolean", value)
        return value

    def int_(self, name: str, default: int | None = None) -> int:
        value = self.data.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise self._fail(name, "an integer", value)
        return value

    def opt_int(self, name: str) -> int | None:
        value = self.data.get(name)
        if value is None:
            return None
        return self.int_(name)

    def code_int(self, name: str) -> int | None:
        """An integer code sent as a number or a numeric string (``card_type``: docs differ); else None."""
        value = self.data.get(name)
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value.strip())
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return None

    def amount(self, name: str, default: int | None = None) -> Amount:
        value = self.data.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._fail(name, "a number", value)
        if isinstance(value, int):
            return value
        if value.is_integer():
            return int(value)
        return Decimal(repr(value))

    def time(self, name: str) -> datetime | None:
        value = self.data.get(name, 0)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._fail(name, "unix seconds (an integer)", value)
        return from_unix(int(value))

    def choice(self, name: str, allowed: Sequence[str]) -> str:
        value = self.data.get(name)
        if value not in allowed:
            raise self._fail(name, f"one of {list(allowed)}", value)
        return str(value)

    def opt_choice(self, name: str, allowed: Sequence[str]) -> str | None:
        value = self.data.get(name)
        if value is None:
            return None
        return self.choice(name, allowed)

    def list_(self, name: str) -> list[Any]:
        value = self.data.get(name, [])
        if value is None:
            return []
        if not isinstance(value, list):
            raise self._fail(name, "an array", value)
        return value

    def child(self, value: Any, path: str) -> _Reader:
        return _Reader(value, path=f"{self.path}.{path}", endpoint=self.endpoint, method=self.method)


def _reader(data: Any, path: str, endpoint: str, method: str) -> _Reader:
    return _Reader(data, path=path, endpoint=endpoint, method=method)


@dataclass(frozen=True, slots=True)
class CancelRecord:
    """One entry of ``cancel_history`` (a partial or full refund)."""

    pg_tid: str | None
    amount: Amount
    cancelled_at: datetime | None
    reason: str | None
    cancellation_id: str | None
    receipt_url: str | None

    @classmethod
    def from_json(
        cls, data: Any, *, path: str = "response", endpoint: str = "", method: str = "GET"
    ) -> CancelRecord:
        r = _reader(data, path, endpoint, method)
        return cls(
            pg_tid=r.opt_str("pg_tid"),
            amount=r.amount("amount"),
            cancelled_at=r.time("cancelled_at"),
            reason=r.opt_str("reason"),
            cancellation_id=r.opt_str("cancellation_id"),
            receipt_url=r.opt_str("receipt_url"),
        )


@dataclass(frozen=True, slots=True)
class Payment:
    """A PortOne payment (``PaymentAnnotation``); ``raw`` keeps the object as received."""

    imp_uid: str
    merchant_uid: str
    status: PaymentStatus
    amount: Amount
    cancel_amount: Amount
    currency: str
    customer_uid: str | None
    customer_uid_usage: str | None
    pay_method: str | None
    channel: str | None
    pg_provider: str | None
    pg_tid: str | None
    name: str | None
    buyer_name: str | None
    buyer_email: str | None
    buyer_tel: str | None
    card_name: str | None
    card_number: str | None
    custom_data: str | None
    fail_reason: str | None
    cancel_reason: str | None
    started_at: datetime | None
    paid_at: datetime | None
    failed_at: datetime | None
    cancelled_at: datetime | None
    sandbox: bool
    cancel_history: tuple[CancelRecord, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def net_amount(self) -> Amount:
        """Amount still kept by the merchant (``amount - cancel_amount``)."""
        return self.amount - self.cancel_amount

    @classmethod
    def from_json(
        cls, data: Any, *, path: str = "response", endpoint: str = "", method: str = "GET"
    ) -> Payment:
        r = _reader(data, path, endpoint, method)
        history = tuple(
            CancelRecord.from_json(item, path=f"{path}.cancel_history[{i}]", endpoint=endpoint, method=method)
            for i, item in enumerate(r.list_("cancel_history"))
        )
        status: Any = r.choice("status", PAYMENT_STATUSES)
        return cls(
            imp_uid=r.str_("imp_uid"),
            merchant_uid=r.str_("merchant_uid"),
            status=status,
            amount=r.amount("amount"),
            cancel_amount=r.amount("cancel_amount", 0),
            currency=r.opt_str("currency") or "KRW",
            customer_uid=r.opt_str("customer_uid"),
            customer_uid_usage=r.opt_str("customer_uid_usage"),
            pay_method=r.opt_str("pay_method"),
            channel=r.opt_str("channel"),
            pg_provider=r.opt_str("pg_provider"),
            pg_tid=r.opt_str("pg_tid"),
            name=r.opt_str("name"),
            buyer_name=r.opt_str("buyer_name"),
            buyer_email=r.opt_str("buyer_email"),
            buyer_tel=r.opt_str("buyer_tel"),
            card_name=r.opt_str("card_name"),
            card_number=r.opt_str("card_number"),
            custom_data=r.opt_str("custom_data"),
            fail_reason=r.opt_str("fail_reason"),
            cancel_reason=r.opt_str("cancel_reason"),
            started_at=r.time("started_at"),
            paid_at=r.time("paid_at"),
            failed_at=r.time("failed_at"),
            cancelled_at=r.time("cancelled_at"),
            sandbox=r.bool_("sandbox"),
            cancel_history=history,
            raw=dict(data),
        )


@dataclass(frozen=True, slots=True)
class Schedule:
    """A payment schedule (``ScheduleResultAnnotation``).

    ``executed`` does not mean paid: read ``payment_status``.
    """

    merchant_uid: str
    customer_uid: str
    schedule_status: ScheduleStatus
    payment_status: PaymentStatus | None
    schedule_at: datetime | None
    executed_at: datetime | None
    revoked_at: datetime | None
    amount: Amount
    currency: str
    imp_uid: str | None
    name: str | None
    fail_reason: str | None
    custom_data: str | None
    buyer_name: str | None
    buyer_email: str | None
    buyer_tel: str | None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(
        cls, data: Any, *, path: str = "response", endpoint: str = "", method: str = "GET"
    ) -> Schedule:
        r = _reader(data, path, endpoint, method)
        schedule_status: Any = r.choice("schedule_status", SCHEDULE_STATUSES)
        payment_status: Any = r.opt_choice("payment_status", PAYMENT_STATUSES)
        return cls(
            merchant_uid=r.str_("merchant_uid"),
            customer_uid=r.str_("customer_uid"),
            schedule_status=schedule_status,
            payment_status=payment_status,
            schedule_at=r.time("schedule_at"),
            executed_at=r.time("executed_at"),
            revoked_at=r.time("revoked_at"),
            amount=r.amount("amount"),
            currency=r.opt_str("currency") or "KRW",
            imp_uid=r.opt_str("imp_uid"),
            name=r.opt_str("name"),
            fail_reason=r.opt_str("fail_reason"),
            custom_data=r.opt_str("custom_data"),
            buyer_name=r.opt_str("buyer_name"),
            buyer_email=r.opt_str("buyer_email"),
            buyer_tel=r.opt_str("buyer_tel"),
            raw=dict(data),
        )


@dataclass(frozen=True, slots=True)
class BillingKey:
    """A billing key (``CustomerAnnotation``), addressed by the merchant's ``customer_uid``."""

    customer_uid: str
    pg_provider: str | None
    pg_id: str | None
    card_name: str | None
    card_code: str | None
    card_number: str | None
    card_type: int | None
    customer_name: str | None
    customer_email: str | None
    customer_tel: str | None
    inserted: datetime | None
    updated: datetime | None
    sandbox: bool
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(
        cls, data: Any, *, path: str = "response", endpoint: str = "", method: str = "GET"
    ) -> BillingKey:
        r = _reader(data, path, endpoint, method)
        channels = r.data.get("succeededChannels")
        if isinstance(channels, list) and channels and isinstance(channels[0], Mapping):
            # A super billing key: card fields live in its channels; the first succeeded one fills them.
            merged = {**channels[0], **{k: v for k, v in r.data.items() if v is not None}}
            r = _reader(merged, path, endpoint, method)
        return cls(
            customer_uid=r.str_("customer_uid"),
            pg_provider=r.opt_str("pg_provider"),
            pg_id=r.opt_str("pg_id"),
            card_name=r.opt_str("card_name"),
            card_code=r.opt_str("card_code"),
            card_number=r.opt_str("card_number"),
            card_type=r.code_int("card_type"),
            customer_name=r.opt_str("customer_name"),
            customer_email=r.opt_str("customer_email"),
            customer_tel=r.opt_str("customer_tel"),
            inserted=r.time("inserted"),
            updated=r.time("updated"),
            sandbox=r.bool_("sandbox"),
            raw=dict(data),
        )


@dataclass(frozen=True, slots=True)
class Token:
    """An access token. Its repr never shows the token itself."""

    access_token: str = field(repr=False)
    now: int
    expired_at: int

    @property
    def lifetime(self) -> int:
        """Seconds of validity by PortOne's own clock (``expired_at - now``)."""
        return self.expired_at - self.now

    @classmethod
    def from_json(cls, data: Any, *, endpoint: str = "/users/getToken", method: str = "POST") -> Token:
        r = _reader(data, "response", endpoint, method)
        return cls(access_token=r.str_("access_token"), now=r.int_("now"), expired_at=r.int_("expired_at"))


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a paged listing (``{total, previous, next, list}``); ``next == 0`` on the last page."""

    total: int
    previous: int
    next: int
    items: list[T]


@dataclass(frozen=True, slots=True)
class MultiResult(Generic[T]):
    """Result of a multi-lookup (``imp_uid[]`` / ``merchant_uid[]`` / ``customer_uid[]``).

    ``missing`` lists the requested ids that PortOne did not return (HTTP 207 or 404).
    """

    found: list[T]
    missing: list[str]

    def __iter__(self) -> Any:
        return iter(self.found)

    def __len__(self) -> int:
        return len(self.found)

    def __repr__(self) -> str:
        return f"MultiResult(found={len(self.found)}, missing={len(self.missing)})"

    def to_dict(self) -> dict[str, Any]:
        """``{"found": [raw objects as received], "missing": [ids]}``."""
        return {
            "found": [dict(getattr(x, "raw", {}) or {}) for x in self.found],
            "missing": list(self.missing),
        }

    def _repr_html_(self) -> str:
        try:
            shown = ", ".join(html.escape(str(m)) for m in self.missing[:20])
            more = f" and {len(self.missing) - 20} more" if len(self.missing) > 20 else ""
            tail = f"<br>missing: {shown}{more}" if self.missing else ""
            return f"<div><b>{len(self.found)}</b> found, <b>{len(self.missing)}</b> missing{tail}</div>"
        except Exception:  # a repr must never raise in a notebook
            return "<div>MultiResult</div>"


def parse_page_envelope(
    response: Any, *, endpoint: str, method: str = "GET"
) -> tuple[int, int, int, list[Any]]:
    """Validate ``{total, previous, next, list}`` and return its parts (items unparsed)."""
    r = _reader(response, "response", endpoint, method)
    items = r.data.get("list")
    if not isinstance(items, list):
        raise r._fail("list", "an array", items)
    return r.int_("total", 0), r.int_("previous", 0), r.int_("next", 0), items
