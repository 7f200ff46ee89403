"""Applying a :class:`~portone_recon.actions.plan.FixPlan`: the only writer of fix-ups.

Safety rules, in the order ``apply`` follows them for every action:

1. One apply at a time per store: an OS file lock (``filelock``) on ``<db>.apply.lock`` (the holder's
   pid, host and start time beside it); a second apply fails at once with
   :class:`~portone_recon.errors.ApplyInProgressError`.
2. Every action is journaled in ``actions`` as ``planned`` before anything is sent.
3. An action left ``sending`` (a crash) or ``unknown`` (:class:`~portone_recon.errors.OutcomeUnknownError`)
   is resolved by a read - the schedule by its merchant_uid, the payment attempts on a merchant_uid
   compared with those seen before sending - never by sending again blindly. Only when the read proves
   the write did not happen does the action go back to ``planned``.
4. Right before sending, PortOne's current state is read again; what is no longer needed is ``skipped``
   with the reason (already paid, already revoked, period already covered, billing key deleted...).
5. Caps: at most ``max_actions`` actions executed and ``max_amount`` KRW charged (rebook + retry) per
   apply; the rest stays ``planned``.
6. The journal goes ``sending`` (committed) -> call -> ``succeeded | failed | unknown`` (committed).
   A refusal (``code != 0``) is recorded with PortOne's Korean message and not retried. A retried
   schedule is ``succeeded`` only when the returned payment's ``status`` is ``paid``.
7. ``reverify`` writes no API state: it marks the local order paid in the store (same transaction as
   its journal row) and, for a SQL orders source, through :class:`~portone_recon.orders.OrdersWriter`
   first (both only change rows still unpaid with the same amount, so a rerun is harmless).

Dry-run (the default) takes no lock, writes nothing (no journal either) and sends no write request; it
reads PortOne (when given a client) to show what would be sent and what would be skipped.

UNCONFIRMED points and the reading chosen here: unschedule sends ``customer_uid`` with a one-element
``merchant_uid`` array (never ``customer_uid`` alone, which would revoke every schedule of the key); any
refusal of a schedule create is followed by ``GET /subscribe/payments/schedule/{merchant_uid}`` (the
duplicate message is not documented), and a schedule found with the same customer and amount counts as
booked.
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

import pandas as pd
from tqdm.auto import tqdm

from portone_recon._time import KST
from portone_recon.actions import journal
from portone_recon.actions.plan import MONEY_KINDS, Action, FixPlan
from portone_recon.api.models import BillingKey, Payment, Schedule
from portone_recon.errors import (
    APIError,
    BusinessError,
    NotFoundError,
    OutcomeUnknownError,
    PortOneHTTPError,
    PortOneReconError,
    TransportError,
)
from portone_recon.store import Store

Hook = Callable[[str, Action], None]
#: Points where ``hook`` is called (tests kill the process there).
HOOK_POINTS = ("before_send", "after_send", "after_journal")


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


# -- small result types ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Skip:
    reason: str
    evidence: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Go:
    pre: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _OrderUpdate:
    merchant_uid: str
    imp_uid: str
    paid_at: datetime | None
    amount: int


@dataclass(frozen=True)
class _Final:
    status: str  # succeeded | failed | skipped
    message: str
    result: Mapping[str, Any] = field(default_factory=dict)
    order: _OrderUpdate | None = None


class _NotApplied:
    """A read proved an unresolved action's write never happened."""


NOT_APPLIED = _NotApplied()


class _Pending(Exception):
    """Leave the action as it is (a read failed, or the orders writer failed); try on the next apply."""


def _reached_paid(p: Payment) -> bool:
    return p.status == "paid" or (p.status == "cancelled" and p.paid_at is not None)


def _fmt_krw(v: Any) -> str:
    try:
        return f"{int(v):,} KRW"
    except (TypeError, ValueError):
        return f"{v} KRW"


def _pay_evidence(p: Payment) -> dict[str, Any]:
    return {
        "imp_uid": p.imp_uid,
        "merchant_uid": p.merchant_uid,
        "status": p.status,
        "amount": int(p.amount),
        "currency": p.currency,
        "paid_at": p.paid_at.isoformat() if p.paid_at else None,
        "fail_reason": p.fail_reason,
    }


