"""Applying a :class:`~portone_recon.actions.model.FixPlan`: the only writer of fix-ups.

The gate, before anything is sent (the whole plan, or nothing):

1. The plan is the store's record: a plan with a ``plan_id`` must equal the plan recorded under it, action
   for action (the first difference is named); a plan without one is checked against the stored findings
   (every action must be what the planner makes of its finding) and recorded. Nothing is ever taken from a
   file's ``request`` field: each request is built from the recorded target.
2. The plan is younger than ``max_plan_age`` (default 24 h) by the wall clock.
3. Every action is well formed (the action and field are named otherwise).
4. Caps, counted from the requests themselves (every schedule entry of a booking, the charge of a retry):
   at most ``max_actions`` money-moving requests and ``max_amount`` in each currency. Over a cap nothing is
   sent and the error says which cap and by how much.

Then, action by action (:mod:`portone_recon.actions.checks` has the re-checks):

5. One apply at a time per store: an OS file lock (``filelock``) on ``<db>.apply.lock``, the holder's pid,
   host and start time beside it; a second apply fails at once with
   :class:`~portone_recon.errors.ApplyInProgressError`. Every action is journaled ``planned`` first.
6. An action left ``sending``, ``unknown`` or ``failed_retryable`` is resolved by a read, never by sending
   again blindly.
7. The action is derived again from its stored finding with today's subscriptions; one that no longer
   means the same is skipped. A money-moving action of a customer's subscription that an open, not
   acknowledged manual-review finding holds is skipped, unless the plan included it deliberately.
8. Right before sending, its own reason is re-checked with fresh reads and the wall clock.
9. The journal goes ``sending`` (committed) -> call -> ``succeeded | failed | unknown | failed_retryable``
   (committed, with the local order changes in the same transaction). A refusal (``code != 0``) is
   recorded with PortOne's message and not retried; a 429 or 5xx on a write is ``failed_retryable``.

Dry-run (the default) takes no lock, writes nothing and sends no write request; it reads PortOne (when
given a client) and shows every request in full, exactly as it would be sent.

UNCONFIRMED points and the reading chosen here: unschedule sends ``customer_uid`` with a one-element
``merchant_uid`` array (never ``customer_uid`` alone, which would revoke every schedule of the key); any
refusal of a schedule create is followed by ``GET /subscribe/payments/schedule/{merchant_uid}`` (the
duplicate message is not documented), and a schedule found with the same customer and amount counts as
booked.
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from portone_recon import _time
from portone_recon._time import KST
from portone_recon.actions import journal
from portone_recon.actions.checks import precheck
from portone_recon.actions.executor import (
    ClientLike,
    Context,
    Final,
    Go,
    NotApplied,
    OrdersWriterLike,
    Pending,
    Skip,
    resolve,
    send,
)
from portone_recon.actions.holds import Holds, holds_in_store
from portone_recon.actions.model import Action, FixPlan
from portone_recon.actions.preview import describe_request
from portone_recon.actions.record import (
    check_well_formed,
    derive_actions,
    difference,
    record_plan,
    recorded_plan,
    validate_against_findings,
)
from portone_recon.actions.requests import build_request, money_of
from portone_recon.actions.subscriptions import Subscriptions
from portone_recon.errors import (
    APIError,
    CapExceededError,
    OutcomeUnknownError,
    PlanRefusedError,
    PortOneHTTPError,
    PortOneReconError,
    RateLimitError,
    ServerError,
    TransportError,
)
from portone_recon.store import Store

Hook = Callable[[str, Action], None]
Clock = Callable[[], datetime]
#: Points where ``hook`` is called (tests kill the process there).
HOOK_POINTS = ("before_send", "after_send", "after_journal")

#: Default caps of one apply: money-moving requests, and money per currency (smallest unit).
DEFAULT_MAX_ACTIONS = 20
DEFAULT_MAX_AMOUNT = 500_000
#: A plan older than this is refused (re-plan).
DEFAULT_MAX_PLAN_AGE = timedelta(hours=24)

__all__ = [
    "DEFAULT_MAX_ACTIONS",
    "DEFAULT_MAX_AMOUNT",
    "DEFAULT_MAX_PLAN_AGE",
    "ApplyReport",
    "ClientLike",
    "OrdersWriterLike",
    "apply",
    "describe_request",
    "verify_plan",
    "wall_clock",
]


def wall_clock() -> datetime:
    """The wall clock every apply measures plan age, renewal times and periods by (tests replace
    ``portone_recon._time.now_kst``)."""
    return _time.now_kst()


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
PENDING_STATUSES = frozenset({"planned", "sending", "unknown", "failed", "would_send", "failed_retryable"})


@dataclass(frozen=True)
class ApplyReport:
    """What one apply (or dry-run) did, action by action.

    Attributes:
        outcomes: one row per action: action_id, kind, customer_uid, key, amount (the money its request
            moves), status (the journal status after this apply; ``would_send``/``would_skip`` in a
            dry-run), outcome (sent, skipped, resolved, already, deferred, pending, would_send,
            would_skip), message, request (in full, exactly as sent).
        dry_run: nothing was written or sent.
        seconds: wall time.
        amount_sent: money moved by the requests that went out and succeeded, per currency.
        requests_sent: money-moving requests (schedule entries and retries) that went out.
        plan_id: the recorded plan that was applied.
    """

    outcomes: pd.DataFrame
    dry_run: bool
    seconds: float
    amount_sent: Mapping[str, int]
    requests_sent: int = 0
    plan_id: str | None = None

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
            "plan_id": self.plan_id,
            "seconds": round(self.seconds, 3),
            "counts": self.counts,
            "pending": self.pending,
            "amount_sent": dict(self.amount_sent),
            "requests_sent": self.requests_sent,
            "outcomes": [
                {
                    k: (None if pd.isna(v) else v) if not isinstance(v, dict | list) else v
                    for k, v in r.items()
                }
                for r in self.outcomes.to_dict("records")
            ],
        }

    def _money(self) -> str:
        if not self.amount_sent:
            return "nothing charged or booked"
        return ", ".join(f"{v:,} {k}" for k, v in sorted(self.amount_sent.items())) + " sent"

    def __repr__(self) -> str:
        counts = ", ".join(f"{k} {n}" for k, n in self.counts.items()) or "no actions"
        mode = "dry-run" if self.dry_run else "applied"
        return (
            f"ApplyReport({mode}: {len(self.outcomes)} actions: {counts}; {self.pending} pending; "
            f"{self.requests_sent} money-moving requests, {self._money()}; {self.seconds:.1f} s)"
        )

    def _repr_html_(self) -> str:
        try:
            frame = self.outcomes.drop(columns=["action_id"])
            table = frame.head(100).to_html(index=False, escape=True)
            return f"<b>{html.escape(repr(self))}</b>{table}"
        except Exception as exc:  # a repr never raises
            return f"<b>ApplyReport</b> <i>(cannot render: {html.escape(type(exc).__name__)})</i>"


def _outcome(
    action: Action, status: str, outcome: str, message: str, client: object | None = None
) -> dict[str, Any]:
    try:
        request = describe_request(action, client)
        money = money_of(action.kind, action.target, build_request(action.kind, action.target)).amount
    except PortOneReconError:
        request, money = "(malformed)", 0
    return {
        "action_id": action.action_id,
        "kind": action.kind,
        "customer_uid": action.customer_uid,
        "key": action.key,
        "amount": money,
        "status": status,
        "outcome": outcome,
        "message": message,
        "request": request,
    }


# -- the gate ----------------------------------------------------------------------------------


def _gate(plan: FixPlan, store: Store, now: datetime, dry_run: bool, max_age: timedelta) -> FixPlan:
    """The plan apply may act on: the store's record of it (recorded now when new and not a dry-run)."""
    if plan.plan_id is not None:
        plan = recorded_plan(store, plan).plan
        check_well_formed(plan)
    elif dry_run:
        check_well_formed(plan)
        validate_against_findings(store, plan)
    else:
        plan = record_plan(store, plan, now=now)  # checks form and findings, then records
    if plan.as_of is not None and plan.as_of - now > _time.FUTURE_SLACK:
        raise PlanRefusedError(
            f"plan {plan.plan_id or '(new)'} was made for a reconciliation at "
            f"{plan.as_of.astimezone(KST):%Y-%m-%d %H:%M} KST, more than a day ahead of now: reconcile at "
            "a past or present instant and re-plan"
        )
    if plan.created_at is not None:
        age = now - plan.created_at
        if age > max_age:
            hours = age.total_seconds() / 3600
            raise PlanRefusedError(
                f"plan {plan.plan_id} was made {plan.created_at.astimezone(KST):%Y-%m-%d %H:%M} KST, "
                f"{hours:.1f} h ago; plans older than {max_age.total_seconds() / 3600:g} h are refused: "
                "re-plan with `portone-recon fix plan`"
            )
    return plan


