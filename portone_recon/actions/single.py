"""One-action helpers for notebooks and the CLI: ``reverify`` and ``rebook`` of one customer.

They make a one-off plan (``origin: manual``) and apply it through the same gate, re-checks, caps and
journal as any plan.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd

from portone_recon._time import KST, ensure_aware
from portone_recon.actions.apply import (
    DEFAULT_MAX_AMOUNT,
    DEFAULT_MAX_PLAN_AGE,
    ApplyReport,
    ClientLike,
    Clock,
    OrdersWriterLike,
    apply,
)
from portone_recon.actions.model import Action, FixPlan, make_action_id, single_action_plan
from portone_recon.actions.plan import Planner, PlanSettings
from portone_recon.actions.requests import reverify_request
from portone_recon.actions.subscriptions import Subscription, Subscriptions
from portone_recon.errors import ActionError
from portone_recon.store import Store


def reverify(
    client: ClientLike | None,
    store: Store,
    imp_uid: str | None = None,
    *,
    merchant_uid: str | None = None,
    dry_run: bool = True,
    orders_writer: OrdersWriterLike | None = None,
    progress: bool = False,
    clock: Clock | None = None,
) -> ApplyReport:
    """Re-verify one payment as the webhook handler would, and (``dry_run=False``) mark its order paid.

    Args:
        imp_uid / merchant_uid: the payment (GET /payments/{imp_uid}) or the order (all its attempts).
        dry_run: only show what would happen (the default).
    """
    if not imp_uid and not merchant_uid:
        raise ActionError("reverify needs an imp_uid or a merchant_uid")
    amount = 0
    if merchant_uid and store.path.exists():
        with store.connect() as con:
            row = con.execute("SELECT amount FROM orders WHERE merchant_uid = ?", [merchant_uid]).fetchone()
        amount = int(row[0]) if row else 0
    target = {
        "customer_uid": None,
        "merchant_uid": merchant_uid,
        "imp_uid": imp_uid,
        "expected_amount": amount,
    }
    action = Action(
        make_action_id("reverify", merchant_uid or "", imp_uid or ""),
        "reverify",
        target,
        reverify_request(merchant_uid, imp_uid, amount),
        0,
        reason="manual reverify",
    )
    plan = single_action_plan([action])
    return apply(
        plan, client, store, dry_run=dry_run, orders_writer=orders_writer, progress=progress, clock=clock
    )


def _explicit_subscription(
    store: Store,
    customer_uid: str,
    amount: int | None,
    anchor_day: int | None,
    interval_months: int,
    allow_inferred: bool,
) -> Subscription:
    """The subscription of a customer with no loaded subscription: from the arguments, else (with
    ``allow_inferred``) from the customer's latest schedule in the store."""
    if (amount is None or anchor_day is None) and allow_inferred and store.path.exists():
        last = store.query(
            "SELECT amount, schedule_at FROM schedules WHERE customer_uid = ? "
            "ORDER BY schedule_at DESC LIMIT 1",
            [customer_uid],
        )
        if len(last):
            amount = amount if amount is not None else int(last.iloc[0]["amount"])
            at = pd.Timestamp(last.iloc[0]["schedule_at"]).tz_convert(KST)
            anchor_day = anchor_day if anchor_day is not None else int(at.day)
    if amount is None or anchor_day is None:
        raise ActionError(
            f"{customer_uid}: no loaded subscription; give amount= and anchor_day= (or allow_inferred=True "
            "to take them from the customer's latest schedule)"
        )
    return Subscription(customer_uid, customer_uid, "active", amount, "KRW", interval_months, anchor_day)


def plan_rebook(
    store: Store,
    customer_uid: str,
    *,
    subscription_id: str | None = None,
    as_of: datetime | None = None,
    amount: int | None = None,
    anchor_day: int | None = None,
    interval_months: int = 1,
    subscriptions: pd.DataFrame | None = None,
    allow_inferred: bool = False,
    prefix: str = "rebook",
    schedule_hour: int = 10,
    name: str = "정기결제",
    notice_url: str | None = None,
) -> FixPlan:
    """The one-action plan that books the next period of one subscription of ``customer_uid``.

    With loaded subscriptions the subscription's own amount, interval and anchor are used (``amount`` or
    ``anchor_day`` that differ from them are refused); without, ``amount`` and ``anchor_day`` must be
    given (or ``allow_inferred``).
    """
    if amount is not None and amount <= 0:
        raise ActionError(f"amount must be a positive whole number, got {amount}")
    if anchor_day is not None and not 1 <= anchor_day <= 31:
        raise ActionError(f"anchor_day must be 1..31, got {anchor_day}")
    if interval_months < 1:
        raise ActionError(f"interval_months must be >= 1, got {interval_months}")
    as_of = ensure_aware(as_of) if as_of else datetime.now(tz=KST)
    subs = (
        Subscriptions.from_frame(subscriptions)
        if subscriptions is not None
        else Subscriptions.from_store(store)
    )
    explicit = amount is not None or anchor_day is not None
    if subs.loaded:
        sub, why = subs.find(subscription_id, customer_uid)
        if sub is None:
            raise ActionError(f"{customer_uid}: cannot plan a rebook: {why}")
        for what, given, own in (("amount", amount, sub.amount), ("anchor_day", anchor_day, sub.anchor_day)):
            if given is not None and given != own:
                raise ActionError(
                    f"{customer_uid}: {what} {given} differs from subscription {sub.subscription_id}'s "
                    f"{own}; change the subscription, not the booking"
                )
    else:
        sub = _explicit_subscription(store, customer_uid, amount, anchor_day, interval_months, allow_inferred)
        subs = Subscriptions({sub.subscription_id: sub}, {customer_uid: (sub,)}, True)
    settings = PlanSettings(prefix, schedule_hour, name, notice_url, allow_inferred or explicit)
    finding = {
        "kind": "missing_next_schedule",
        "customer_uid": customer_uid,
        "subscription_id": sub.subscription_id,
    }
    made, why = Planner(as_of, subs, settings).for_finding(finding)
    if not made:
        raise ActionError(f"{customer_uid}: cannot plan a rebook: {why}")
    return single_action_plan(made, as_of, **settings.to_params())


def rebook(
    client: ClientLike | None,
    store: Store,
    customer_uid: str,
    *,
    subscription_id: str | None = None,
    dry_run: bool = True,
    as_of: datetime | None = None,
    amount: int | None = None,
    anchor_day: int | None = None,
    interval_months: int = 1,
    subscriptions: pd.DataFrame | None = None,
    allow_inferred: bool = False,
    prefix: str = "rebook",
    schedule_hour: int = 10,
    name: str = "정기결제",
    notice_url: str | None = None,
    max_amount: int = DEFAULT_MAX_AMOUNT,
    max_plan_age: timedelta = DEFAULT_MAX_PLAN_AGE,
    progress: bool = False,
    clock: Clock | None = None,
) -> ApplyReport:
    """Book one subscription's next period (refused when anything covers it). Dry-run by default."""
    plan = plan_rebook(
        store,
        customer_uid,
        subscription_id=subscription_id,
        as_of=as_of,
        amount=amount,
        anchor_day=anchor_day,
        interval_months=interval_months,
        subscriptions=subscriptions,
        allow_inferred=allow_inferred,
        prefix=prefix,
        schedule_hour=schedule_hour,
        name=name,
        notice_url=notice_url,
    )
    return apply(
        plan,
        client,
        store,
        dry_run=dry_run,
        max_amount=max_amount,
        max_plan_age=max_plan_age,
        progress=progress,
        clock=clock,
    )