def _sched_evidence(s: Schedule) -> dict[str, Any]:
    return {
        "merchant_uid": s.merchant_uid,
        "customer_uid": s.customer_uid,
        "schedule_status": s.schedule_status,
        "payment_status": s.payment_status,
        "amount": int(s.amount),
        "schedule_at": s.schedule_at.isoformat() if s.schedule_at else None,
        "imp_uid": s.imp_uid,
    }


def _kst_midnight(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=KST)


# -- the executor ----------------------------------------------------------------------------


class _Ctx:
    def __init__(self, client: ClientLike | None, store: Store, writer: OrdersWriterLike | None) -> None:
        self.client = client
        self.store = store
        self.writer = writer
        self._auto_writers: dict[str, OrdersWriterLike | None] = {}

    @property
    def api(self) -> ClientLike:
        if self.client is None:
            raise _Pending("no client: cannot read PortOne")
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

    def local_order(self, mu: str) -> dict[str, Any] | None:
        if not self.store.path.exists():
            return None
        with self.store.connect() as con:
            row = con.execute(
                "SELECT merchant_uid, amount, currency, status, source, imp_uid FROM orders "
                "WHERE merchant_uid = ?",
                [mu],
            ).fetchone()
        if row is None:
            return None
        keys = ("merchant_uid", "amount", "currency", "status", "source", "imp_uid")
        return dict(zip(keys, row, strict=True))

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
                raise _Pending(f"orders source {source!r} is SQL but no writer: {exc}") from exc
        self._auto_writers[source] = writer
        return writer


def _precheck(action: Action, ctx: _Ctx) -> _Skip | _Go | _Final:
    t = action.target
    if action.kind == "reverify":
        return _precheck_reverify(action, ctx)
    if action.kind == "unschedule":
        s = ctx.schedule_or_none(str(t["schedule_merchant_uid"]))
        if s is None:
            return _Skip("no such schedule at PortOne")
        if s.schedule_status != "scheduled":
            return _Skip(f"schedule is already {s.schedule_status}", _sched_evidence(s))
        return _Go({"schedule": _sched_evidence(s)})
    if action.kind == "rebook":
        return _precheck_rebook(action, ctx)
    if action.kind == "retry":
        return _precheck_retry(action, ctx)
    raise PortOneReconError(f"unknown action kind {action.kind!r}")  # pragma: no cover


def _precheck_reverify(action: Action, ctx: _Ctx) -> _Skip | _Go | _Final:
    t = action.target
    imp = t.get("imp_uid")
    mu = t.get("merchant_uid")
    if imp:
        try:
            pay = ctx.api.fetch_payment(str(imp))
        except NotFoundError:
            return _Skip(f"payment {imp} not found at PortOne")
        if mu and pay.merchant_uid != mu:
            return _Final(
                "failed", f"payment {imp} belongs to order {pay.merchant_uid}, not {mu}", _pay_evidence(pay)
            )
    else:
        attempts = ctx.attempts(str(mu))
        paid = [p for p in attempts if p.status == "paid"]
        if not attempts:
            return _Skip(f"no payment for order {mu} at PortOne")
        pay = paid[-1] if paid else attempts[-1]
    mu = pay.merchant_uid
    evidence = _pay_evidence(pay)
    if pay.status != "paid":
        return _Skip(f"PortOne status is {pay.status!r}, not 'paid'", evidence)
    order = ctx.local_order(mu)
    if order is None:
        return _Skip(f"no local order {mu}", evidence)
    evidence["order"] = {k: order[k] for k in ("amount", "currency", "status")}
    if order["status"] == "paid":
        return _Skip("order is already paid locally", evidence)
    if order["status"] not in ("pending", "failed"):
        return _Skip(f"order is {order['status']} locally: not revived", evidence)
    if int(pay.amount) != int(order["amount"]) or pay.currency != (order["currency"] or "KRW"):
        return _Final(
            "failed",
            f"amount mismatch: PortOne {_fmt_krw(pay.amount)} {pay.currency}, "
            f"order {_fmt_krw(order['amount'])} {order['currency']} - not marked paid (manual review)",
            evidence,
        )
    return _Go({"payment": evidence, "order_source": order["source"]})