def verify_plan(
    plan: FixPlan, store: Store, *, max_plan_age: timedelta = DEFAULT_MAX_PLAN_AGE, clock: Clock | None = None
) -> FixPlan:
    """Check a plan against the store's record, its age and its form without recording or sending
    anything (what apply checks first); returns the plan apply would act on."""
    return _gate(plan, store, (clock or wall_clock)(), True, max_plan_age)


def _check_caps(
    actions: list[Action],
    rows: Mapping[str, journal.JournalRow],
    plan_id: str | None,
    max_actions: int,
    max_amount: int,
) -> None:
    """Refuse the apply when the money-moving requests still to send exceed a cap."""
    entries = 0
    totals: dict[str, int] = {}
    for a in actions:
        row = rows.get(a.action_id)
        if not a.moves_money or (row is not None and row.done_for(plan_id)):
            continue
        m = money_of(a.kind, a.target, build_request(a.kind, a.target))
        entries += m.entries
        totals[m.currency] = totals.get(m.currency, 0) + m.amount
    if entries > max_actions:
        raise CapExceededError(
            f"the plan would send {entries} money-moving requests (every schedule entry and retry counted); "
            f"the cap max_actions is {max_actions}, exceeded by {entries - max_actions}. Nothing was sent: "
            "raise the cap (--max-actions) or plan fewer (--kinds, --customers)"
        )
    for currency, total in sorted(totals.items()):
        if total > max_amount:
            raise CapExceededError(
                f"the plan would charge or book {total:,} {currency}; the cap max_amount is {max_amount:,}, "
                f"exceeded by {total - max_amount:,} {currency}. Nothing was sent: raise the cap "
                "(--max-amount) or plan fewer"
            )


