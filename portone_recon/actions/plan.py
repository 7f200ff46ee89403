"""Planning fix-ups from reconciliation findings: pure, no store and no API access.

``plan_fixes(result)`` turns the findings of a :class:`~portone_recon.reconcile.ReconResult` (or any object
with a ``findings`` DataFrame, or the DataFrame itself) into a :class:`FixPlan`: an ordered list of
:class:`Action` objects, each with a deterministic ``action_id`` (the idempotency key the journal uses),
its kind, target keys, the exact request it would send, the KRW amount involved and the finding it fixes.

Finding kind -> action (design.md §5/§6):

=========================  ==============================================================================
``missed_webhook``         ``reverify``: re-fetch the payment, check paid + amount + currency, mark paid
``missing_next_schedule``  ``rebook``: book the next period at the anchor day (clamped), ``schedule_hour`` KST
``unpaid_renewal``         ``retry`` of the failed schedule while its billing period lasts (then ``rebook``
                           the next period once the retry succeeded); a stuck ``scheduled`` one, or one
                           whose period is over (a late retry would land in the current, already paid
                           period), is left to a person
``duplicate_schedule``     ``unschedule`` the extra schedule
``orphan_schedule``        ``unschedule`` (but not when the subscription is active and only the billing
                           key is gone: that needs a new card first)
``schedule_amount_mismatch`` ``unschedule`` the wrong-amount schedule, then ``rebook`` that period
everything else           not planned (listed in :attr:`FixPlan.unplanned` with the reason): amount
                           mismatches, phantom payments, unknown payments and duplicate charges need a person.
=========================  ==============================================================================

The rebooked ``merchant_uid`` is ``<prefix>-<customer_uid>-<YYYYMM>`` (at most 40 characters of
``[A-Za-z0-9_-]``; a long or odd customer_uid is shortened and suffixed with a hash), unique per
subscription and period. The default prefix ``rebook`` differs from the merchant's own renewal prefix, so a
replacement never collides with the schedule it replaces.
"""

from __future__ import annotations

import hashlib
import html
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import pandas as pd

from portone_recon._time import KST, add_months, anchored_date, ensure_aware, period_start
from portone_recon.errors import ActionError

ACTION_KINDS = ("unschedule", "reverify", "retry", "rebook")
#: Kinds that move money (counted against ``max_amount``).
MONEY_KINDS = frozenset({"retry", "rebook"})
PLAN_VERSION = 1
_ORDER = {k: i for i, k in enumerate(ACTION_KINDS)}
_MU_OK = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
_MU_BAD_CHARS = re.compile(r"[^A-Za-z0-9_-]")

#: Finding kinds no action fixes, with the reason shown in the plan.
MANUAL_KINDS: dict[str, str] = {
    "amount_mismatch": "amount/currency mismatch is never auto-fixed: manual review (possible forgery)",
    "phantom_paid": "local order paid without a PortOne charge: manual review",
    "unknown_payment": "PortOne charge without a local order: manual review",
    "duplicate_charge": "duplicate charge: manual refund review",
    "refund_not_reflected": "refund made at PortOne: mark the order refunded in the merchant's system",
}


def _clean(value: Any) -> Any:
    """NaN/NaT/None -> None; numpy scalars -> Python; timestamps -> aware datetimes."""
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    if isinstance(value, pd.Timestamp):
        return ensure_aware(value.to_pydatetime())
    if hasattr(value, "item") and not isinstance(value, str):
        return value.item()
    return value


def _as_int(value: Any) -> int | None:
    v = _clean(value)
    if v is None:
        return None
    return int(v)


def _as_str(value: Any) -> str | None:
    v = _clean(value)
    if v is None or v == "":
        return None
    return str(v)