def _precheck_rebook(action: Action, ctx: _Ctx) -> _Skip | _Go | _Final:
    t = action.target
    cu = str(t["customer_uid"])
    mu = str(t["merchant_uid"])
    found = ctx.schedule_or_none(mu)
    if found is not None:
        return _rebook_found(action, found)
    try:
        ctx.api.fetch_billing_key(cu)
    except (NotFoundError, BusinessError) as exc:
        return _Skip(f"billing key {cu} not found at PortOne: {exc.detail}")
    p_start = date.fromisoformat(str(t["period_start"]))
    p_end = date.fromisoformat(str(t["period_end"]))
    for s in ctx.api.iter_customer_schedules(cu, _kst_midnight(p_start), _kst_midnight(p_end)):
        if s.schedule_status == "scheduled":
            return _Skip(
                f"period {p_start:%Y-%m} already covered by scheduled {s.merchant_uid}", _sched_evidence(s)
            )
        if s.schedule_status == "executed" and s.payment_status == "paid":
            return _Skip(f"period {p_start:%Y-%m} already paid by {s.merchant_uid}", _sched_evidence(s))
    return _Go({"covered": False})


def _rebook_found(action: Action, s: Schedule) -> _Final:
    entry = action.request["json"]["schedules"][0]
    same = s.customer_uid == action.target["customer_uid"] and int(s.amount) == int(entry["amount"])
    if same and s.schedule_status in ("scheduled", "executed"):
        return _Final(
            "succeeded",
            f"schedule {s.merchant_uid} exists at PortOne ({s.schedule_status})",
            _sched_evidence(s),
        )
    return _Final(
        "failed",
        f"merchant_uid {s.merchant_uid} is already used at PortOne ({s.schedule_status}, customer "
        f"{s.customer_uid}, {_fmt_krw(s.amount)}); re-plan with another prefix",
        _sched_evidence(s),
    )


def _precheck_retry(action: Action, ctx: _Ctx) -> _Skip | _Go | _Final:
    t = action.target
    smu = str(t["schedule_merchant_uid"])
    cu = str(t["customer_uid"])
    s = ctx.schedule_or_none(smu)
    if s is None:
        return _Skip("no such schedule at PortOne")
    ev = _sched_evidence(s)
    if s.schedule_status == "scheduled":
        return _Skip("schedule has not run yet (still scheduled)", ev)
    if s.payment_status == "paid":
        return _Skip("schedule is already paid", ev)
    attempts = ctx.attempts(smu)
    for p in attempts:
        if _reached_paid(p):
            return _Skip(f"order {smu} already paid by {p.imp_uid}", _pay_evidence(p))
    if t.get("period_start") and t.get("period_end"):
        lo = _kst_midnight(date.fromisoformat(str(t["period_start"])))
        hi = _kst_midnight(date.fromisoformat(str(t["period_end"])))
        expected = t.get("expected_amount")
        for p in ctx.api.iter_billing_key_payments(cu):
            if not _reached_paid(p) or p.paid_at is None or not lo <= p.paid_at < hi:
                continue
            if expected is None or int(p.amount) == int(expected):
                return _Skip(
                    f"period {lo:%Y-%m-%d}..{hi:%Y-%m-%d} already paid by {p.imp_uid} ({p.merchant_uid})",
                    _pay_evidence(p),
                )
    return _Go({"attempts": [p.imp_uid for p in attempts], "schedule": ev})


