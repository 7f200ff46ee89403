"""Planning fix-ups from reconciliation findings: pure, no store and no API access.

``plan_fixes(result)`` turns the findings of a :class:`~portone_recon.reconcile.ReconResult` (or a stored
run, or a findings DataFrame) into a :class:`~portone_recon.actions.model.FixPlan`.

Finding kind -> action:

=============================  ============================================================================
``missed_webhook``             ``reverify``: re-fetch the payment, check paid + amount + currency, mark paid
``missing_next_schedule``,     ``rebook`` the period the finding names (the one after the last paid
``chain_not_started``          renewal), at the subscription's anchor day and interval, if its renewal date
                               is still ahead; if it has passed, a person decides (charge now or skip it)
``unpaid_renewal``             ``retry`` of the failed schedule while its billing period lasts, then
                               ``rebook`` of the next period once the retry succeeded; a stuck
                               ``scheduled`` one, or one whose period is over, is left to a person
``duplicate_schedule``         ``unschedule`` the extra schedule (the one to keep is named and re-checked)
``orphan_schedule``            ``unschedule`` (not when the subscription is active and only the billing key
                               is gone: that needs a new card first)
``schedule_amount_mismatch``   ``unschedule`` the wrong-amount schedule, then ``rebook`` that period
everything else               not planned (listed in :attr:`FixPlan.unplanned` with the reason)
=============================  ============================================================================

Money guards of the planner (apply checks each again with fresh data):

- every date and amount follows the subscription's own interval, anchor day, amount and currency;
- no ``rebook`` or ``retry`` when subscriptions are inferred (none loaded) unless ``allow_inferred``, and
  never for a subscription that is not active or whose cancellation takes effect by then;
- no ``rebook`` or ``retry`` for a customer's subscription while a manual-review finding of it is open and
  not acknowledged (:mod:`portone_recon.actions.holds`) unless ``include_held``, which marks the action;
- a retry is attempted at most ``max_retries`` times per failed schedule, once per day (the action id
  carries the day of ``as_of``).

The rebooked ``merchant_uid`` is ``<prefix>-<subscription_id>-<YYYYMM>`` (at most 40 characters of
``[A-Za-z0-9_-]``; a long or odd id is shortened and suffixed with a hash), unique per subscription and
period; the prefix differs from the merchant's own renewal prefix, so a replacement never collides with
the schedule it replaces.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, time
from typing import Any

import pandas as pd

from portone_recon._time import KST, ensure_aware
from portone_recon.actions.holds import Holds
from portone_recon.actions.model import (
    ACTION_KINDS,
    MONEY_KINDS,
    ORDER,
    Action,
    FixPlan,
    as_int,
    as_str,
    clean,
    make_action_id,
)
from portone_recon.actions.requests import build_request
from portone_recon.actions.subscriptions import Subscription, Subscriptions
from portone_recon.errors import ActionError

__all__ = [
    "ACTION_KINDS",
    "FIXABLE_KINDS",
    "MANUAL_KINDS",
    "MONEY_KINDS",
    "Action",
    "FixPlan",
    "PlanSettings",
    "make_action_id",
    "plan_fixes",
    "rebook_merchant_uid",
]

_MU_OK = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
_MU_BAD_CHARS = re.compile(r"[^A-Za-z0-9_-]")
_KEEP = re.compile(r"\bkeep (\S+?),")

#: Finding kinds no action fixes, with the reason shown in the plan.
MANUAL_KINDS: dict[str, str] = {
    "amount_mismatch": "amount/currency mismatch is never auto-fixed: manual review (possible forgery)",
    "phantom_paid": "local order paid without a PortOne charge: manual review",
    "unknown_payment": "PortOne charge without a local order: manual review",
    "duplicate_charge": "duplicate charge: manual refund review",
    "charged_after_cancel": "PortOne charged after the subscription or order was cancelled: refund review",
    "refund_not_reflected": "refund made at PortOne: mark the order refunded in the merchant's system",
}

#: Finding kinds an action can fix.
FIXABLE_KINDS = frozenset(
    {
        "missed_webhook",
        "missing_next_schedule",
        "chain_not_started",
        "unpaid_renewal",
        "duplicate_schedule",
        "orphan_schedule",
        "schedule_amount_mismatch",
    }
)


def rebook_merchant_uid(subscription_id: str, period: date, prefix: str = "rebook") -> str:
    """The deterministic merchant_uid of a rebooked period: ``<prefix>-<subscription_id>-<YYYYMM>``.

    At most 40 characters of ``[A-Za-z0-9_-]``; when the id is too long or holds other characters, it is
    shortened and an 8-hex hash of the original keeps the merchant_uid unique.
    """
    if not prefix or _MU_BAD_CHARS.search(prefix):
        raise ActionError(f"rebook prefix {prefix!r} must be non-empty [A-Za-z0-9_-]")
    ym = f"{period.year:04d}{period.month:02d}"
    plain = f"{prefix}-{subscription_id}-{ym}"
    if _MU_OK.match(plain):
        return plain
    digest = hashlib.sha256(subscription_id.encode("utf-8")).hexdigest()[:8]
    room = 40 - len(prefix) - len(ym) - len(digest) - 3
    if room < 0:
        raise ActionError(f"rebook prefix {prefix!r} is too long for a 40-character merchant_uid")
    head = _MU_BAD_CHARS.sub("_", subscription_id)[:room]
    uid = f"{prefix}-{head}{digest}-{ym}" if head else f"{prefix}-{digest}-{ym}"
    assert _MU_OK.match(uid), uid
    return uid


@dataclass(frozen=True)
class PlanSettings:
    """How the planner books and charges; recorded in the plan's ``params``.

    Attributes:
        prefix: merchant_uid prefix of rebooked schedules.
        schedule_hour: hour (Asia/Seoul) of rebooked schedules.
        name: the schedule's product name when the subscription has none.
        notice_url: the webhook URL of rebooked schedules (None: the merchant's default).
        allow_inferred: plan rebook/retry even when no subscriptions are loaded (amounts and dates are
            then inferred from PortOne's data).
        include_held: plan money-moving actions held by manual-review findings (each marked ``held_by``).
        max_retries: retries of one failed schedule at most (one per day).
    """

    prefix: str = "rebook"
    schedule_hour: int = 10
    name: str = "정기결제"
    notice_url: str | None = None
    allow_inferred: bool = False
    include_held: bool = False
    max_retries: int = 3

    def __post_init__(self) -> None:
        if not 0 <= self.schedule_hour <= 23:
            raise ActionError(f"schedule_hour must be 0..23, got {self.schedule_hour}")
        if self.max_retries < 1:
            raise ActionError(f"max_retries must be >= 1, got {self.max_retries}")
        rebook_merchant_uid("x", date(2000, 1, 1), self.prefix)  # validates the prefix

    def to_params(self) -> dict[str, Any]:
        return {
            "prefix": self.prefix,
            "schedule_hour": self.schedule_hour,
            "name": self.name,
            "notice_url": self.notice_url,
            "allow_inferred": self.allow_inferred,
            "include_held": self.include_held,
            "max_retries": self.max_retries,
        }

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> PlanSettings:
        known = cls().to_params()
        kwargs = {k: params[k] for k in known if k in params}
        try:
            return cls(**kwargs)
        except TypeError as exc:
            raise ActionError(f"plan params are malformed: {exc}") from exc


def _findings_frame(result: Any) -> tuple[pd.DataFrame, str | None, datetime | None]:
    if isinstance(result, pd.DataFrame):
        return result, None, None
    findings = getattr(result, "findings", None)
    if not isinstance(findings, pd.DataFrame):
        raise ActionError(
            f"plan_fixes needs a ReconResult or a findings DataFrame, got {type(result).__name__}"
        )
    as_of = getattr(result, "as_of", None)
    if as_of is not None and not isinstance(as_of, datetime):
        as_of = pd.Timestamp(as_of).to_pydatetime()
    return findings, as_str(getattr(result, "run_id", None)), as_of


def _instant(d: date, hour: int) -> datetime:
    return datetime.combine(d, time(hour=hour), tzinfo=KST)


def _midnight(d: date) -> datetime:
    return datetime.combine(d, time(0), tzinfo=KST)


def _date(value: Any) -> date | None:
    v = clean(value)
    if v is None:
        return None
    if isinstance(v, datetime):
        return v.astimezone(KST).date()
    if isinstance(v, date):
        return v
    try:
        return date.fromisoformat(str(v)[:10])
    except ValueError:
        return None


def plan_fixes(
    result: Any,
    kinds: Iterable[str] | None = None,
    customers: Iterable[str] | None = None,
    *,
    subscriptions: pd.DataFrame | Subscriptions | None = None,
    as_of: datetime | None = None,
    prefix: str = "rebook",
    schedule_hour: int = 10,
    name: str = "정기결제",
    notice_url: str | None = None,
    allow_inferred: bool = False,
    include_held: bool = False,
    max_retries: int = 3,
    retries_sent: Mapping[str, int] | None = None,
    triaged: Iterable[str] = (),
) -> FixPlan:
    """Plan the fix-ups for a reconciliation result. Pure: no store, no API.

    Args:
        result: a ``ReconResult`` / stored run (uses ``.findings``, ``.as_of``, ``.run_id``) or a findings
            DataFrame.
        kinds: finding kinds (``missed_webhook``...) and/or action kinds (``rebook``...) to keep; an empty
            or unknown selection is an error.
        customers: customer_uids to keep; an empty selection is an error.
        subscriptions: the merchant's subscriptions (DataFrame of the subscriptions table). Without them,
            no money-moving action is planned unless ``allow_inferred``.
        as_of: the reconciliation instant (default: ``result.as_of``).
        prefix, schedule_hour, name, notice_url, allow_inferred, include_held, max_retries: see
            :class:`PlanSettings`.
        retries_sent: retries already sent per failed schedule merchant_uid (from the journal).
        triaged: finding ids a person acknowledged or explained (they hold nothing).

    Returns:
        A :class:`FixPlan` ordered unschedule -> reverify -> retry -> rebook (so a replacement is booked
        only after the wrong schedule is revoked). It is not recorded: ``fix plan`` and apply record it.
    """
    settings = PlanSettings(
        prefix, schedule_hour, name, notice_url, allow_inferred, include_held, max_retries
    )
    findings, run_id, result_as_of = _findings_frame(result)
    as_of = as_of or result_as_of
    if as_of is None:
        raise ActionError("plan_fixes needs as_of (pass as_of= or a ReconResult)")
    as_of = ensure_aware(as_of)
    wanted = _selection(kinds, "kinds")
    if wanted is not None:
        known = set(ACTION_KINDS) | set(MANUAL_KINDS) | FIXABLE_KINDS
        unknown = wanted - known
        if unknown:
            raise ActionError(f"unknown kind(s) {sorted(unknown)}; known: {sorted(known)}")
    cust = _selection(customers, "customers")
    subs = (
        subscriptions if isinstance(subscriptions, Subscriptions) else Subscriptions.from_frame(subscriptions)
    )
    holds = Holds.from_frame(findings, triaged)
    planner = Planner(as_of, subs, settings, retries_sent or {})

    actions: dict[str, Action] = {}
    unplanned: list[dict[str, Any]] = []
    held: list[dict[str, Any]] = []
    for raw in findings.to_dict("records"):
        f = {str(k): clean(v) for k, v in raw.items()}
        fkind = str(f.get("kind"))
        if cust is not None and f.get("customer_uid") not in cust:
            continue
        made, why = planner.for_finding(f)
        if wanted is not None:
            made = [a for a in made if a.kind in wanted or fkind in wanted]
            if not made and fkind not in wanted:
                continue
        made, on_hold = _apply_holds(made, holds, settings.include_held)
        held.extend(on_hold)
        if on_hold and not made:
            why = str(on_hold[0]["reason"])
        if not made:
            unplanned.append(_unplanned(f, why))
        for a in made:
            actions.setdefault(a.action_id, a)
    ordered = sorted(actions.values(), key=lambda a: (ORDER[a.kind], a.customer_uid or "", a.key))
    return FixPlan(tuple(ordered), tuple(unplanned), run_id, as_of, settings.to_params(), tuple(held))


def _selection(values: Iterable[str] | None, what: str) -> set[str] | None:
    if values is None:
        return None
    chosen = {str(v).strip() for v in values if str(v).strip()}
    if not chosen:
        raise ActionError(f"the {what} selection is empty: name at least one, or leave it out for all")
    return chosen


def _unplanned(f: Mapping[str, Any], why: str) -> dict[str, Any]:
    return {
        "finding_id": f.get("finding_id"),
        "kind": str(f.get("kind")),
        "customer_uid": f.get("customer_uid"),
        "subscription_id": f.get("subscription_id"),
        "key": f.get("schedule_merchant_uid") or f.get("merchant_uid") or f.get("imp_uid"),
        "reason": why,
    }


def _apply_holds(
    made: list[Action], holds: Holds, include_held: bool
) -> tuple[list[Action], list[dict[str, Any]]]:
    """Split the money-moving actions held by an open manual-review finding from the others."""
    keep: list[Action] = []
    on_hold: list[dict[str, Any]] = []
    held_ids: set[str] = set()
    for a in made:
        hold = holds.find(a.customer_uid, as_str(a.target.get("subscription_id"))) if a.moves_money else None
        if hold is None and a.target.get("requires") in held_ids:
            hold_reason = f"on hold: follows held action {a.target.get('requires')}"
        elif hold is not None:
            hold_reason = hold.reason
        else:
            keep.append(a)
            continue
        if include_held and hold is not None:
            keep.append(replace(a, target={**a.target, "held_by": hold.finding_id}))
            continue
        if include_held:  # follows an action that is itself included deliberately
            keep.append(a)
            continue
        held_ids.add(a.action_id)
        on_hold.append(
            {
                "action_id": a.action_id,
                "kind": a.kind,
                "customer_uid": a.customer_uid,
                "subscription_id": a.target.get("subscription_id"),
                "key": a.key,
                "amount": a.amount,
                "finding_id": a.finding_id,
                "held_by_kind": hold.kind if hold else None,
                "held_by": hold.finding_id if hold else a.target.get("requires"),
                "reason": hold_reason,
            }
        )
    return keep, on_hold


class Planner:
    """Turns one finding into its actions (or the reason there are none). Apply uses it again, on the
    stored finding and today's subscriptions, to check that a recorded action still means the same."""

    def __init__(
        self,
        as_of: datetime,
        subs: Subscriptions,
        settings: PlanSettings,
        retries_sent: Mapping[str, int] | None = None,
    ) -> None:
        self.as_of = as_of
        self.subs = subs
        self.s = settings
        self.retries_sent = retries_sent or {}

    def for_finding(self, f: Mapping[str, Any]) -> tuple[list[Action], str]:
        kind = str(f.get("kind"))
        if kind in MANUAL_KINDS:
            return [], MANUAL_KINDS[kind]
        if kind == "missed_webhook":
            return self._reverify(f)
        if kind in ("missing_next_schedule", "chain_not_started"):
            return self._rebook_named(f)
        if kind == "unpaid_renewal":
            return self._retry(f)
        if kind in ("duplicate_schedule", "orphan_schedule"):
            return self._unschedule(f)
        if kind == "schedule_amount_mismatch":
            acts, why = self._unschedule(f)
            if not acts:
                return acts, why
            more, why2 = self._rebook_replacement(f, acts[0].action_id)
            return acts + more, why2
        return [], f"no automatic fix for {kind!r}"

    # -- the subscription a money-moving action is for -----------------------------------------

    def _subscription(self, f: Mapping[str, Any]) -> tuple[Subscription | None, str]:
        cu = as_str(f.get("customer_uid"))
        sid = as_str(f.get("subscription_id"))
        if self.subs.loaded:
            return self.subs.find(sid, cu)
        if not self.s.allow_inferred:
            return None, (
                "needs subscriptions: none are loaded, so amount, interval and status are only inferred; "
                "load them (load-subscriptions) or plan with --allow-inferred"
            )
        if cu is None:
            return None, "finding names no customer"
        amount = next(
            (v for c in ("subscription_amount", "local_amount", "amount_at_risk") if (v := as_int(f.get(c)))),
            None,
        )
        anchor = as_int(f.get("anchor_day"))
        ev = f.get("event_at")
        if anchor is None and isinstance(ev, datetime):
            anchor = ensure_aware(ev).day
        if not amount or anchor is None:
            return None, "subscription amount or anchor day unknown (inferred): load subscriptions"
        return Subscription(
            subscription_id=sid or cu,
            customer_uid=cu,
            status="active",
            amount=amount,
            interval_months=as_int(f.get("interval_months")) or 1,
            anchor_day=anchor,
        ), ""

    def _base(self, f: Mapping[str, Any]) -> dict[str, Any]:
        return {"finding_id": as_str(f.get("finding_id")), "finding_kind": str(f.get("kind"))}

    def _action(
        self, kind: str, aid: str, target: dict[str, Any], amount: int, reason: str, f: Any
    ) -> Action:
        return Action(aid, kind, target, build_request(kind, target), amount, reason=reason, **self._base(f))

    # -- builders ---------------------------------------------------------------------------

    def _reverify(self, f: Mapping[str, Any]) -> tuple[list[Action], str]:
        mu = as_str(f.get("merchant_uid"))
        imp = as_str(f.get("imp_uid"))
        if mu is None and imp is None:
            return [], "finding has neither merchant_uid nor imp_uid"
        amount = as_int(f.get("local_amount")) or as_int(f.get("portone_amount")) or 0
        target = {
            "customer_uid": as_str(f.get("customer_uid")),
            "merchant_uid": mu,
            "imp_uid": imp,
            "expected_amount": amount,
        }
        act = self._action(
            "reverify",
            make_action_id("reverify", mu or "", imp or ""),
            target,
            0,
            "re-fetch the payment; if paid with the order's amount, mark the order paid",
            f,
        )
        return [act], ""

    def _named_period(self, f: Mapping[str, Any], sub: Subscription) -> tuple[int | None, str]:
        """The period a rebook finding names: its ``period_start``, else the one after its last paid
        renewal (``event_at``), else the first whose renewal is after as_of."""
        start = _date(f.get("period_start"))
        if start is not None:
            number = sub.period_starting(start)
            if number is None:
                return None, (
                    f"the finding's period {start} is not a period start of subscription "
                    f"{sub.subscription_id} (anchor {sub.anchor_day}, every {sub.interval_months} months)"
                )
            return number, ""
        ev = f.get("event_at")
        if isinstance(ev, datetime):
            return sub.period_of(ensure_aware(ev)) + 1, ""
        number = sub.period_of(self.as_of)
        if _instant(sub.bounds(number)[0], self.s.schedule_hour) <= self.as_of:
            number += 1
        return number, ""

    def _rebook_named(self, f: Mapping[str, Any]) -> tuple[list[Action], str]:
        sub, why = self._subscription(f)
        if sub is None:
            return [], why
        number, why = self._named_period(f, sub)
        if number is None:
            return [], why
        start, end = sub.bounds(number)
        at = _instant(start, self.s.schedule_hour)
        if at <= self.as_of:
            return [], (
                f"needs a decision: the renewal of period {start}..{end} of {sub.subscription_id} was due "
                f"{at:%Y-%m-%d %H:%M} KST and has passed; charge it now (a person's retry/charge) or book "
                "the following period - nothing is planned so that no period is skipped silently"
            )
        return self._rebook(f, sub, number, at, None)

    def _rebook_replacement(self, f: Mapping[str, Any], requires: str) -> tuple[list[Action], str]:
        sub, why = self._subscription(f)
        if sub is None:
            return [], why
        ev = f.get("event_at")
        if not isinstance(ev, datetime):
            return [], "the wrong schedule's time is unknown: manual review"
        at = ensure_aware(ev)
        if at <= self.as_of:
            return [], "the wrong schedule's time has passed: nothing to rebook"
        made, why = self._rebook(f, sub, sub.period_of(at), at, requires)
        replaces = as_str(f.get("schedule_merchant_uid"))
        return [replace(a, target={**a.target, "replaces": replaces}) for a in made], why

    def _rebook(
        self, f: Mapping[str, Any], sub: Subscription, number: int, at: datetime, requires: str | None
    ) -> tuple[list[Action], str]:
        refused = sub.refuse_charge(at)
        if refused:
            return [], refused
        start, end = sub.bounds(number)
        mu = rebook_merchant_uid(sub.subscription_id, start, self.s.prefix)
        target: dict[str, Any] = {
            "customer_uid": sub.customer_uid,
            **sub.to_target(),
            "merchant_uid": mu,
            "period_start": start.isoformat(),
            "period_end": end.isoformat(),
            "schedule_at": at.isoformat(),
            "amount": sub.amount,
            "name": sub.name or self.s.name,
            "notice_url": self.s.notice_url,
        }
        if requires:
            target["requires"] = requires
        act = self._action(
            "rebook",
            make_action_id("rebook", sub.subscription_id, start.isoformat()),
            target,
            sub.amount,
            f"book {start}..{end} of {sub.subscription_id} at {at:%Y-%m-%d %H:%M} KST",
            f,
        )
        return [act], ""

    def _retry(self, f: Mapping[str, Any]) -> tuple[list[Action], str]:
        smu = as_str(f.get("schedule_merchant_uid")) or as_str(f.get("merchant_uid"))
        cu = as_str(f.get("customer_uid"))
        if smu is None or cu is None:
            return [], "finding has no schedule merchant_uid/customer_uid"
        if str(f.get("portone_status") or "") == "scheduled":
            return [], "schedule is stuck in 'scheduled' (PortOne retries only failed ones): manual review"
        sub, why = self._subscription(f)
        if sub is None:
            return [], why
        refused = sub.refuse_charge(self.as_of)
        if refused:
            return [], refused
        ev = f.get("event_at")
        start_named = _date(f.get("period_start"))
        if start_named is not None:
            number = sub.period_starting(start_named)
        elif isinstance(ev, datetime):
            number = sub.period_of(ensure_aware(ev))
        else:
            number = None
        if number is None:
            return [], "billing period of the failed schedule unknown: manual review"
        start, end = sub.bounds(number)
        if _midnight(end) <= self.as_of:
            return [], (
                f"its billing period ended on {end.isoformat()}: a retry now would charge in the current "
                "period (a possible duplicate charge) - manual review"
            )
        charge = as_int(f.get("portone_amount"))
        if charge is not None and charge != sub.amount:
            return [], (
                f"the failed schedule is for {charge:,} but subscription {sub.subscription_id} costs "
                f"{sub.amount:,}: a retry would charge the schedule's amount - manual review"
            )
        sent = int(self.retries_sent.get(smu, 0))
        if sent >= self.s.max_retries:
            return [], f"retried {sent} times already (max_retries={self.s.max_retries}): manual review"
        day = self.as_of.astimezone(KST).date().isoformat()
        target = {
            "customer_uid": cu,
            **sub.to_target(),
            "schedule_merchant_uid": smu,
            "merchant_uid": smu,
            "period_start": start.isoformat(),
            "period_end": end.isoformat(),
            "amount": sub.amount,
            "attempt_day": day,
        }
        retry = self._action(
            "retry",
            make_action_id("retry", smu, day),
            target,
            sub.amount,
            f"retry the failed schedule (attempt of {day}) if nothing was paid for {start}..{end}",
            f,
        )
        # A paid retry is what the webhook handler would have seen: book the next period too, but only
        # once the retry succeeded.
        nxt_at = _instant(sub.bounds(number + 1)[0], self.s.schedule_hour)
        follow, _ = self._rebook(f, sub, number + 1, nxt_at, retry.action_id)
        return [retry, *[replace(a, reason=a.reason + " after the retry") for a in follow]], ""

    def _unschedule(self, f: Mapping[str, Any]) -> tuple[list[Action], str]:
        smu = as_str(f.get("schedule_merchant_uid"))
        cu = as_str(f.get("customer_uid"))
        kind = str(f.get("kind"))
        if smu is None:
            return [], "finding has no schedule_merchant_uid"
        target: dict[str, Any] = {
            "customer_uid": cu,
            "subscription_id": as_str(f.get("subscription_id")),
            "schedule_merchant_uid": smu,
            "because": kind,
            "amount": as_int(f.get("portone_amount")) or 0,
        }
        if kind == "duplicate_schedule":
            keep = as_str(f.get("keep_merchant_uid"))
            if keep is None:
                m = _KEEP.search(str(f.get("detail") or ""))
                keep = m.group(1) if m else None
            if keep is None or keep == smu:
                return [], "the schedule to keep is not named: manual review"
            target["keep_merchant_uid"] = keep
        if kind == "orphan_schedule":
            sub, _ = self.subs.find(as_str(f.get("subscription_id")), cu) if self.subs.loaded else (None, "")
            ev = f.get("event_at")
            ends_first = (
                sub is not None
                and sub.cancelled_at is not None
                and isinstance(ev, datetime)
                and ensure_aware(ev) >= sub.cancelled_at
            )
            if sub is not None and sub.status != "cancelled" and not ends_first:
                # The billing key is gone but the subscription lives: revoking the schedule only turns this
                # into a missing renewal. A person must get a new card first.
                return [], (
                    f"billing key deleted while subscription {sub.subscription_id} is {sub.status}: "
                    "ask for a new card (manual)"
                )
            # A schedule at or after a (future) cancellation is an orphan too: cancel at period end.
            target["orphan_cause"] = "subscription_cancelled" if sub is not None else "unconfirmed"
            if sub is not None:
                target["subscription_id"] = sub.subscription_id
        act = self._action(
            "unschedule",
            make_action_id("unschedule", smu),
            target,
            0,
            f"revoke schedule {smu} ({kind})",
            f,
        )
        return [act], ""