# -- apply -------------------------------------------------------------------------------------


def apply(
    plan: FixPlan,
    client: ClientLike | None,
    store: Store,
    dry_run: bool = True,
    max_actions: int = DEFAULT_MAX_ACTIONS,
    max_amount: int = DEFAULT_MAX_AMOUNT,
    *,
    max_plan_age: timedelta = DEFAULT_MAX_PLAN_AGE,
    orders_writer: OrdersWriterLike | None = None,
    progress: bool = True,
    hook: Hook | None = None,
    clock: Clock | None = None,
) -> ApplyReport:
    """Apply a fix plan (dry-run unless ``dry_run=False``). The only writer of fix-ups.

    Args:
        plan: a plan from :func:`~portone_recon.actions.plan_fixes` (recorded here when it is new) or a
            recorded one (loaded from its file: it must equal the store's record).
        client: a ``PortOneClient`` (a dry-run may pass None: then it only lists the requests).
        store: the store holding the findings, the plan records, the journal and the local orders.
        dry_run: read and show, send nothing, write nothing.
        max_actions: at most this many money-moving requests (schedule entries, retries) in this apply.
        max_amount: at most this much money charged or booked per currency (smallest unit, e.g. won).
        max_plan_age: plans made longer ago than this are refused.
        orders_writer: writes to the merchant's SQL orders table; default: built from ``source_loads``
            when the order's source is SQL.
        progress: show a tqdm progress bar.
        hook: test hook called as ``hook(point, action)`` at ``before_send`` (after 'sending' is
            committed), ``after_send`` (before the result is journaled) and ``after_journal``.
        clock: the wall clock (tests pass the sandbox's).

    Returns:
        An :class:`ApplyReport`; ``exit_code`` is 1 when actions remain pending/unknown/failed.

    Raises:
        PlanRefusedError: the plan is not the store's record, too old, or malformed (nothing was sent).
        CapExceededError: the plan exceeds a cap (nothing was sent).
        ApplyInProgressError: another apply holds this store's lock.
    """
    if not isinstance(plan, FixPlan):
        raise PlanRefusedError(f"apply takes a FixPlan, got {type(plan).__name__}")
    if max_actions < 0 or max_amount < 0:
        raise PlanRefusedError("max_actions and max_amount must be >= 0")
    ids = [a.action_id for a in plan.actions]
    if len(set(ids)) != len(ids):
        raise PlanRefusedError("the plan holds duplicate action_ids")
    now = clock or wall_clock
    started = time.monotonic()
    plan = _gate(plan, store, now(), dry_run, max_plan_age)
    actions = list(plan.actions)
    _check_caps(actions, journal.read_rows(store, ids), plan.plan_id, max_actions, max_amount)
    subs = Subscriptions.from_store(store)
    ctx = Context(
        client,
        store,
        orders_writer,
        now=now,
        subs=subs,
        allow_inferred=bool(plan.params.get("allow_inferred")),
        max_retries=int(plan.params.get("max_retries") or 3),
    )
    run = _Run(plan, ctx, derive_actions(store, plan, subs), holds_in_store(store, [plan.run_id], now()))
    if dry_run:
        return run.dry(started, progress)
    with journal.apply_lock(journal.lock_path_for(store)):
        return run.apply(started, progress, hook)


