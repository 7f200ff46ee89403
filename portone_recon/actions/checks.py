"""The fresh re-check right before each action is sent: its own reason, measured again.

Every re-check measures the action's own reason again with fresh data and the wall clock, never the
plan's ``as_of`` or a narrower condition:

- **rebook**: ``schedule_at`` still ahead; the subscription (today's store) still chargeable, at the
  booked amount, interval and anchor; the billing key present (a single-key GET); no ``scheduled`` entry
  anywhere in the period (any day, any merchant_uid) and no paid charge in the period by any route
  (scheduled, ``again``, console) - an entry or charge known to belong to another subscription of the same
  card does not count.
- **retry**: the period not over by the wall clock; the subscription chargeable at the same amount; the
  schedule still failed, at the amount the plan will charge; no attempt on it and no charge in the period
  reached paid; fewer than ``max_retries`` retries sent.
- **unschedule**: the schedule still ``scheduled`` and the customer's; a duplicate only while the schedule
  to keep is still scheduled; an orphan only while its subscription is still cancelled or the billing
  key's deletion is confirmed by a single-key GET (a 404 for one id of a multi-id lookup proves nothing).
- **reverify**: PortOne says paid with the order's amount and currency, and the order is still unpaid.

What is no longer needed or no longer certain is skipped with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from portone_recon._time import KST
from portone_recon.actions import journal
from portone_recon.actions.executor import (
    Context,
    Final,
    Go,
    Skip,
    fmt_money,
    pay_evidence,
    period_of_target,
    reached_paid,
    rebook_found,
    sched_evidence,
)
from portone_recon.actions.model import Action, as_int, as_str
from portone_recon.api.models import Schedule
from portone_recon.errors import BusinessError, NotFoundError, PortOneReconError

# -- the subscription behind a money-moving action ---------------------------------------------


def _subscription_check(a: Action, ctx: Context, at: datetime) -> Skip | None:
    t = a.target
    sid = as_str(t.get("subscription_id"))
    cu = as_str(t.get("customer_uid"))
    if not ctx.subs.loaded:
        if ctx.allow_inferred:
            return None
        return Skip("needs subscriptions: none are loaded in the store (plan with --allow-inferred to allow)")
    sub, why = ctx.subs.find(sid, cu)
    if sub is None:
        return Skip(why)
    refused = sub.refuse_charge(at)
    if refused:
        return Skip(refused)
    if sub.amount != as_int(t.get("amount")) or sub.currency != str(t.get("currency") or "KRW"):
        return Skip(
            f"subscription {sub.subscription_id} now costs {fmt_money(sub.amount, sub.currency)}, the plan "
            f"{fmt_money(t.get('amount'), as_str(t.get('currency')))}: re-plan"
        )
    if sub.interval_months != as_int(t.get("interval_months")) or sub.anchor_day != as_int(
        t.get("anchor_day")
    ):
        return Skip(
            f"subscription {sub.subscription_id}'s interval or anchor day changed since the plan: re-plan"
        )
    return None


def _period_paid(a: Action, ctx: Context) -> Skip | None:
    """A charge that reached paid in the action's period, by any route, of this subscription's money."""
    t = a.target
    lo, hi = period_of_target(t)
    amount = as_int(t.get("amount"))
    sid = as_str(t.get("subscription_id"))
    for p in ctx.key_payments(str(t["customer_uid"])):
        if not reached_paid(p) or p.paid_at is None or not lo <= p.paid_at < hi:
            continue
        if p.amount != amount and p.merchant_uid != t.get("merchant_uid"):
            continue
        if ctx.belongs_elsewhere(p.merchant_uid, sid):
            continue
        return Skip(
            f"period {lo:%Y-%m-%d}..{hi:%Y-%m-%d} already paid by {p.imp_uid} ({p.merchant_uid})",
            pay_evidence(p),
        )
    return None


# -- re-checks ---------------------------------------------------------------------------------


def precheck(action: Action, ctx: Context) -> Skip | Go | Final:
    if action.kind == "reverify":
        return _precheck_reverify(action, ctx)
    if action.kind == "unschedule":
        return _precheck_unschedule(action, ctx)
    if action.kind == "rebook":
        return _precheck_rebook(action, ctx)
    if action.kind == "retry":
        return _precheck_retry(action, ctx)
    raise PortOneReconError(f"unknown action kind {action.kind!r}")  # pragma: no cover


def _precheck_reverify(action: Action, ctx: Context) -> Skip | Go | Final:
    t = action.target
    imp = t.get("imp_uid")
    mu = t.get("merchant_uid")
    if imp:
        try:
            pay = ctx.api.fetch_payment(str(imp))
        except NotFoundError:
            return Skip(f"payment {imp} not found at PortOne")
        if mu and pay.merchant_uid != mu:
            return Final(
                "failed", f"payment {imp} belongs to order {pay.merchant_uid}, not {mu}", pay_evidence(pay)
            )
    else:
        attempts = ctx.attempts(str(mu))
        paid = [p for p in attempts if p.status == "paid"]
        if not attempts:
            return Skip(f"no payment for order {mu} at PortOne")
        pay = paid[-1] if paid else attempts[-1]
    mu = pay.merchant_uid
    evidence = pay_evidence(pay)
    if pay.status != "paid":
        return Skip(f"PortOne status is {pay.status!r}, not 'paid'", evidence)
    order = ctx.local_order(mu)
    if order is None:
        return Skip(f"no local order {mu}", evidence)
    evidence["order"] = {k: order[k] for k in ("amount", "currency", "status")}
    if order["status"] == "paid":
        return Skip("order is already paid locally", evidence)
    if order["status"] not in ("pending", "failed"):
        return Skip(f"order is {order['status']} locally: not revived", evidence)
    if pay.amount != order["amount"] or pay.currency != (order["currency"] or "KRW"):
        return Final(
            "failed",
            f"amount mismatch: PortOne {fmt_money(pay.amount, pay.currency)}, "
            f"order {fmt_money(order['amount'], order['currency'])} - not marked paid (manual review)",
            evidence,
        )
    return Go({"payment": evidence, "order_source": order["source"]})


def _precheck_unschedule(action: Action, ctx: Context) -> Skip | Go | Final:
    t = action.target
    smu = str(t["schedule_merchant_uid"])
    s = ctx.schedule_or_none(smu)
    if s is None:
        return Skip("no such schedule at PortOne")
    ev = sched_evidence(s)
    if s.schedule_status != "scheduled":
        return Skip(f"schedule is already {s.schedule_status}", ev)
    if t.get("customer_uid") and s.customer_uid != t.get("customer_uid"):
        return Skip(f"schedule {smu} belongs to {s.customer_uid}, not {t.get('customer_uid')}", ev)
    because = str(t.get("because") or "")
    if because == "duplicate_schedule":
        keep_mu = str(t.get("keep_merchant_uid") or "")
        keep = ctx.schedule_or_none(keep_mu) if keep_mu else None
        if keep is None or keep.schedule_status != "scheduled" or keep.customer_uid != s.customer_uid:
            state = "missing" if keep is None else f"{keep.schedule_status}, customer {keep.customer_uid}"
            return Skip(f"the schedule to keep ({keep_mu or '?'}) is not scheduled any more ({state})", ev)
        return Go({"schedule": ev, "keep": sched_evidence(keep)})
    if because == "orphan_schedule":
        return _orphan_confirmed(t, s, ctx)
    if because == "schedule_amount_mismatch":
        sub, why = ctx.subs.find(as_str(t.get("subscription_id")), as_str(t.get("customer_uid")))
        if sub is None:
            return Skip(f"subscription unknown, the amount cannot be judged: {why}", ev)
        if s.amount == sub.amount:
            return Skip(f"schedule amount {fmt_money(s.amount)} equals the subscription's now", ev)
        return Go({"schedule": ev})
    return Skip(f"an unschedule must name why (duplicate, orphan or amount mismatch), got {because!r}", ev)


def _orphan_confirmed(t: Mapping[str, Any], s: Schedule, ctx: Context) -> Skip | Go:
    ev = sched_evidence(s)
    cu = str(t.get("customer_uid") or s.customer_uid)
    if ctx.subs.loaded:
        sub, _ = ctx.subs.find(as_str(t.get("subscription_id")), cu)
        if sub is not None and sub.status == "cancelled":
            return Go({"schedule": ev, "confirmed": f"subscription {sub.subscription_id} is cancelled"})
        if sub is not None and s.schedule_at is not None and sub.refuse_charge(s.schedule_at) is not None:
            return Go({"schedule": ev, "confirmed": sub.refuse_charge(s.schedule_at)})
    try:
        ctx.api.fetch_billing_key(cu)
    except NotFoundError:
        return Go({"schedule": ev, "confirmed": f"billing key {cu} not found by a single-key GET"})
    return Skip(
        f"not an orphan by fresh data: billing key {cu} exists and the subscription is not cancelled", ev
    )


def _precheck_rebook(action: Action, ctx: Context) -> Skip | Go | Final:
    t = action.target
    cu = str(t["customer_uid"])
    mu = str(t["merchant_uid"])
    at = datetime.fromisoformat(str(t["schedule_at"]))
    found = ctx.schedule_or_none(mu)
    if found is not None:
        return rebook_found(action, found)
    now = ctx.now()
    if at <= now:
        return Skip(f"its renewal time {at.astimezone(KST):%Y-%m-%d %H:%M} KST has passed: re-plan")
    refused = _subscription_check(action, ctx, at)
    if refused:
        return refused
    try:
        ctx.api.fetch_billing_key(cu)
    except (NotFoundError, BusinessError) as exc:
        return Skip(f"billing key {cu} not found at PortOne: {exc.detail}")
    lo, hi = period_of_target(t)
    sid = as_str(t.get("subscription_id"))
    for s in ctx.api.iter_customer_schedules(cu, lo, hi):
        if s.schedule_status == "scheduled" or (
            s.schedule_status == "executed" and s.payment_status == "paid"
        ):
            if ctx.belongs_elsewhere(s.merchant_uid, sid):
                continue
            if s.schedule_status == "scheduled" and s.merchant_uid == t.get("replaces"):
                # the wrong-amount schedule this booking replaces: its unschedule runs first (the rebook
                # requires it), so only a dry run still sees it
                continue
            what = "covered by scheduled" if s.schedule_status == "scheduled" else "already paid by"
            return Skip(f"period {lo:%Y-%m-%d}.. {what} {s.merchant_uid}", sched_evidence(s))
    paid = _period_paid(action, ctx)
    if paid:
        return paid
    return Go({"covered": False})


def _precheck_retry(action: Action, ctx: Context) -> Skip | Go | Final:
    t = action.target
    smu = str(t["schedule_merchant_uid"])
    hi = period_of_target(t)[1]
    now = ctx.now()
    if hi <= now:
        return Skip(
            f"its billing period ended on {hi:%Y-%m-%d} (now {now.astimezone(KST):%Y-%m-%d}): no late retry"
        )
    refused = _subscription_check(action, ctx, now)
    if refused:
        return refused
    s = ctx.schedule_or_none(smu)
    if s is None:
        return Skip("no such schedule at PortOne")
    ev = sched_evidence(s)
    if s.schedule_status == "scheduled":
        return Skip("schedule has not run yet (still scheduled)", ev)
    if s.payment_status == "paid":
        return Skip("schedule is already paid", ev)
    if s.customer_uid != t.get("customer_uid"):
        return Skip(f"schedule {smu} belongs to {s.customer_uid}, not {t.get('customer_uid')}", ev)
    if s.amount != as_int(t.get("amount")):
        return Skip(
            f"the schedule would charge {fmt_money(s.amount)}, the plan says {fmt_money(t.get('amount'))}", ev
        )
    sent = journal.retries_sent(ctx.store, smu, exclude=action.action_id)
    if sent >= ctx.max_retries:
        return Skip(f"retried {sent} times already (max_retries={ctx.max_retries})", ev)
    attempts = ctx.attempts(smu)
    for p in attempts:
        if reached_paid(p):
            return Skip(f"order {smu} already paid by {p.imp_uid}", pay_evidence(p))
    paid = _period_paid(action, ctx)
    if paid:
        return paid
    return Go({"attempts": [p.imp_uid for p in attempts], "schedule": ev})
