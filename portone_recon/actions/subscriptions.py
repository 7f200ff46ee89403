"""The subscriptions a fix-up acts for: their price, interval, anchor and state.

A money-moving action (rebook, retry) always names one subscription and uses that subscription's own
amount, currency, interval and anchor day. Which subscription a finding is about comes from its
``subscription_id`` column when reconcile reports one; otherwise from its customer, but only when that
customer has exactly one subscription: with two plans on one card, a finding that does not say which
one is not acted on.

Periods use the reconcile rules' arithmetic (:func:`portone_recon._time.billing_period`): periods of
``interval_months`` months counted from the month the subscription started in, anchored on its day and
clamped at month end.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import pandas as pd

from portone_recon._time import (
    KST,
    billing_period,
    billing_period_bounds,
    ensure_aware,
    month_index,
)
from portone_recon.actions.model import as_int, as_str, clean
from portone_recon.store import Store

#: Statuses for which money may be moved (a trial converts to paid by its own first charge).
CHARGEABLE = frozenset({"active"})

#: Columns read from the store's ``subscriptions`` table when present (older stores lack some).
_COLUMNS = (
    "subscription_id",
    "customer_uid",
    "status",
    "amount",
    "currency",
    "interval_months",
    "anchor_day",
    "started_at",
    "cancelled_at",
    "trial_ends_at",
    "plan",
    "name",
)


def _instant(value: Any) -> datetime | None:
    v = clean(value)
    if v is None:
        return None
    if isinstance(v, datetime):
        return ensure_aware(v)
    return ensure_aware(pd.Timestamp(v).to_pydatetime())


@dataclass(frozen=True)
class Subscription:
    """One subscription as the merchant loaded it."""

    subscription_id: str
    customer_uid: str
    status: str
    amount: int
    currency: str = "KRW"
    interval_months: int = 1
    anchor_day: int = 1
    started_at: datetime | None = None
    cancelled_at: datetime | None = None
    name: str | None = None

    @property
    def base_mi(self) -> int:
        """The month index periods are counted from (the reconcile rules use the same)."""
        return month_index(self.started_at.astimezone(KST).date()) if self.started_at else 0

    def period_of(self, instant: datetime) -> int:
        return billing_period(instant, self.anchor_day, self.interval_months, self.base_mi)

    def bounds(self, number: int) -> tuple[date, date]:
        return billing_period_bounds(number, self.anchor_day, self.interval_months, self.base_mi)

    def period_starting(self, start: date) -> int | None:
        """The number of the period that starts exactly on ``start``, or None when no period does."""
        number = self.period_of(datetime(start.year, start.month, start.day, 12, tzinfo=KST))
        return number if self.bounds(number)[0] == start else None

    def refuse_charge(self, at: datetime) -> str | None:
        """Why no money may be moved for this subscription at instant ``at`` (None: it may)."""
        if self.status not in CHARGEABLE:
            return f"subscription {self.subscription_id} is {self.status}: no charge or booking"
        if self.currency != "KRW":
            # V1 books and charges in currency units (9.99 USD) while a loaded amount is a whole number:
            # which unit the merchant meant cannot be told, so a person books it.
            return (
                f"subscription {self.subscription_id} is in {self.currency}: bookings and charges in other "
                "currencies than KRW are left to a person"
            )
        if self.cancelled_at is not None and self.cancelled_at <= at:
            return (
                f"subscription {self.subscription_id} cancels at {self.cancelled_at.isoformat()}: "
                "nothing is charged or booked from then on"
            )
        return None

    def to_target(self) -> dict[str, Any]:
        """The facts an action records, so that apply can tell when they changed."""
        return {
            "subscription_id": self.subscription_id,
            "interval_months": self.interval_months,
            "anchor_day": self.anchor_day,
            "currency": self.currency,
        }


@dataclass(frozen=True)
class Subscriptions:
    """The merchant's subscriptions, by id and by customer; ``loaded`` is False when none were loaded."""

    by_id: Mapping[str, Subscription]
    by_customer: Mapping[str, tuple[Subscription, ...]]
    loaded: bool

    @classmethod
    def from_frame(cls, frame: pd.DataFrame | None) -> Subscriptions:
        if frame is None or len(frame) == 0:
            return cls({}, {}, False)
        by_id: dict[str, Subscription] = {}
        by_customer: dict[str, list[Subscription]] = {}
        for row in frame.to_dict("records"):
            sub = _from_row({str(k): v for k, v in row.items()})
            if sub is None:
                continue
            by_id[sub.subscription_id] = sub
            by_customer.setdefault(sub.customer_uid, []).append(sub)
        return cls(by_id, {k: tuple(v) for k, v in by_customer.items()}, True)

    @classmethod
    def from_store(cls, store: Store) -> Subscriptions:
        return cls.from_frame(subscriptions_frame(store))

    def find(self, subscription_id: str | None, customer_uid: str | None) -> tuple[Subscription | None, str]:
        """The subscription a finding is about, or None with the reason."""
        if subscription_id:
            sub = self.by_id.get(subscription_id)
            if sub is None:
                return None, f"subscription {subscription_id} is not in the loaded subscriptions"
            if customer_uid and sub.customer_uid != customer_uid:
                return None, (
                    f"subscription {subscription_id} belongs to {sub.customer_uid}, not {customer_uid}"
                )
            return sub, ""
        if not customer_uid:
            return None, "finding names no customer"
        subs = self.by_customer.get(customer_uid, ())
        if not subs:
            return None, f"customer {customer_uid} has no loaded subscription"
        if len(subs) > 1:
            ids = ", ".join(s.subscription_id for s in subs)
            return (
                None,
                f"customer {customer_uid} has {len(subs)} subscriptions ({ids}); the finding names none",
            )
        return subs[0], ""

    def of_customer(self, customer_uid: str) -> tuple[Subscription, ...]:
        return self.by_customer.get(customer_uid, ())


def _from_row(row: Mapping[str, Any]) -> Subscription | None:
    cu = as_str(row.get("customer_uid"))
    amount = as_int(row.get("amount"))
    anchor = as_int(row.get("anchor_day"))
    if cu is None or amount is None or anchor is None:
        return None
    return Subscription(
        subscription_id=as_str(row.get("subscription_id")) or cu,
        customer_uid=cu,
        status=as_str(row.get("status")) or "unknown",
        amount=amount,
        currency=as_str(row.get("currency")) or "KRW",
        interval_months=as_int(row.get("interval_months")) or 1,
        anchor_day=anchor,
        started_at=_instant(row.get("started_at")),
        cancelled_at=_instant(row.get("cancelled_at")),
        name=as_str(row.get("name")) or as_str(row.get("plan")),
    )


def subscriptions_frame(store: Store, customers: Iterable[str] | None = None) -> pd.DataFrame:
    """The store's subscriptions (every column :class:`Subscription` uses that the store has)."""
    if not store.path.exists():
        return pd.DataFrame(columns=["customer_uid"])
    with store.connect() as con:
        have = {str(r[0]) for r in con.execute("DESCRIBE subscriptions").fetchall()}
        cols = ", ".join(c for c in _COLUMNS if c in have)
        if customers is None:
            return con.execute(f"SELECT {cols} FROM subscriptions").df()
        return con.execute(
            f"SELECT {cols} FROM subscriptions WHERE list_contains($c, customer_uid)", {"c": list(customers)}
        ).df()