class _Run:
    """One apply of one recorded plan."""

    def __init__(
        self, plan: FixPlan, ctx: Context, derived: Mapping[str, Action | str], holds: Holds
    ) -> None:
        self.plan = plan
        self.ctx = ctx
        self.derived = derived
        self.holds = holds
        self.sent: dict[str, int] = {}
        self.requests_sent = 0

    def _outcome(self, a: Action, status: str, outcome: str, message: str) -> dict[str, Any]:
        """A row of the report, its request as this run's client sends it."""
        return _outcome(a, status, outcome, message, self.ctx.client)

    def _still_meant(self, a: Action) -> str | None:
        """Why the action is not to be sent any more (its finding or subscription changed, or a hold)."""
        if a.finding_id:
            got = self.derived.get(a.action_id)
            if isinstance(got, str) or got is None:
                return f"not sent: {got or 'no longer derived from its finding'}"
            diff = difference(a, got)
            if diff:
                return f"not sent: its finding now means something else ({diff}); re-plan"
        if a.moves_money:
            hold = self.holds.find(a.customer_uid, a.target.get("subscription_id"))
            if hold is not None and not (a.held_by and self.plan.params.get("include_held")):
                return hold.reason
        return None

    def _report(self, rows: list[dict[str, Any]], dry: bool, started: float) -> ApplyReport:
        frame = pd.DataFrame(rows, columns=list(OUTCOME_COLUMNS))
        return ApplyReport(
            frame, dry, time.monotonic() - started, dict(self.sent), self.requests_sent, self.plan.plan_id
        )

    def dry(self, started: float, progress: bool) -> ApplyReport:
        ctx = self.ctx
        rows = journal.read_rows(ctx.store, [a.action_id for a in self.plan.actions])
        out: list[dict[str, Any]] = []
        for a in tqdm(
            self.plan.actions, desc="dry-run", unit="action", disable=not progress or not self.plan.actions
        ):
            row = rows.get(a.action_id)
            if row is not None and row.done_for(self.plan.plan_id):
                out.append(self._outcome(a, row.status, "already", row.message or f"already {row.status}"))
                continue
            why = self._still_meant(a)
            if why:
                out.append(self._outcome(a, "would_skip", "would_skip", why))
                continue
            if ctx.client is None:
                out.append(self._outcome(a, "would_send", "would_send", "would send (PortOne not read)"))
                continue
            try:
                if row is not None and row.status in journal.UNRESOLVED:
                    res = resolve(a, row, ctx)
                    if isinstance(res, Final):
                        msg = f"would resolve: {res.status}: {res.message}"
                        out.append(self._outcome(a, "would_skip", "would_skip", msg))
                        continue
                check = precheck(a, ctx)
            except (APIError, Pending) as exc:
                out.append(
                    self._outcome(a, "would_send", "would_send", f"would send (could not read: {exc})")
                )
                continue
            if isinstance(check, Skip):
                out.append(self._outcome(a, "would_skip", "would_skip", check.reason))
            elif isinstance(check, Final):
                out.append(
                    self._outcome(a, "would_skip", "would_skip", f"would be {check.status}: {check.message}")
                )
            else:
                out.append(self._outcome(a, "would_send", "would_send", "would send"))
        return self._report(out, True, started)

    def _dependency(self, a: Action) -> tuple[str, str] | None:
        """``(status, why)`` when the action must wait for, or give up because of, the action it requires."""
        req = a.target.get("requires")
        if not req:
            return None
        dep = journal.read_rows(self.ctx.store, [str(req)]).get(str(req))
        if dep is not None and dep.status in ("succeeded", "skipped"):
            return None
        if dep is not None and dep.status == "failed":
            return "skipped", f"not needed: the action it follows ({req}) failed"
        return "planned", f"deferred: waiting for {req} ({dep.status if dep else 'not journaled'})"

    def apply(self, started: float, progress: bool, hook: Hook | None) -> ApplyReport:
        ctx = self.ctx
        rows = journal.ensure_planned(ctx.store, self.plan.actions, self.plan.plan_id)
        out: list[dict[str, Any]] = []
        for a in tqdm(
            self.plan.actions, desc="apply", unit="action", disable=not progress or not self.plan.actions
        ):
            out.append(self._one(a, rows[a.action_id], hook))
        return self._report(out, False, started)

    def _one(self, a: Action, row: journal.JournalRow, hook: Hook | None) -> dict[str, Any]:
        ctx = self.ctx
        store = ctx.store
        if row.status in journal.FINAL:
            return self._outcome(a, row.status, "already", row.message or f"already {row.status}")
        dep = self._dependency(a) if row.status == "planned" else None
        if dep is not None:
            status, why = dep
            if status == "skipped":
                _finish(store, a, Final("skipped", why), {})
            else:
                journal.update(store, a.action_id, "planned", message=why)
            return self._outcome(a, status, "skipped" if status == "skipped" else "deferred", why)
        try:
            if row.status in journal.UNRESOLVED:
                res = resolve(a, row, ctx)
                if isinstance(res, Final):
                    _finish(store, a, res, {"pre": row.result.get("pre"), "resolved": True})
                    self._count(a, res)
                    return self._outcome(a, res.status, "resolved", res.message)
                assert isinstance(res, NotApplied)
                journal.update(store, a.action_id, "planned", message="not applied (checked by reading)")
            stop = self._still_meant(a)
            if stop:
                _finish(store, a, Final("skipped", stop), {})
                return self._outcome(a, "skipped", "skipped", stop)
            check = precheck(a, ctx)
        except (APIError, Pending) as exc:
            msg = f"could not read the current state: {exc}"
            status = "unknown" if row.status == "sending" else row.status
            journal.update(store, a.action_id, status, message=msg)
            return self._outcome(a, status, "pending", msg)
        if isinstance(check, Skip):
            _finish(store, a, Final("skipped", check.reason, check.evidence), {})
            return self._outcome(a, "skipped", "skipped", check.reason)
        if isinstance(check, Final):
            _finish(store, a, check, {})
            return self._outcome(
                a, check.status, "resolved" if check.status == "succeeded" else "sent", check.message
            )
        return self._send(a, check, hook)

    def _count(self, a: Action, final: Final) -> None:
        if final.status == "succeeded" and a.moves_money:
            m = money_of(a.kind, a.target, build_request(a.kind, a.target))
            self.sent[m.currency] = self.sent.get(m.currency, 0) + m.amount

    def _send(self, a: Action, go: Go, hook: Hook | None) -> dict[str, Any]:
        ctx = self.ctx
        store = ctx.store
        extra = {
            "pre": dict(go.pre),
            "sent_at": ctx.now().isoformat(),
            "request": describe_request(a, ctx.client),
        }
        journal.update(store, a.action_id, "sending", message=None, result=extra, attempt=True)
        if hook is not None:
            hook("before_send", a)
        if a.moves_money:
            self.requests_sent += money_of(a.kind, a.target, build_request(a.kind, a.target)).entries
        try:
            final = send(a, go, ctx)
        except OutcomeUnknownError as exc:
            msg = f"outcome unknown (will be resolved by reading on the next apply): {exc}"
            journal.update(store, a.action_id, "unknown", message=msg)
            return self._outcome(a, "unknown", "sent", msg)
        except Pending as exc:
            journal.update(store, a.action_id, "planned", message=str(exc))
            return self._outcome(a, "planned", "pending", str(exc))
        except TransportError as exc:  # the client raises these only when the request never arrived
            msg = f"not sent: {exc}"
            journal.update(store, a.action_id, "planned", message=msg)
            return self._outcome(a, "planned", "pending", msg)
        except (RateLimitError, ServerError) as exc:
            msg = (
                f"PortOne answered HTTP {exc.http_status} ({exc.message}): retryable - the next apply "
                "reads first, then sends again only if nothing happened"
            )
            journal.update(store, a.action_id, "failed_retryable", message=msg)
            return self._outcome(a, "failed_retryable", "sent", msg)
        except PortOneHTTPError as exc:
            final = Final(
                "failed", f"PortOne answered HTTP {exc.http_status}: {exc.message} (code {exc.code})"
            )
        if hook is not None:
            hook("after_send", a)
        _finish(store, a, final, extra)
        if hook is not None:
            hook("after_journal", a)
        self._count(a, final)
        return self._outcome(a, final.status, "sent", final.message)