def _send(action: Action, go: _Go, ctx: _Ctx) -> _Final:
    t = action.target
    if action.kind == "reverify":
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
                raise _Pending(f"orders database not updated: {exc}") from exc
        order = _OrderUpdate(
            pay["merchant_uid"],
            pay["imp_uid"],
            datetime.fromisoformat(pay["paid_at"]) if pay["paid_at"] else None,
            int(pay["amount"]),
        )
        msg = f"order {pay['merchant_uid']} marked paid ({pay['imp_uid']}, {_fmt_krw(pay['amount'])})"
        if written is not None:
            msg += f"; orders database rows changed: {written}"
        return _Final("succeeded", msg, {"payment": pay, "orders_db_rows": written}, order)
    if action.kind == "unschedule":
        smu = str(t["schedule_merchant_uid"])
        try:
            done = ctx.api.unschedule(customer_uid=t.get("customer_uid"), merchant_uids=[smu])
        except BusinessError as exc:
            s = ctx.schedule_or_none(smu)
            if s is not None and s.schedule_status == "revoked":
                return _Final("succeeded", f"schedule {smu} is revoked", _sched_evidence(s))
            return _Final("failed", f"PortOne refused: {exc.message} (code {exc.code})", {"code": exc.code})
        return _Final("succeeded", f"schedule {smu} revoked", {"revoked": [_sched_evidence(s) for s in done]})
    if action.kind == "rebook":
        cu = str(t["customer_uid"])
        entries = action.request["json"]["schedules"]
        try:
            made = ctx.api.create_schedules(cu, entries)
        except BusinessError as exc:
            s = ctx.schedule_or_none(str(t["merchant_uid"]))  # "duplicate" may mean: it exists. Read it.
            if s is not None:
                return _rebook_found(action, s)
            return _Final("failed", f"PortOne refused: {exc.message} (code {exc.code})", {"code": exc.code})
        return _Final(
            "succeeded",
            f"booked {t['merchant_uid']} at {t.get('schedule_at')} for {_fmt_krw(action.amount)}",
            {"schedules": [_sched_evidence(s) for s in made]},
        )
    if action.kind == "retry":
        smu = str(t["schedule_merchant_uid"])
        try:
            pay_obj = ctx.api.retry_schedule(smu)
        except BusinessError as exc:
            return _Final("failed", f"PortOne refused: {exc.message} (code {exc.code})", {"code": exc.code})
        return _retry_outcome(pay_obj, ctx)
    raise PortOneReconError(f"unknown action kind {action.kind!r}")  # pragma: no cover


def _retry_outcome(p: Payment, ctx: _Ctx) -> _Final:
    ev = _pay_evidence(p)
    if p.status != "paid":  # code 0 only means the request reached the card company
        return _Final(
            "failed", f"retry charged nothing: status {p.status} ({p.fail_reason or 'no reason'})", ev
        )
    order = ctx.local_order(p.merchant_uid)
    upd = None
    if order is not None:
        upd = _OrderUpdate(p.merchant_uid, p.imp_uid, p.paid_at, int(p.amount))
        try:  # the charge happened: a write-back problem is recorded, never turned into a re-send
            writer = ctx.writer_for(str(order.get("source") or ""))
            if writer is not None and p.paid_at is not None:
                ev["orders_db_rows"] = writer.mark_paid(
                    p.merchant_uid, imp_uid=p.imp_uid, paid_at=p.paid_at, amount=int(p.amount)
                )
        except (PortOneReconError, _Pending) as exc:
            ev["orders_db_error"] = str(exc)
    return _Final("succeeded", f"retry paid {_fmt_krw(p.amount)} ({p.imp_uid})", ev, upd)


def _resolve(action: Action, row: journal.JournalRow, ctx: _Ctx) -> _Final | _NotApplied:
    """Decide an action left ``sending``/``unknown`` by reading PortOne (never by re-sending)."""
    t = action.target
    if action.kind == "reverify":
        return NOT_APPLIED  # no remote write; the local writes only touch rows still unpaid
    if action.kind == "unschedule":
        s = ctx.schedule_or_none(str(t["schedule_merchant_uid"]))
        if s is None:
            return _Final("skipped", "schedule not found at PortOne")
        if s.schedule_status == "revoked":
            return _Final("succeeded", "schedule is revoked (resolved by reading)", _sched_evidence(s))
        if s.schedule_status == "executed":
            return _Final("failed", "schedule executed before it could be revoked", _sched_evidence(s))
        return NOT_APPLIED
    if action.kind == "rebook":
        s = ctx.schedule_or_none(str(t["merchant_uid"]))
        if s is None:
            return NOT_APPLIED
        f = _rebook_found(action, s)
        return _Final(f.status, f.message + " (resolved by reading)", f.result)
    if action.kind == "retry":
        before = set(row.result.get("pre", {}).get("attempts", []))
        new = [p for p in ctx.attempts(str(t["schedule_merchant_uid"])) if p.imp_uid not in before]
        if not new:
            return NOT_APPLIED
        paid = [p for p in new if _reached_paid(p)]
        f = _retry_outcome(paid[0] if paid else new[-1], ctx)
        return _Final(f.status, f.message + " (resolved by reading)", f.result, f.order)
    raise PortOneReconError(f"unknown action kind {action.kind!r}")  # pragma: no cover


