"""Finding kinds, severities and suggested actions (design.md §5)."""

from __future__ import annotations

from typing import Literal

Severity = Literal["low", "medium", "high", "critical"]

#: Every finding kind, in the order reports list them.
FINDING_KINDS: tuple[str, ...] = (
    "missed_webhook",
    "amount_mismatch",
    "phantom_paid",
    "charged_after_cancel",
    "refund_not_reflected",
    "unknown_payment",
    "unpaid_renewal",
    "missing_next_schedule",
    "chain_not_started",
    "duplicate_schedule",
    "orphan_schedule",
    "duplicate_charge",
    "schedule_amount_mismatch",
)

#: Severities from least to most severe.
SEVERITIES: tuple[Severity, ...] = ("low", "medium", "high", "critical")

SEVERITY_RANK: dict[str, int] = {s: i for i, s in enumerate(SEVERITIES)}

#: The severity of each kind.
KIND_SEVERITY: dict[str, Severity] = {
    "missed_webhook": "high",
    "amount_mismatch": "critical",
    "phantom_paid": "critical",
    "charged_after_cancel": "critical",
    "refund_not_reflected": "medium",
    "unknown_payment": "medium",
    "unpaid_renewal": "high",
    "missing_next_schedule": "high",
    "chain_not_started": "high",
    "duplicate_schedule": "high",
    "orphan_schedule": "high",
    "duplicate_charge": "critical",
    "schedule_amount_mismatch": "medium",
}

#: Values of ``suggested_action`` and what they mean (the actions module maps them to fix-ups).
SUGGESTED_ACTIONS: dict[str, str] = {
    "reverify": "re-fetch the payment, check status and amount, mark the local order paid",
    "manual_review": "a person must look (possible forgery, phantom or unknown payment)",
    "mark_refunded": "record PortOne's refund on the local order",
    "retry": "retry the failed schedule (after checking nothing was paid for the period)",
    "rebook": "book the next period's schedule",
    "unschedule": "revoke the schedule",
    "unschedule_rebook": "revoke the schedule and book one at the subscription's amount",
    "refund_review": "review the extra charge for a refund",
}

#: When one root cause (one merchant_uid) matches several of these kinds, only the first in this order is
#: reported; the others are noted in its ``also_kind`` (a full refund of a pending order is one
#: refund_not_reflected, a partial one one missed_webhook; a payment without an order is one unknown_payment
#: even when it also looks like a second charge).
PRECEDENCE: tuple[str, ...] = (
    "amount_mismatch",
    "charged_after_cancel",
    "phantom_paid",
    "missed_webhook",
    "refund_not_reflected",
    "unknown_payment",
    "duplicate_charge",
)

#: Kinds that name a billing period (``period_start`` / ``period_end`` in the findings).
PERIOD_KINDS: tuple[str, ...] = (
    "unpaid_renewal",
    "missing_next_schedule",
    "chain_not_started",
    "duplicate_schedule",
    "duplicate_charge",
    "schedule_amount_mismatch",
)

#: What ``amount_at_risk`` means for each kind (in the finding's ``currency``).
AMOUNT_AT_RISK: dict[str, str] = {
    "missed_webhook": "the net amount PortOne holds (charged - refunded)",
    "amount_mismatch": "the amount PortOne charged",
    "phantom_paid": "the local order's amount",
    "charged_after_cancel": "the net amount PortOne kept (charged - refunded)",
    "refund_not_reflected": "PortOne's refunded total minus the locally recorded refund (0 when the local "
    "order never counted the money: pending, failed, cancelled)",
    "unknown_payment": "the payment's net amount (amount - cancel_amount)",
    "unpaid_renewal": "the subscription's amount (else the schedule's)",
    "missing_next_schedule": "the subscription's amount (one period)",
    "chain_not_started": "the subscription's amount (one period)",
    "duplicate_schedule": "the extra schedule's amount",
    "orphan_schedule": "the schedule's amount",
    "duplicate_charge": "the extra charge's net amount",
    "schedule_amount_mismatch": "|schedule amount - subscription amount|",
}


def severity_rank(severity: str) -> int:
    """0 for low ... 3 for critical.

    Raises:
        ValueError: unknown severity.
    """
    try:
        return SEVERITY_RANK[severity]
    except KeyError:
        raise ValueError(f"unknown severity {severity!r}; use one of {', '.join(SEVERITIES)}") from None
