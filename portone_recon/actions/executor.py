"""Executing one action: the context it reads through, sending it, and reading an unknown outcome.

:mod:`portone_recon.actions.checks` re-checks each action right before it is sent; this module holds what
both share (the PortOne client and orders writer protocols, the outcome types, the :class:`Context` of one
apply) and the sends themselves. A request is always built from the recorded target; what a booking or a
retry creates is recorded as a local order (and in the merchant's SQL orders table).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any, Protocol

from portone_recon._time import KST
from portone_recon.actions import journal
from portone_recon.actions.model import Action, as_int, as_str
from portone_recon.actions.requests import build_request
from portone_recon.actions.subscriptions import Subscriptions
from portone_recon.api.models import BillingKey, Payment, Schedule
from portone_recon.errors import BusinessError, NotFoundError, PortOneReconError
from portone_recon.store import Store


class ClientLike(Protocol):
    """The :class:`~portone_recon.api.client.PortOneClient` methods apply uses."""

    def fetch_payment(self, imp_uid: str) -> Payment: ...

    def iter_payments_by_merchant_uid(self, merchant_uid: str) -> Iterator[Payment]: ...

    def iter_billing_key_payments(self, customer_uid: str) -> Iterator[Payment]: ...

    def fetch_billing_key(self, customer_uid: str) -> BillingKey: ...

    def fetch_schedule(self, merchant_uid: str) -> Schedule: ...

    def iter_customer_schedules(
        self, customer_uid: str, since: datetime, until: datetime, *, status: str | None = None
    ) -> Iterator[Schedule]: ...

    def create_schedules(
        self, customer_uid: str, schedules: Sequence[Mapping[str, Any]]
    ) -> list[Schedule]: ...

    def unschedule(
        self, *, customer_uid: str | None = None, merchant_uids: Sequence[str] | None = None
    ) -> list[Schedule]: ...

    def retry_schedule(self, merchant_uid: str) -> Payment: ...


class OrdersWriterLike(Protocol):
    def mark_paid(self, merchant_uid: str, *, imp_uid: str, paid_at: datetime, amount: int) -> int: ...

    def add_pending(
        self,
        merchant_uid: str,
        *,
        customer_uid: str,
        amount: int,
        currency: str = "KRW",
        subscription_id: str | None = None,
    ) -> int: ...


# -- small result types ------------------------------------------------------------------------


@dataclass(frozen=True)
class Skip:
    reason: str
    evidence: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Go:
    pre: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OrderUpdate:
    """Mark a local order paid (only while still unpaid with the same amount)."""

    merchant_uid: str
    imp_uid: str
    paid_at: datetime | None
    amount: int


@dataclass(frozen=True)
class NewOrder:
    """The local order of a charge portone_recon booked or retried (created when missing)."""

    merchant_uid: str
    customer_uid: str
    amount: int
    currency: str
    subscription_id: str | None
    source: str


@dataclass(frozen=True)
class Final:
    status: str  # succeeded | failed | skipped
    message: str
    result: Mapping[str, Any] = field(default_factory=dict)
    order: OrderUpdate | None = None
    new_order: NewOrder | None = None


class NotApplied:
    """A read proved an unresolved action's write never happened."""


NOT_APPLIED = NotApplied()


class Pending(Exception):
    """Leave the action as it is (a read failed, or the orders writer failed); try on the next apply."""


def reached_paid(p: Payment) -> bool:
    return p.status == "paid" or (p.status == "cancelled" and p.paid_at is not None)


def fmt_money(v: Any, currency: str | None = "KRW") -> str:
    try:
        return f"{int(v):,} {currency or 'KRW'}"
    except (TypeError, ValueError):
        return f"{v} {currency or 'KRW'}"


def _money(v: Any) -> int | str:
    """An exact amount for the journal: an int when whole (KRW always is), else its decimal text."""
    return int(v) if v == int(v) else str(v)


def pay_evidence(p: Payment) -> dict[str, Any]:
    return {
        "imp_uid": p.imp_uid,
        "merchant_uid": p.merchant_uid,
        "status": p.status,
        "amount": _money(p.amount),
        "currency": p.currency,
        "paid_at": p.paid_at.isoformat() if p.paid_at else None,
        "fail_reason": p.fail_reason,
    }