def rebook_merchant_uid(customer_uid: str, period: date, prefix: str = "rebook") -> str:
    """The deterministic merchant_uid of a rebooked period: ``<prefix>-<customer_uid>-<YYYYMM>``.

    At most 40 characters of ``[A-Za-z0-9_-]``; when the customer_uid is too long or holds other
    characters, it is shortened and an 8-hex hash of the original keeps the id unique.
    """
    if not prefix or _MU_BAD_CHARS.search(prefix):
        raise ActionError(f"rebook prefix {prefix!r} must be non-empty [A-Za-z0-9_-]")
    ym = f"{period.year:04d}{period.month:02d}"
    plain = f"{prefix}-{customer_uid}-{ym}"
    if _MU_OK.match(plain):
        return plain
    digest = hashlib.sha256(customer_uid.encode("utf-8")).hexdigest()[:8]
    room = 40 - len(prefix) - len(ym) - len(digest) - 3
    if room < 0:
        raise ActionError(f"rebook prefix {prefix!r} is too long for a 40-character merchant_uid")
    head = _MU_BAD_CHARS.sub("_", customer_uid)[:room]
    uid = f"{prefix}-{head}{digest}-{ym}" if head else f"{prefix}-{digest}-{ym}"
    assert _MU_OK.match(uid), uid
    return uid


def make_action_id(kind: str, *keys: str | None) -> str:
    """Deterministic id of an action: the same fix of the same thing always gets the same id."""
    text = "|".join([kind, *[k or "" for k in keys]])
    return "act_" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]