def _finish(store: Store, action: Action, final: _Final, extra: Mapping[str, Any]) -> int | None:
    """Commit the final journal status, with the local order update in the same transaction."""
    result = {**extra, "outcome": dict(final.result)}
    changed: int | None = None
    with store.transaction() as con:
        if final.order is not None:
            o = final.order
            row = con.execute(
                "UPDATE orders SET status = 'paid', imp_uid = $imp, paid_at = coalesce($paid_at, paid_at) "
                "WHERE merchant_uid = $mu AND status IN ('pending', 'failed') AND amount = $amount",
                {"imp": o.imp_uid, "paid_at": o.paid_at, "mu": o.merchant_uid, "amount": o.amount},
            ).fetchone()
            changed = int(row[0]) if row else 0
            result["store_orders_changed"] = changed
        journal.update(store, action.action_id, final.status, message=final.message, result=result, con=con)
    return changed


# -- the report --------------------------------------------------------------------------------

OUTCOME_COLUMNS = (
    "action_id",
    "kind",
    "customer_uid",
    "key",
    "amount",
    "status",
    "outcome",
    "message",
    "request",
)
PENDING_STATUSES = frozenset({"planned", "sending", "unknown", "failed", "would_send"})


@dataclass(frozen=True)
class ApplyReport:
    """What one apply (or dry-run) did, action by action.

    Attributes:
        outcomes: one row per action: action_id, kind, customer_uid, key, amount, status (the journal
            status after this apply; ``would_send``/``would_skip`` in a dry-run), outcome (sent, skipped,
            resolved, already, deferred, pending, would_send, would_skip), message, request.
        dry_run: nothing was written or sent.
        seconds: wall time.
    """

    outcomes: pd.DataFrame
    dry_run: bool
    seconds: float
    amount_sent: int = 0

    @property
    def counts(self) -> dict[str, int]:
        """Actions per status."""
        return {str(k): int(v) for k, v in self.outcomes["status"].value_counts().sort_index().items()}

    @property
    def pending(self) -> int:
        """Actions still needing attention: planned, sending, unknown, failed (or would be sent)."""
        return int(self.outcomes["status"].isin(list(PENDING_STATUSES)).sum())

    @property
    def exit_code(self) -> int:
        """0 when nothing remains pending/unknown/failed, else 1."""
        return 1 if self.pending else 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "seconds": round(self.seconds, 3),
            "counts": self.counts,
            "pending": self.pending,
            "amount_sent": self.amount_sent,
            "outcomes": [
                {
                    k: (None if pd.isna(v) else v) if not isinstance(v, dict | list) else v
                    for k, v in r.items()
                }
                for r in self.outcomes.to_dict("records")
            ],
        }

    def __repr__(self) -> str:
        counts = ", ".join(f"{k} {n}" for k, n in self.counts.items()) or "no actions"
        mode = "dry-run" if self.dry_run else "applied"
        return (
            f"ApplyReport({mode}: {len(self.outcomes)} actions: {counts}; {self.pending} pending; "
            f"{self.amount_sent:,} KRW sent; {self.seconds:.1f} s)"
        )

    def _repr_html_(self) -> str:
        try:
            frame = self.outcomes.drop(columns=["action_id", "request"])
            table = frame.head(100).to_html(index=False, escape=True)
            return f"<b>{html.escape(repr(self))}</b>{table}"
        except Exception as exc:  # a repr never raises
            return f"<b>ApplyReport</b> <i>(cannot render: {html.escape(type(exc).__name__)})</i>"


def _outcome(action: Action, status: str, outcome: str, message: str) -> dict[str, Any]:
    req = action.request
    return {
        "action_id": action.action_id,
        "kind": action.kind,
        "customer_uid": action.customer_uid,
        "key": action.key,
        "amount": action.amount,
        "status": status,
        "outcome": outcome,
        "message": message,
        "request": f"{req.get('method', '')} {req.get('path', '')}".strip(),
    }


def _report(rows: list[dict[str, Any]], dry_run: bool, started: float, sent_amount: int) -> ApplyReport:
    frame = pd.DataFrame(rows, columns=list(OUTCOME_COLUMNS))
    return ApplyReport(frame, dry_run, time.monotonic() - started, sent_amount)