def sched_evidence(s: Schedule) -> dict[str, Any]:
    return {
        "merchant_uid": s.merchant_uid,
        "customer_uid": s.customer_uid,
        "schedule_status": s.schedule_status,
        "payment_status": s.payment_status,
        "amount": _money(s.amount),
        "schedule_at": s.schedule_at.isoformat() if s.schedule_at else None,
        "imp_uid": s.imp_uid,
    }


def kst_midnight(d: date) -> datetime:
    return datetime.combine(d, time(0), tzinfo=KST)


def period_of_target(t: Mapping[str, Any]) -> tuple[datetime, datetime]:
    return (
        kst_midnight(date.fromisoformat(str(t["period_start"]))),
        kst_midnight(date.fromisoformat(str(t["period_end"]))),
    )


class Context:
    """What one apply reads through: PortOne, the store, the merchant's orders DB, the wall clock.

    Args:
        subs: the subscriptions as the store holds them when the apply starts (fresh, not the plan's).
        allow_inferred: the plan was made with inferred subscriptions allowed.
        max_retries: retries of one failed schedule at most.
    """

    def __init__(
        self,
        client: ClientLike | None,
        store: Store,
        writer: OrdersWriterLike | None,
        *,
        now: Any,
        subs: Subscriptions,
        allow_inferred: bool = False,
        max_retries: int = 3,
    ) -> None:
        self.client = client
        self.store = store
        self.writer = writer
        self.now = now
        self.subs = subs
        self.allow_inferred = allow_inferred
        self.max_retries = max_retries
        self._auto_writers: dict[str, OrdersWriterLike | None] = {}
        self._order_cols: set[str] | None = None

    @property
    def api(self) -> ClientLike:
        if self.client is None:
            raise Pending("no client: cannot read PortOne")
        return self.client

    # reads that may legitimately find nothing
    def schedule_or_none(self, mu: str) -> Schedule | None:
        try:
            return self.api.fetch_schedule(mu)
        except NotFoundError:
            return None

    def attempts(self, mu: str) -> list[Payment]:
        try:
            return list(self.api.iter_payments_by_merchant_uid(mu))
        except NotFoundError:
            return []

    def key_payments(self, cu: str) -> list[Payment]:
        try:
            return list(self.api.iter_billing_key_payments(cu))
        except NotFoundError:
            return []

    def order_columns(self) -> set[str]:
        if self._order_cols is None:
            with self.store.connect() as con:
                self._order_cols = {str(r[0]) for r in con.execute("DESCRIBE orders").fetchall()}
        return self._order_cols

    def local_order(self, mu: str) -> dict[str, Any] | None:
        if not self.store.path.exists():
            return None
        keys = ["merchant_uid", "amount", "currency", "status", "source", "imp_uid", "customer_uid"]
        if "subscription_id" in self.order_columns():
            keys.append("subscription_id")
        with self.store.connect() as con:
            row = con.execute(f"SELECT {', '.join(keys)} FROM orders WHERE merchant_uid = ?", [mu]).fetchone()
        return None if row is None else dict(zip(keys, row, strict=True))

    def belongs_elsewhere(self, mu: str, subscription_id: str | None) -> bool:
        """Whether the merchant's own order for ``mu`` says it belongs to another subscription."""
        if not subscription_id or "subscription_id" not in self.order_columns():
            return False
        order = self.local_order(mu)
        other = as_str(order.get("subscription_id")) if order else None
        return other is not None and other != subscription_id

    def order_source(self, customer_uid: str) -> str:
        """The orders source a new local order of this customer belongs to."""
        with self.store.connect() as con:
            row = con.execute(
                "SELECT source FROM orders WHERE customer_uid = ? ORDER BY loaded_at DESC LIMIT 1",
                [customer_uid],
            ).fetchone()
            if row is None:
                row = con.execute(
                    "SELECT source FROM source_loads WHERE target = 'orders' ORDER BY loaded_at DESC LIMIT 1"
                ).fetchone()
        return str(row[0]) if row else "portone_recon"

    def writer_for(self, source: str) -> OrdersWriterLike | None:
        if self.writer is not None:
            return self.writer
        if source in self._auto_writers:
            return self._auto_writers[source]
        with self.store.connect() as con:
            row = con.execute(
                "SELECT kind FROM source_loads WHERE target = 'orders' AND source = ?", [source]
            ).fetchone()
        writer: OrdersWriterLike | None = None
        if row is not None and row[0] == "sql":
            from portone_recon.orders import OrdersWriter

            try:
                writer = OrdersWriter.from_store(self.store, source=source)
            except PortOneReconError as exc:
                raise Pending(f"orders source {source!r} is SQL but no writer: {exc}") from exc
        self._auto_writers[source] = writer
        return writer