@dataclass(frozen=True)
class Action:
    """One fix-up.

    Attributes:
        action_id: deterministic idempotency key (journal primary key).
        kind: ``reverify`` | ``rebook`` | ``retry`` | ``unschedule``.
        target: the keys it acts on (customer_uid, merchant_uid, imp_uid, schedule_merchant_uid,
            period_start/period_end as ISO dates, expected amount/currency...).
        request: the exact request it would send: ``{"method", "endpoint", "path", "json"}`` (reverify:
            the GET it reads plus the local write it would make).
        amount: KRW involved.
        finding_id: the finding it fixes; finding_kind: that finding's kind.
        reason: one line for people.
    """

    action_id: str
    kind: str
    target: Mapping[str, Any]
    request: Mapping[str, Any]
    amount: int
    finding_id: str | None = None
    finding_kind: str | None = None
    reason: str = ""

    @property
    def customer_uid(self) -> str | None:
        return _as_str(self.target.get("customer_uid"))

    @property
    def key(self) -> str:
        """The main key shown to people (schedule merchant_uid, order merchant_uid or imp_uid)."""
        t = self.target
        return str(
            t.get("schedule_merchant_uid")
            or t.get("merchant_uid")
            or t.get("imp_uid")
            or t.get("customer_uid")
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "action_id": self.action_id,
            "kind": self.kind,
            "target": dict(self.target),
            "request": json.loads(json.dumps(self.request)),
            "amount": self.amount,
            "finding_id": self.finding_id,
            "finding_kind": self.finding_kind,
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Action:
        try:
            kind = str(data["kind"])
            if kind not in ACTION_KINDS:
                raise ActionError(f"unknown action kind {kind!r}; known: {', '.join(ACTION_KINDS)}")
            return cls(
                action_id=str(data["action_id"]),
                kind=kind,
                target=dict(data["target"]),
                request=dict(data["request"]),
                amount=int(data["amount"]),
                finding_id=data.get("finding_id"),
                finding_kind=data.get("finding_kind"),
                reason=str(data.get("reason") or ""),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ActionError(f"malformed action {dict(data).get('action_id', '?')!r}: {exc!r}") from exc

    def __repr__(self) -> str:
        return f"Action({self.kind} {self.key} {self.amount:,} KRW, {self.action_id})"


@dataclass(frozen=True)
class FixPlan:
    """An ordered list of actions, plus the findings left for a person.

    Render it in Jupyter, save it with :meth:`save` / :meth:`to_json`, load it with :meth:`load` /
    :meth:`from_json`, apply it with :func:`portone_recon.actions.apply`.
    """

    actions: tuple[Action, ...]
    unplanned: tuple[Mapping[str, Any], ...] = ()
    run_id: str | None = None
    as_of: datetime | None = None
    params: Mapping[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.actions)

    def __iter__(self) -> Any:
        return iter(self.actions)

    def __getitem__(self, i: int) -> Action:
        return self.actions[i]

    @property
    def total_amount(self) -> int:
        """KRW of the money-moving actions (rebook, retry)."""
        return sum(a.amount for a in self.actions if a.kind in MONEY_KINDS)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for a in self.actions:
            out[a.kind] = out.get(a.kind, 0) + 1
        return out

    def to_frame(self) -> pd.DataFrame:
        """One row per action: what it does, to what, for how much, and the request it would send."""
        rows = [
            {
                "action_id": a.action_id,
                "kind": a.kind,
                "customer_uid": a.customer_uid,
                "key": a.key,
                "amount": a.amount,
                "finding_kind": a.finding_kind,
                "finding_id": a.finding_id,
                "request": f"{a.request.get('method', '')} {a.request.get('path', '')}".strip(),
                "reason": a.reason,
            }
            for a in self.actions
        ]
        cols = ["action_id", "kind", "customer_uid", "key", "amount", "finding_kind", "finding_id", "request"]
        return pd.DataFrame(rows, columns=[*cols, "reason"])

    def filter(self, kinds: Iterable[str] | None = None, customers: Iterable[str] | None = None) -> FixPlan:
        """A sub-plan with only these action kinds and/or customers."""
        ks = set(kinds) if kinds is not None else None
        cs = set(customers) if customers is not None else None
        acts = tuple(
            a for a in self.actions if (ks is None or a.kind in ks) and (cs is None or a.customer_uid in cs)
        )
        return FixPlan(acts, self.unplanned, self.run_id, self.as_of, self.params)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": PLAN_VERSION,
            "run_id": self.run_id,
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "params": dict(self.params),
            "counts": self.counts(),
            "total_amount": self.total_amount,
            "actions": [a.to_dict() for a in self.actions],
            "unplanned": [dict(u) for u in self.unplanned],
        }

    def to_json(self, path: str | Path | None = None) -> str:
        """The plan as JSON text (UTF-8, Korean kept readable); also written to ``path`` when given."""
        text = json.dumps(self.to_dict(), ensure_ascii=False, indent=2, default=str)
        if path is not None:
            Path(path).write_text(text + "\n", encoding="utf-8")
        return text

    save = to_json

    @classmethod
    def from_json(cls, text: str) -> FixPlan:
        """Parse a plan saved by :meth:`to_json`."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ActionError(f"not a fix plan (invalid JSON at line {exc.lineno}): {exc.msg}") from exc
        if not isinstance(data, dict) or data.get("version") != PLAN_VERSION or "actions" not in data:
            raise ActionError(f"not a fix plan of version {PLAN_VERSION} (missing 'version'/'actions')")
        actions = tuple(Action.from_dict(a) for a in data["actions"])
        ids = [a.action_id for a in actions]
        if len(set(ids)) != len(ids):
            raise ActionError("fix plan holds duplicate action_ids")
        as_of = data.get("as_of")
        return cls(
            actions=actions,
            unplanned=tuple(data.get("unplanned") or ()),
            run_id=data.get("run_id"),
            as_of=datetime.fromisoformat(as_of) if as_of else None,
            params=dict(data.get("params") or {}),
        )

    @classmethod
    def load(cls, path: str | Path) -> FixPlan:
        """Read a plan file."""
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise ActionError(f"{p}: cannot read the fix plan: {exc.strerror}") from exc
        try:
            return cls.from_json(text)
        except ActionError as exc:
            raise ActionError(f"{p}: {exc}") from exc

    def __repr__(self) -> str:
        counts = ", ".join(f"{k} {n}" for k, n in self.counts().items()) or "nothing to do"
        return (
            f"FixPlan({len(self.actions)} actions: {counts}; {self.total_amount:,} KRW to charge; "
            f"{len(self.unplanned)} findings left for review)"
        )

    def _repr_html_(self) -> str:
        try:
            head = html.escape(repr(self))
            frame = self.to_frame().drop(columns=["action_id", "finding_id"])
            table = frame.head(50).to_html(index=False, escape=True, formatters={"amount": "{:,}".format})
            more = f"<p>... and {len(frame) - 50} more</p>" if len(frame) > 50 else ""
            return f"<b>{head}</b>{table}{more}"
        except Exception as exc:  # a repr never raises
            return f"<b>FixPlan</b> <i>(cannot render: {html.escape(type(exc).__name__)})</i>"


# -- planning ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Sub:
    amount: int | None
    anchor_day: int | None
    status: str | None


def _subscriptions_index(subscriptions: pd.DataFrame | None) -> dict[str, _Sub]:
    if subscriptions is None or len(subscriptions) == 0:
        return {}
    out: dict[str, _Sub] = {}
    for row in subscriptions.to_dict("records"):
        cu = _as_str(row.get("customer_uid"))
        if cu is None:
            continue
        out[cu] = _Sub(_as_int(row.get("amount")), _as_int(row.get("anchor_day")), _as_str(row.get("status")))
    return out


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
    return findings, _as_str(getattr(result, "run_id", None)), as_of


def _instant(d: date, hour: int) -> datetime:
    return datetime.combine(d, time(hour=hour), tzinfo=KST)


def _next_period(as_of: datetime, anchor_day: int, hour: int) -> date:
    """The first anchored billing date whose ``hour`` KST instant lies after ``as_of``."""
    local = as_of.astimezone(KST)
    y, m = local.year, local.month
    for _ in range(3):
        d = anchored_date(y, m, anchor_day)
        if _instant(d, hour) > as_of:
            return d
        y, m = add_months(y, m, 1)
    raise AssertionError("unreachable: a month always has a later anchored date")  # pragma: no cover


def _period_bounds(start: date, anchor_day: int) -> tuple[date, date]:
    y, m = add_months(start.year, start.month, 1)
    return start, anchored_date(y, m, anchor_day)


def plan_fixes(
    result: Any,
    kinds: Iterable[str] | None = None,
    customers: Iterable[str] | None = None,
    *,
    subscriptions: pd.DataFrame | None = None,
    as_of: datetime | None = None,
    prefix: str = "rebook",
    schedule_hour: int = 10,
    name: str = "정기결제",
    notice_url: str | None = None,
) -> FixPlan:
    """Plan the fix-ups for a reconciliation result. Pure: no store, no API.

    Args:
        result: a ``ReconResult`` (uses ``.findings``, ``.as_of``, ``.run_id``) or a findings DataFrame.
        kinds: finding kinds (``missed_webhook``...) and/or action kinds (``rebook``...) to keep.
        customers: customer_uids to keep.
        subscriptions: the subscriptions table (customer_uid, amount, anchor_day, status); needed for
            the amount and anchor day of rebook/retry when the findings do not carry them
            (``subscription_amount`` / ``anchor_day`` columns). Without either, the anchor day is the KST
            day of the finding's ``event_at`` and the amount its ``local_amount``.
        as_of: the reconciliation instant (default: ``result.as_of``); rebook books the first anchored
            date after it.
        prefix: the rebooked merchant_uid prefix.
        schedule_hour: hour (Asia/Seoul) of rebooked schedules.
        name: the schedule's product name; notice_url: the webhook URL of rebooked schedules.

    Returns:
        A :class:`FixPlan` ordered unschedule -> reverify -> retry -> rebook (so a replacement is
        booked only after the wrong schedule is revoked).
    """
    if not 0 <= schedule_hour <= 23:
        raise ActionError(f"schedule_hour must be 0..23, got {schedule_hour}")
    findings, run_id, result_as_of = _findings_frame(result)
    as_of = as_of or result_as_of
    if as_of is not None:
        as_of = ensure_aware(as_of)
    wanted = set(kinds) if kinds is not None else None
    if wanted is not None:
        known = (
            set(ACTION_KINDS)
            | set(MANUAL_KINDS)
            | {
                "missed_webhook",
                "missing_next_schedule",
                "unpaid_renewal",
                "duplicate_schedule",
                "orphan_schedule",
                "schedule_amount_mismatch",
            }
        )
        unknown = wanted - known
        if unknown:
            raise ActionError(f"unknown kind(s) {sorted(unknown)}; known: {sorted(known)}")
    cust = set(customers) if customers is not None else None
    subs = _subscriptions_index(subscriptions)
    planner = _Planner(as_of, subs, prefix, schedule_hour, name, notice_url)

    actions: dict[str, Action] = {}
    unplanned: list[dict[str, Any]] = []
    for raw in findings.to_dict("records"):
        f = {str(k): _clean(v) for k, v in raw.items()}
        fkind = str(f.get("kind"))
        if cust is not None and f.get("customer_uid") not in cust:
            continue
        made, why = planner.for_finding(f)
        if wanted is not None:
            made = [a for a in made if a.kind in wanted or fkind in wanted]
            if not made and fkind not in wanted:
                continue
        if not made:
            unplanned.append(
                {
                    "finding_id": f.get("finding_id"),
                    "kind": fkind,
                    "customer_uid": f.get("customer_uid"),
                    "key": f.get("schedule_merchant_uid") or f.get("merchant_uid") or f.get("imp_uid"),
                    "reason": why,
                }
            )
        for a in made:
            actions.setdefault(a.action_id, a)
    ordered = sorted(actions.values(), key=lambda a: (_ORDER[a.kind], a.customer_uid or "", a.key))
    params = {"prefix": prefix, "schedule_hour": schedule_hour, "name": name, "notice_url": notice_url}
    return FixPlan(tuple(ordered), tuple(unplanned), run_id, as_of, params)


class _Planner:
    def __init__(
        self,
        as_of: datetime | None,
        subs: Mapping[str, _Sub],
        prefix: str,
        hour: int,
        name: str,
        notice_url: str | None,
    ) -> None:
        self.as_of = as_of
        self.subs = subs
        self.prefix = prefix
        self.hour = hour
        self.name = name
        self.notice_url = notice_url

    def for_finding(self, f: Mapping[str, Any]) -> tuple[list[Action], str]:
        kind = str(f.get("kind"))
        if kind in MANUAL_KINDS:
            return [], MANUAL_KINDS[kind]
        if kind == "missed_webhook":
            return self._reverify(f)
        if kind == "missing_next_schedule":
            return self._rebook_next(f)
        if kind == "unpaid_renewal":
            return self._retry(f)
        if kind in ("duplicate_schedule", "orphan_schedule"):
            return self._unschedule(f)
        if kind == "schedule_amount_mismatch":
            acts, why = self._unschedule(f)
            if not acts:
                return acts, why
            more, why2 = self._rebook_replacement(f)
            return acts + more, why2
        return [], f"no automatic fix for {kind!r}"

    # -- per customer facts -------------------------------------------------------------------

    def _amount(self, f: Mapping[str, Any]) -> int | None:
        cu = _as_str(f.get("customer_uid"))
        sub = self.subs.get(cu or "")
        if sub is not None and sub.amount is not None:
            return sub.amount
        for col in ("subscription_amount", "local_amount", "amount_at_risk"):
            v = _as_int(f.get(col))
            if v:
                return v
        return None

    def _anchor(self, f: Mapping[str, Any]) -> int | None:
        cu = _as_str(f.get("customer_uid"))
        sub = self.subs.get(cu or "")
        if sub is not None and sub.anchor_day is not None:
            return sub.anchor_day
        v = _as_int(f.get("anchor_day"))
        if v:
            return v
        ev = f.get("event_at")
        if isinstance(ev, datetime):
            return ensure_aware(ev).day
        return None

    def _base(self, f: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "finding_id": _as_str(f.get("finding_id")),
            "finding_kind": str(f.get("kind")),
        }

    # -- builders ---------------------------------------------------------------------------

    def _reverify(self, f: Mapping[str, Any]) -> tuple[list[Action], str]:
        mu = _as_str(f.get("merchant_uid"))
        imp = _as_str(f.get("imp_uid"))
        if mu is None and imp is None:
            return [], "finding has neither merchant_uid nor imp_uid"
        amount = _as_int(f.get("local_amount")) or _as_int(f.get("portone_amount")) or 0
        target = {"customer_uid": _as_str(f.get("customer_uid")), "merchant_uid": mu, "imp_uid": imp}
        request = reverify_request(mu, imp, amount)
        return [
            Action(
                make_action_id("reverify", mu or "", imp or ""),
                "reverify",
                target,
                request,
                amount,
                reason="re-fetch the payment; if paid with the order's amount, mark the order paid",
                **self._base(f),
            )
        ], ""

    def _rebook_next(self, f: Mapping[str, Any]) -> tuple[list[Action], str]:
        if self.as_of is None:
            return [], "rebook needs as_of (pass as_of= or a ReconResult)"
        anchor = self._anchor(f)
        if anchor is None:
            return [], "anchor day unknown: pass subscriptions="
        return self._rebook(f, _next_period(self.as_of, anchor, self.hour), anchor, None)

    def _rebook_replacement(self, f: Mapping[str, Any]) -> tuple[list[Action], str]:
        anchor = self._anchor(f)
        ev = f.get("event_at")
        if anchor is None or not isinstance(ev, datetime):
            return [], "anchor day or schedule time unknown: pass subscriptions="
        ev = ensure_aware(ev)
        start = period_start(ev, anchor)
        return self._rebook(f, start, anchor, ev)

    def _rebook(
        self, f: Mapping[str, Any], start: date, anchor: int, at: datetime | None
    ) -> tuple[list[Action], str]:
        cu = _as_str(f.get("customer_uid"))
        if cu is None:
            return [], "finding has no customer_uid"
        amount = self._amount(f)
        if not amount or amount <= 0:
            return [], "subscription amount unknown: pass subscriptions="
        sub = self.subs.get(cu)
        if sub is not None and sub.status == "cancelled":
            return [], "subscription is cancelled locally: nothing to rebook"
        p_start, p_end = _period_bounds(start, anchor)
        schedule_at = _instant(p_start, self.hour)
        if at is not None and (self.as_of is None or schedule_at <= self.as_of):
            schedule_at = at
        mu = rebook_merchant_uid(cu, p_start, self.prefix)
        entry: dict[str, Any] = {
            "merchant_uid": mu,
            "schedule_at": int(schedule_at.timestamp()),
            "currency": "KRW",
            "amount": amount,
            "name": self.name,
        }
        if self.notice_url:
            entry["notice_url"] = self.notice_url
        target = {
            "customer_uid": cu,
            "merchant_uid": mu,
            "period_start": p_start.isoformat(),
            "period_end": p_end.isoformat(),
            "schedule_at": schedule_at.isoformat(),
            "anchor_day": anchor,
        }
        request = {
            "method": "POST",
            "endpoint": "/subscribe/payments/schedule",
            "path": "/subscribe/payments/schedule",
            "json": {"customer_uid": cu, "schedules": [entry]},
        }
        return [
            Action(
                make_action_id("rebook", cu, p_start.isoformat()),
                "rebook",
                target,
                request,
                amount,
                reason=f"book {p_start:%Y-%m} at {schedule_at:%Y-%m-%d %H:%M} KST",
                **self._base(f),
            )
        ], ""

    def _retry(self, f: Mapping[str, Any]) -> tuple[list[Action], str]:
        smu = _as_str(f.get("schedule_merchant_uid")) or _as_str(f.get("merchant_uid"))
        cu = _as_str(f.get("customer_uid"))
        if smu is None or cu is None:
            return [], "finding has no schedule merchant_uid/customer_uid"
        if str(f.get("portone_status") or "") == "scheduled":
            return [], "schedule is stuck in 'scheduled' (PortOne retries only failed ones): manual review"
        amount = self._amount(f)
        anchor = self._anchor(f)
        ev = f.get("event_at")
        target: dict[str, Any] = {"customer_uid": cu, "schedule_merchant_uid": smu, "merchant_uid": smu}
        if anchor is None or not isinstance(ev, datetime):
            return [], "billing period of the failed schedule unknown (pass subscriptions=): manual review"
        p_start, p_end = _period_bounds(period_start(ensure_aware(ev), anchor), anchor)
        if self.as_of is not None and _instant(p_end, 0) <= self.as_of:
            return [], (
                f"its billing period ended on {p_end.isoformat()}: a retry now would charge in the current "
                "period (a possible duplicate charge) - manual review"
            )
        target.update(period_start=p_start.isoformat(), period_end=p_end.isoformat(), anchor_day=anchor)
        target["expected_amount"] = amount
        path = f"/subscribe/payments/schedule/{smu}/retry"
        request = {
            "method": "POST",
            "endpoint": "/subscribe/payments/schedule/{merchant_uid}/retry",
            "path": path,
        }
        retry = Action(
            make_action_id("retry", smu),
            "retry",
            target,
            request,
            amount or _as_int(f.get("portone_amount")) or 0,
            reason="retry the failed schedule if nothing was paid for its period",
            **self._base(f),
        )
        # A paid retry is what the webhook handler would have seen: book the next period too, but only
        # once the retry succeeded (or was not needed because the period is paid).
        nxt, _ = self._rebook_next(f) if self.as_of is not None else ([], "")
        follow = [
            Action(
                a.action_id,
                a.kind,
                {**a.target, "requires": retry.action_id},
                a.request,
                a.amount,
                a.finding_id,
                a.finding_kind,
                a.reason + " after the retry",
            )
            for a in nxt
        ]
        return [retry, *follow], ""

    def _unschedule(self, f: Mapping[str, Any]) -> tuple[list[Action], str]:
        smu = _as_str(f.get("schedule_merchant_uid"))
        cu = _as_str(f.get("customer_uid"))
        if smu is None:
            return [], "finding has no schedule_merchant_uid"
        sub = self.subs.get(cu or "")
        if f.get("kind") == "orphan_schedule" and sub is not None and sub.status == "active":
            # The billing key is gone but the subscription is active: revoking the schedule only turns
            # this into a missing renewal. A person must get a new card first.
            return [], "billing key deleted while the subscription is active: ask for a new card (manual)"
        target = {"customer_uid": cu, "schedule_merchant_uid": smu}
        body: dict[str, Any] = {"merchant_uid": [smu]}
        if cu:
            body = {"customer_uid": cu, "merchant_uid": [smu]}
        request = {
            "method": "POST",
            "endpoint": "/subscribe/payments/unschedule",
            "path": "/subscribe/payments/unschedule",
            "json": body,
        }
        amount = _as_int(f.get("portone_amount")) or 0
        return [
            Action(
                make_action_id("unschedule", smu),
                "unschedule",
                target,
                request,
                amount,
                reason=f"revoke schedule {smu} ({f.get('kind')})",
                **self._base(f),
            )
        ], ""


def reverify_request(merchant_uid: str | None, imp_uid: str | None, amount: int) -> dict[str, Any]:
    """The read a reverify makes and the local write it would do."""
    if imp_uid:
        read = {"method": "GET", "endpoint": "/payments/{imp_uid}", "path": f"/payments/{imp_uid}"}
    else:
        read = {
            "method": "GET",
            "endpoint": "/payments/findAll/{merchant_uid}",
            "path": f"/payments/findAll/{merchant_uid}",
        }
    return {**read, "local": {"mark_paid": {"merchant_uid": merchant_uid, "expected_amount": amount}}}


def single_action_plan(actions: Sequence[Action], as_of: datetime | None = None) -> FixPlan:
    """A plan from hand-made actions (used by the reverify/rebook helpers)."""
    return FixPlan(tuple(actions), (), None, as_of, {})
