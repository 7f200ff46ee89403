"""One-action helpers for notebooks and the CLI: ``reverify`` and ``rebook``."""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from portone_recon._time import KST, ensure_aware
from portone_recon.actions.apply import ApplyReport, ClientLike, OrdersWriterLike, apply
from portone_recon.actions.plan import Action, FixPlan, make_action_id, plan_fixes, reverify_request
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
    action = Action(
        make_action_id("reverify", merchant_uid or "", imp_uid or ""),
        "reverify",
        {"customer_uid": None, "merchant_uid": merchant_uid, "imp_uid": imp_uid},
        reverify_request(merchant_uid, imp_uid, amount),
        amount,
        reason="manual reverify",
    )
    plan = FixPlan((action,))
    return apply(plan, client, store, dry_run=dry_run, orders_writer=orders_writer, progress=progress)


def plan_rebook(
    store: Store,
    customer_uid: str,
    *,
    as_of: datetime | None = None,
    amount: int | None = None,
    anchor_day: int | None = None,
    subscriptions: pd.DataFrame | None = None,
    prefix: str = "rebook",
    schedule_hour: int = 10,
    name: str = "정기결제",
    notice_url: str | None = None,
) -> FixPlan:
    """The one-action plan that books ``customer_uid``'s next period.

    Amount and anchor day come from the arguments, else ``subscriptions``, else the store's
    subscriptions table, else the customer's latest schedule in the store (its amount and KST day).
    """
    as_of = ensure_aware(as_of) if as_of else datetime.now(tz=KST)
    if amount is None or anchor_day is None:
        subs = subscriptions
        if subs is None and store.path.exists():
            subs = store.query(
                "SELECT customer_uid, status, amount, anchor_day FROM subscriptions WHERE customer_uid = ?",
                [customer_uid],
            )
        row = subs[subs["customer_uid"] == customer_uid] if subs is not None and len(subs) else None
        if row is not None and len(row):
            if str(row.iloc[0].get("status")) == "cancelled":
                raise ActionError(f"subscription {customer_uid} is cancelled locally: nothing to rebook")
            amount = amount if amount is not None else int(row.iloc[0]["amount"])
            anchor_day = anchor_day if anchor_day is not None else int(row.iloc[0]["anchor_day"])
        elif store.path.exists():
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
            f"{customer_uid}: amount and anchor day unknown (no subscription or schedule in {store.path}); "
            "pass amount= and anchor_day="
        )
    finding = pd.DataFrame(
        [
            {
                "kind": "missing_next_schedule",
                "customer_uid": customer_uid,
                "finding_id": None,
                "local_amount": amount,
                "anchor_day": anchor_day,
            }
        ]
    )
    plan = plan_fixes(
        finding, as_of=as_of, prefix=prefix, schedule_hour=schedule_hour, name=name, notice_url=notice_url
    )
    if not plan.actions:
        why = plan.unplanned[0]["reason"] if plan.unplanned else "nothing to do"
        raise ActionError(f"{customer_uid}: cannot plan a rebook: {why}")
    return plan


def rebook(
    client: ClientLike | None,
    store: Store,
    customer_uid: str,
    *,
    dry_run: bool = True,
    as_of: datetime | None = None,
    amount: int | None = None,
    anchor_day: int | None = None,
    subscriptions: pd.DataFrame | None = None,
    prefix: str = "rebook",
    schedule_hour: int = 10,
    notice_url: str | None = None,
    progress: bool = False,
) -> ApplyReport:
    """Book ``customer_uid``'s next period (refused when a scheduled one covers it). Dry-run by default."""
    plan = plan_rebook(
        store,
        customer_uid,
        as_of=as_of,
        amount=amount,
        anchor_day=anchor_day,
        subscriptions=subscriptions,
        prefix=prefix,
        schedule_hour=schedule_hour,
        notice_url=notice_url,
    )
    return apply(plan, client, store, dry_run=dry_run, progress=progress)