def rebook_found(action: Action, s: Schedule) -> Final:
    same = s.customer_uid == action.target["customer_uid"] and s.amount == as_int(action.target["amount"])
    if same and s.schedule_status in ("scheduled", "executed"):
        return Final(
            "succeeded",
            f"schedule {s.merchant_uid} exists at PortOne ({s.schedule_status})",
            sched_evidence(s),
            new_order=None,
        )
    return Final(
        "failed",
        f"merchant_uid {s.merchant_uid} is already used at PortOne ({s.schedule_status}, customer "
        f"{s.customer_uid}, {fmt_money(s.amount)}); re-plan with another prefix",
        sched_evidence(s),
    )


# -- sending -----------------------------------------------------------------------------------


def _new_order(action: Action, ctx: Context, mu: str) -> NewOrder | None:
    t = action.target
    if ctx.local_order(mu) is not None:
        return None
    cu = str(t["customer_uid"])
    return NewOrder(
        merchant_uid=mu,
        customer_uid=cu,
        amount=int(t["amount"]),
        currency=str(t.get("currency") or "KRW"),
        subscription_id=as_str(t.get("subscription_id")),
        source=ctx.order_source(cu),
    )


def _write_new_order(order: NewOrder | None, ctx: Context, evidence: dict[str, Any]) -> None:
    """Add a booked charge's order to the merchant's SQL orders (recorded, never turned into a re-send)."""
    if order is None:
        return
    try:
        writer = ctx.writer_for(order.source)
        if writer is not None:
            evidence["orders_db_added"] = writer.add_pending(
                order.merchant_uid,
                customer_uid=order.customer_uid,
                amount=order.amount,
                currency=order.currency,
                subscription_id=order.subscription_id,
            )
    except (PortOneReconError, Pending) as exc:
        evidence["orders_db_error"] = str(exc)


def send(action: Action, go: Go, ctx: Context) -> Final:
    """Send the action's request, built from its recorded target (never from a file's request)."""
    t = action.target
    request = build_request(action.kind, t)
    if action.kind == "reverify":
        return _send_reverify(go, ctx)
    if action.kind == "unschedule":
        smu = str(t["schedule_merchant_uid"])
        body = request["json"]
        try:
            done = ctx.api.unschedule(
                customer_uid=body.get("customer_uid"), merchant_uids=body["merchant_uid"]
            )
        except BusinessError as exc:
            s = ctx.schedule_or_none(smu)
            if s is not None and s.schedule_status == "revoked":
                return Final("succeeded", f"schedule {smu} is revoked", sched_evidence(s))
            return Final("failed", f"PortOne refused: {exc.message} (code {exc.code})", {"code": exc.code})
        return Final("succeeded", f"schedule {smu} revoked", {"revoked": [sched_evidence(s) for s in done]})
    if action.kind == "rebook":
        body = request["json"]
        mu = str(t["merchant_uid"])
        try:
            made = ctx.api.create_schedules(str(body["customer_uid"]), body["schedules"])
        except BusinessError as exc:
            s = ctx.schedule_or_none(mu)  # "duplicate" may mean: it exists. Read it.
            if s is not None:
                return _with_order(rebook_found(action, s), action, ctx, mu)
            return Final("failed", f"PortOne refused: {exc.message} (code {exc.code})", {"code": exc.code})
        ok = Final(
            "succeeded",
            f"booked {mu} at {t.get('schedule_at')} for {fmt_money(t['amount'], as_str(t.get('currency')))}",
            {"schedules": [sched_evidence(s) for s in made]},
        )
        return _with_order(ok, action, ctx, mu)
    if action.kind == "retry":
        smu = str(t["schedule_merchant_uid"])
        try:
            pay_obj = ctx.api.retry_schedule(smu)
        except BusinessError as exc:
            return Final("failed", f"PortOne refused: {exc.message} (code {exc.code})", {"code": exc.code})
        return retry_outcome(action, pay_obj, ctx)
    raise PortOneReconError(f"unknown action kind {action.kind!r}")  # pragma: no cover