# -- apply -------------------------------------------------------------------------------------


def apply(
    plan: FixPlan | Iterable[Action],
    client: ClientLike | None,
    store: Store,
    dry_run: bool = True,
    max_actions: int = 50,
    max_amount: int | None = None,
    *,
    orders_writer: OrdersWriterLike | None = None,
    progress: bool = True,
    hook: Hook | None = None,
) -> ApplyReport:
    """Apply a fix plan (dry-run unless ``dry_run=False``). The only writer of fix-ups.

    Args:
        plan: the plan (or actions) to apply, in order.
        client: a ``PortOneClient`` (a dry-run may pass None: then it only lists the plan).
        store: the store holding the journal and the local orders.
        dry_run: read and show, send nothing, write nothing.
        max_actions: at most this many actions executed in this apply (the rest stays planned).
        max_amount: at most this many KRW charged (rebook + retry) in this apply.
        orders_writer: writes reverified payments back to the merchant's SQL orders table; default:
            built from ``source_loads`` when the order's source is SQL.
        progress: show a tqdm progress bar.
        hook: test hook called as ``hook(point, action)`` at ``before_send`` (after 'sending' is
            committed), ``after_send`` (before the result is journaled) and ``after_journal``.

    Returns:
        An :class:`ApplyReport`; ``exit_code`` is 1 when actions remain pending/unknown/failed.

    Raises:
        ApplyInProgressError: another apply holds this store's lock.
    """
    actions = list(plan.actions if isinstance(plan, FixPlan) else plan)
    ids = [a.action_id for a in actions]
    if len(set(ids)) != len(ids):
        raise PortOneReconError("the plan holds duplicate action_ids")
    if max_actions < 0 or (max_amount is not None and max_amount < 0):
        raise PortOneReconError("max_actions and max_amount must be >= 0")
    started = time.monotonic()
    ctx = _Ctx(client, store, orders_writer)
    if dry_run:
        return _dry_run(actions, ctx, started, progress)
    with journal.apply_lock(journal.lock_path_for(store)):
        return _apply_locked(actions, ctx, started, max_actions, max_amount, progress, hook)


def _dry_run(actions: list[Action], ctx: _Ctx, started: float, progress: bool) -> ApplyReport:
    rows = journal.read_rows(ctx.store, [a.action_id for a in actions])
    out: list[dict[str, Any]] = []
    for a in tqdm(actions, desc="dry-run", unit="action", disable=not progress or not actions):
        row = rows.get(a.action_id)
        if row is not None and row.status in journal.FINAL:
            out.append(_outcome(a, row.status, "already", row.message or f"already {row.status}"))
            continue
        if ctx.client is None:
            out.append(_outcome(a, "would_send", "would_send", _describe(a)))
            continue
        try:
            if row is not None and row.status in journal.UNRESOLVED:
                res = _resolve(a, row, ctx)
                if isinstance(res, _Final):
                    out.append(
                        _outcome(a, "would_skip", "would_skip", f"would resolve: {res.status}: {res.message}")
                    )
                    continue
            check = _precheck(a, ctx)
        except (APIError, _Pending) as exc:
            out.append(_outcome(a, "would_send", "would_send", f"{_describe(a)} (could not read: {exc})"))
            continue
        if isinstance(check, _Skip):
            out.append(_outcome(a, "would_skip", "would_skip", check.reason))
        elif isinstance(check, _Final):
            out.append(_outcome(a, "would_skip", "would_skip", f"would be {check.status}: {check.message}"))
        else:
            out.append(_outcome(a, "would_send", "would_send", _describe(a)))
    return _report(out, True, started, 0)


def _dependency(a: Action, store: Store) -> tuple[str, str] | None:
    """``(status, why)`` when the action must wait for, or give up because of, the action it requires."""
    req = a.target.get("requires")
    if not req:
        return None
    dep = journal.read_rows(store, [str(req)]).get(str(req))
    if dep is not None and dep.status in ("succeeded", "skipped"):
        return None
    if dep is not None and dep.status == "failed":
        return "skipped", f"not needed: the action it follows ({req}) failed"
    return "planned", f"deferred: waiting for {req} ({dep.status if dep else 'not journaled'})"