def _finish(store: Store, action: Action, final: Final, extra: Mapping[str, Any]) -> None:
    """Commit the final journal status, with the local order changes in the same transaction."""
    result = {**extra, "outcome": dict(final.result)}
    with store.transaction() as con:
        if final.new_order is not None:
            o = final.new_order
            cols = {str(r[0]) for r in con.execute("DESCRIBE orders").fetchall()}
            names = (
                "merchant_uid, customer_uid, amount, currency, status, status_raw, refunded_amount, source, "
                "loaded_at"
            )
            values = "$mu, $cu, $amount, $currency, 'pending', 'pending', 0, $source, now()"
            params: dict[str, Any] = {
                "mu": o.merchant_uid,
                "cu": o.customer_uid,
                "amount": o.amount,
                "currency": o.currency,
                "source": o.source,
            }
            if "subscription_id" in cols:
                names += ", subscription_id"
                values += ", $sid"
                params["sid"] = o.subscription_id
            con.execute(
                f"INSERT INTO orders ({names}) SELECT {values} "
                "WHERE NOT EXISTS (SELECT 1 FROM orders WHERE merchant_uid = $mu)",
                params,
            )
            result["store_order_created"] = o.merchant_uid
        if final.order is not None:
            u = final.order
            row = con.execute(
                "UPDATE orders SET status = 'paid', status_raw = 'paid', imp_uid = $imp, "
                "paid_at = coalesce($paid_at, paid_at) "
                "WHERE merchant_uid = $mu AND status IN ('pending', 'failed') AND amount = $amount",
                {"imp": u.imp_uid, "paid_at": u.paid_at, "mu": u.merchant_uid, "amount": u.amount},
            ).fetchone()
            result["store_orders_changed"] = int(row[0]) if row else 0
        journal.update(store, action.action_id, final.status, message=final.message, result=result, con=con)