def _with_order(final: Final, action: Action, ctx: Context, mu: str) -> Final:
    if final.status != "succeeded":
        return final
    order = _new_order(action, ctx, mu)
    result = dict(final.result)
    _write_new_order(order, ctx, result)
    msg = final.message + (f"; local order {mu} created (pending)" if order else "")
    if "orders_db_error" in result:
        msg += f"; the merchant's orders DB was NOT updated: {result['orders_db_error']}"
    return Final(final.status, msg, result, final.order, order)


def _send_reverify(go: Go, ctx: Context) -> Final:
    pay = go.pre["payment"]
    writer = ctx.writer_for(str(go.pre.get("order_source") or ""))
    written = None
    if writer is not None:
        try:
            written = writer.mark_paid(
                pay["merchant_uid"],
                imp_uid=pay["imp_uid"],
                paid_at=datetime.fromisoformat(pay["paid_at"]),
                amount=pay["amount"],
            )
        except PortOneReconError as exc:
            raise Pending(f"orders database not updated: {exc}") from exc
    order = OrderUpdate(
        pay["merchant_uid"],
        pay["imp_uid"],
        datetime.fromisoformat(pay["paid_at"]) if pay["paid_at"] else None,
        int(pay["amount"]),
    )
    msg = f"order {pay['merchant_uid']} marked paid ({pay['imp_uid']}, {fmt_money(pay['amount'])})"
    if written is not None:
        msg += f"; orders database rows changed: {written}"
    return Final("succeeded", msg, {"payment": pay, "orders_db_rows": written}, order)


def retry_outcome(action: Action, p: Payment, ctx: Context) -> Final:
    ev = pay_evidence(p)
    if p.status != "paid":  # code 0 only means the request reached the card company
        return Final(
            "failed", f"retry charged nothing: status {p.status} ({p.fail_reason or 'no reason'})", ev
        )
    new = _new_order(action, ctx, p.merchant_uid)
    _write_new_order(new, ctx, ev)
    upd = OrderUpdate(p.merchant_uid, p.imp_uid, p.paid_at, int(p.amount))
    try:  # the charge happened: a write-back problem is recorded, never turned into a re-send
        source = new.source if new else str((ctx.local_order(p.merchant_uid) or {}).get("source") or "")
        writer = ctx.writer_for(source)
        if writer is not None and p.paid_at is not None:
            ev["orders_db_rows"] = writer.mark_paid(
                p.merchant_uid, imp_uid=p.imp_uid, paid_at=p.paid_at, amount=int(p.amount)
            )
    except (PortOneReconError, Pending) as exc:
        ev["orders_db_error"] = str(exc)
    return Final("succeeded", f"retry paid {fmt_money(p.amount, p.currency)} ({p.imp_uid})", ev, upd, new)


def resolve(action: Action, row: journal.JournalRow, ctx: Context) -> Final | NotApplied:
    """Decide an action left ``sending``/``unknown``/``failed_retryable`` by reading PortOne (never by
    re-sending)."""
    t = action.target
    if action.kind == "reverify":
        return NOT_APPLIED  # no remote write; the local writes only touch rows still unpaid
    if action.kind == "unschedule":
        s = ctx.schedule_or_none(str(t["schedule_merchant_uid"]))
        if s is None:
            return Final("skipped", "schedule not found at PortOne")
        if s.schedule_status == "revoked":
            return Final("succeeded", "schedule is revoked (resolved by reading)", sched_evidence(s))
        if s.schedule_status == "executed":
            return Final("failed", "schedule executed before it could be revoked", sched_evidence(s))
        return NOT_APPLIED
    if action.kind == "rebook":
        mu = str(t["merchant_uid"])
        s = ctx.schedule_or_none(mu)
        if s is None:
            return NOT_APPLIED
        f = _with_order(rebook_found(action, s), action, ctx, mu)
        return Final(f.status, f.message + " (resolved by reading)", f.result, f.order, f.new_order)
    if action.kind == "retry":
        before = set(row.result.get("pre", {}).get("attempts", []))
        new = [p for p in ctx.attempts(str(t["schedule_merchant_uid"])) if p.imp_uid not in before]
        if not new:
            return NOT_APPLIED
        paid = [p for p in new if reached_paid(p)]
        f = retry_outcome(action, paid[0] if paid else new[-1], ctx)
        return Final(f.status, f.message + " (resolved by reading)", f.result, f.order, f.new_order)
    raise PortOneReconError(f"unknown action kind {action.kind!r}")  # pragma: no cover