def _describe(a: Action) -> str:
    req = a.request
    body = req.get("json")
    if a.kind == "reverify":
        return f"would read {req.get('path')} and mark order {a.target.get('merchant_uid') or '?'} paid"
    return f"would send {req.get('method')} {req.get('path')}" + (f" {body}" if body else "")


def _apply_locked(
    actions: list[Action],
    ctx: _Ctx,
    started: float,
    max_actions: int,
    max_amount: int | None,
    progress: bool,
    hook: Hook | None,
) -> ApplyReport:
    rows = journal.ensure_planned(ctx.store, actions)
    out: list[dict[str, Any]] = []
    executed = 0
    spent = 0
    for a in tqdm(actions, desc="apply", unit="action", disable=not progress or not actions):
        row = rows[a.action_id]
        if row.status in journal.FINAL:
            out.append(_outcome(a, row.status, "already", row.message or f"already {row.status}"))
            continue
        dep = _dependency(a, ctx.store) if row.status == "planned" else None
        if dep is not None:
            status, why = dep
            if status == "skipped":
                _finish(ctx.store, a, _Final("skipped", why), {})
            else:
                journal.update(ctx.store, a.action_id, "planned", message=why)
            out.append(_outcome(a, status, "skipped" if status == "skipped" else "deferred", why))
            continue
        try:
            if row.status in journal.UNRESOLVED:
                res = _resolve(a, row, ctx)
                if isinstance(res, _Final):
                    _finish(ctx.store, a, res, {"pre": row.result.get("pre"), "resolved": True})
                    out.append(_outcome(a, res.status, "resolved", res.message))
                    continue
                journal.update(ctx.store, a.action_id, "planned", message="not applied (checked by reading)")
            check = _precheck(a, ctx)
        except (APIError, _Pending) as exc:
            msg = f"could not read the current state: {exc}"
            journal.update(
                ctx.store, a.action_id, row.status if row.status != "sending" else "unknown", message=msg
            )
            out.append(_outcome(a, row.status if row.status != "sending" else "unknown", "pending", msg))
            continue
        if isinstance(check, _Skip):
            _finish(ctx.store, a, _Final("skipped", check.reason, check.evidence), {})
            out.append(_outcome(a, "skipped", "skipped", check.reason))
            continue
        if isinstance(check, _Final):
            _finish(ctx.store, a, check, {})
            out.append(
                _outcome(
                    a, check.status, "resolved" if check.status == "succeeded" else "sent", check.message
                )
            )
            continue
        money = a.amount if a.kind in MONEY_KINDS else 0
        if executed >= max_actions or (max_amount is not None and spent + money > max_amount):
            why = f"deferred: cap reached (max_actions={max_actions}, max_amount={max_amount})"
            journal.update(ctx.store, a.action_id, "planned", message=why)
            out.append(_outcome(a, "planned", "deferred", why))
            continue
        sent_at = datetime.now(tz=KST).isoformat()
        extra = {"pre": dict(check.pre), "sent_at": sent_at}
        journal.update(ctx.store, a.action_id, "sending", message=None, result=extra, attempt=True)
        if hook is not None:
            hook("before_send", a)
        executed += 1
        try:
            final = _send(a, check, ctx)
        except OutcomeUnknownError as exc:
            msg = f"outcome unknown (will be resolved by reading on the next apply): {exc}"
            journal.update(ctx.store, a.action_id, "unknown", message=msg)
            out.append(_outcome(a, "unknown", "sent", msg))
            spent += money
            continue
        except _Pending as exc:
            journal.update(ctx.store, a.action_id, "planned", message=str(exc))
            out.append(_outcome(a, "planned", "pending", str(exc)))
            continue
        except TransportError as exc:  # the client raises these only when the request never arrived
            msg = f"not sent: {exc}"
            journal.update(ctx.store, a.action_id, "planned", message=msg)
            out.append(_outcome(a, "planned", "pending", msg))
            continue
        except PortOneHTTPError as exc:
            final = _Final(
                "failed", f"PortOne answered HTTP {exc.http_status}: {exc.message} (code {exc.code})"
            )
        if hook is not None:
            hook("after_send", a)
        _finish(ctx.store, a, final, extra)
        if hook is not None:
            hook("after_journal", a)
        if final.status == "succeeded":
            spent += money
        out.append(_outcome(a, final.status, "sent", final.message))
    return _report(out, False, started, spent)
