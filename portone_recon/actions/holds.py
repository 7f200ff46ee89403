"""Manual-review holds: nothing automatic moves money for a customer whose money a finding hands to a person.

A finding whose suggested action is a person's review (``phantom_paid``: the order says paid while no
PortOne charge reached paid, perhaps a bank transfer; ``amount_mismatch``: possible forgery;
``duplicate_charge``: refund review; ``charged_after_cancel``; ``unknown_payment``; and any kind whose
``suggested_action`` is ``manual_review`` or ``refund_review``) holds every money-moving action (retry,
rebook) of the same customer's same subscription while it is open and no person has acknowledged or
explained it. A hold that names no subscription holds all of the customer's subscriptions. Unschedules of
orphan or duplicate schedules reduce risk and are never held.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd

from portone_recon.actions.model import as_str, clean
from portone_recon.reconcile.triage import active_triage
from portone_recon.store import Store

#: Kinds that always need a person (their suggested action is a review).
HOLD_KINDS = frozenset(
    {"phantom_paid", "amount_mismatch", "duplicate_charge", "charged_after_cancel", "unknown_payment"}
)
#: Suggested actions that mean "a person must look": any future kind with one of these holds too.
HOLD_SUGGESTIONS = frozenset({"manual_review", "refund_review"})


def is_hold(kind: str | None, suggested_action: str | None) -> bool:
    """Whether a finding of this kind / suggested action holds its customer's money-moving actions."""
    return (kind or "") in HOLD_KINDS or (suggested_action or "") in HOLD_SUGGESTIONS


@dataclass(frozen=True)
class Hold:
    """An open manual-review finding that holds a customer's (subscription's) money-moving actions."""

    finding_id: str
    kind: str
    customer_uid: str
    subscription_id: str | None
    key: str | None

    def covers(self, customer_uid: str | None, subscription_id: str | None) -> bool:
        if customer_uid != self.customer_uid:
            return False
        return (
            self.subscription_id is None or subscription_id is None or self.subscription_id == subscription_id
        )

    @property
    def reason(self) -> str:
        key = f" {self.key}" if self.key else ""
        return f"on hold: {self.kind}{key} needs review (finding {self.finding_id})"


@dataclass(frozen=True)
class Holds:
    """The holds in force, by customer."""

    by_customer: Mapping[str, tuple[Hold, ...]]

    def find(self, customer_uid: str | None, subscription_id: str | None) -> Hold | None:
        for h in self.by_customer.get(customer_uid or "", ()):
            if h.covers(customer_uid, subscription_id):
                return h
        return None

    def __len__(self) -> int:
        return sum(len(v) for v in self.by_customer.values())

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, Any]], triaged: Iterable[str] = ()) -> Holds:
        """Holds from finding rows; a finding whose ``triage_state`` is set, or whose id is in ``triaged``,
        has been seen by a person and holds nothing."""
        seen = set(triaged)
        out: dict[str, list[Hold]] = {}
        for r in rows:
            if not is_hold(as_str(r.get("kind")), as_str(r.get("suggested_action"))):
                continue
            fid = as_str(r.get("finding_id")) or ""
            if as_str(r.get("triage_state")) or fid in seen:
                continue
            cu = as_str(r.get("customer_uid"))
            if cu is None:
                continue
            key = (
                as_str(r.get("merchant_uid"))
                or as_str(r.get("imp_uid"))
                or as_str(r.get("schedule_merchant_uid"))
            )
            hold = Hold(fid, str(clean(r.get("kind"))), cu, as_str(r.get("subscription_id")), key)
            if hold not in out.setdefault(cu, []):
                out[cu].append(hold)
        return cls({k: tuple(v) for k, v in out.items()})

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, triaged: Iterable[str] = ()) -> Holds:
        if frame is None or len(frame) == 0:
            return cls({})
        return cls.from_rows(({str(k): v for k, v in r.items()} for r in frame.to_dict("records")), triaged)


def triaged_findings(store: Store, at: datetime | None = None) -> set[str]:
    """Ids of the findings a person acknowledged or explained, in effect at ``at`` (default now)."""
    return set(active_triage(store, at=at))


def holds_in_store(store: Store, run_ids: Iterable[str | None], at: datetime | None = None) -> Holds:
    """The holds of these stored runs' findings and of the latest run, less what a person triaged."""
    with store.connect() as con:
        latest = con.execute("SELECT run_id FROM recon_runs ORDER BY started_at DESC LIMIT 1").fetchone()
        runs = sorted({r for r in [*run_ids, latest[0] if latest else None] if r})
        frame = con.execute("SELECT * FROM findings WHERE list_contains($runs, run_id)", {"runs": runs}).df()
    return Holds.from_frame(frame, triaged_findings(store, at))
