"""What a fix plan is made of: :class:`Action` and :class:`FixPlan`, their JSON form and their digest.

A plan file is a view for people. The store records every plan that ``fix plan`` (or a notebook) makes,
with the plan's digest; ``apply`` accepts a plan only when it equals that record (see
:mod:`portone_recon.actions.record`) and builds every request it sends from the recorded action's target,
never from the ``request`` field of a file.
"""

from __future__ import annotations

import hashlib
import html
import json
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from portone_recon._time import ensure_aware
from portone_recon.errors import ActionError

ACTION_KINDS = ("unschedule", "reverify", "retry", "rebook")
#: Kinds that move money: counted against the caps, held by manual-review findings.
MONEY_KINDS = frozenset({"retry", "rebook"})
PLAN_VERSION = 2
ORDER = {k: i for i, k in enumerate(ACTION_KINDS)}


def clean(value: Any) -> Any:
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


def as_int(value: Any) -> int | None:
    v = clean(value)
    if v is None:
        return None
    return int(v)


def as_str(value: Any) -> str | None:
    v = clean(value)
    if v is None or v == "":
        return None
    return str(v)


def make_action_id(kind: str, *keys: str | None) -> str:
    """Deterministic id of an action: the same fix of the same thing always gets the same id."""
    text = "|".join([kind, *[k or "" for k in keys]])
    return "act_" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]


def canonical(value: Any) -> str:
    """The canonical JSON text of a value (sorted keys): what digests and comparisons use."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)


@dataclass(frozen=True)
class Action:
    """One fix-up.

    Attributes:
        action_id: deterministic idempotency key (journal primary key).
        kind: ``reverify`` | ``rebook`` | ``retry`` | ``unschedule``.
        target: what it acts on: customer_uid, subscription_id, merchant_uid, imp_uid,
            schedule_merchant_uid, period_start/period_end (ISO dates), schedule_at, amount, currency...
            The request is always rebuilt from these fields.
        request: the request it would send, for people to read: ``{"method", "endpoint", "path", "json"}``
            (reverify: the read plus the local write it would make).
        amount: the money it moves (rebook: every booked entry; retry: the charge), in the target's
            currency's smallest unit; 0 for actions that move none.
        finding_id / finding_kind: the finding it answers (None for a person's own one-off action).
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
        return as_str(self.target.get("customer_uid"))

    @property
    def moves_money(self) -> bool:
        return self.kind in MONEY_KINDS

    @property
    def held_by(self) -> str | None:
        """The manual-review finding this action was deliberately planned despite (``include_held``)."""
        return as_str(self.target.get("held_by"))

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
            "target": json.loads(json.dumps(dict(self.target), default=str)),
            "request": json.loads(json.dumps(dict(self.request), default=str)),
            "amount": self.amount,
            "finding_id": self.finding_id,
            "finding_kind": self.finding_kind,
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, data: Any, index: int | None = None) -> Action:
        """Parse one action; a malformed one names its position and the field."""
        where = f"action {index + 1}" if index is not None else "action"
        if not isinstance(data, Mapping):
            raise ActionError(f"{where}: not an object")
        aid = data.get("action_id")
        where = f"{where} ({aid})" if isinstance(aid, str) else where
        for key, kind in (("action_id", str), ("kind", str), ("target", Mapping), ("request", Mapping)):
            if not isinstance(data.get(key), kind):
                raise ActionError(f"{where}: field {key!r} is missing or not a {kind.__name__}")
        amount = data.get("amount")
        if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
            raise ActionError(f"{where}: field 'amount' must be a whole number >= 0, got {amount!r}")
        if data["kind"] not in ACTION_KINDS:
            raise ActionError(
                f"{where}: unknown action kind {data['kind']!r}; known: {', '.join(ACTION_KINDS)}"
            )
        for key in ("finding_id", "finding_kind", "reason"):
            if data.get(key) is not None and not isinstance(data.get(key), str):
                raise ActionError(f"{where}: field {key!r} must be text or null")
        return cls(
            action_id=str(data["action_id"]),
            kind=str(data["kind"]),
            target=dict(data["target"]),
            request=dict(data["request"]),
            amount=int(amount),
            finding_id=data.get("finding_id"),
            finding_kind=data.get("finding_kind"),
            reason=str(data.get("reason") or ""),
        )

    def __repr__(self) -> str:
        held = f", held by {self.held_by}" if self.held_by else ""
        return f"Action({self.kind} {self.key} {self.amount:,}, {self.action_id}{held})"


@dataclass(frozen=True)
class FixPlan:
    """An ordered list of actions, the findings left for a person, and the actions on hold.

    ``plan_id``, ``created_at`` and :attr:`digest` identify the plan; apply accepts a plan only when the
    store recorded the same one (:func:`portone_recon.actions.record_plan`). Render it in Jupyter, save it
    with :meth:`save`, load it with :meth:`load`.

    Attributes:
        actions: what apply may send, in order (unschedule -> reverify -> retry -> rebook).
        unplanned: findings no action fixes, each with the reason.
        held: money-moving actions not planned because a manual-review finding of the same customer's
            subscription is open: each with the holding finding (kind, finding_id, key) and the reason.
        params: the planner's settings (prefix, hour, name, allow_inferred, include_held...).
    """

    actions: tuple[Action, ...]
    unplanned: tuple[Mapping[str, Any], ...] = ()
    run_id: str | None = None
    as_of: datetime | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    held: tuple[Mapping[str, Any], ...] = ()
    plan_id: str | None = None
    created_at: datetime | None = None

    def __len__(self) -> int:
        return len(self.actions)

    def __iter__(self) -> Iterator[Action]:
        return iter(self.actions)

    def __getitem__(self, i: int) -> Action:
        return self.actions[i]

    @property
    def total_amount(self) -> int:
        """Money of the money-moving actions (rebook, retry), as planned."""
        return sum(a.amount for a in self.actions if a.moves_money)

    @property
    def digest(self) -> str:
        """SHA-256 of the plan's identity and actions (what the store records and apply compares)."""
        return hashlib.sha256(canonical(self._identity()).encode("utf-8")).hexdigest()

    def _identity(self) -> dict[str, Any]:
        return {
            "version": PLAN_VERSION,
            "plan_id": self.plan_id,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "run_id": self.run_id,
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "params": json.loads(json.dumps(dict(self.params), default=str)),
            "actions": [a.to_dict() for a in self.actions],
        }

    def stamped(self, created_at: datetime) -> FixPlan:
        """This plan with its creation instant and an id derived from its content and that instant."""
        base = replace(self, created_at=created_at, plan_id=None)
        text = canonical(base._identity())
        return replace(base, plan_id="plan_" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16])

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
                "subscription_id": as_str(a.target.get("subscription_id")),
                "key": a.key,
                "amount": a.amount,
                "finding_kind": a.finding_kind,
                "finding_id": a.finding_id,
                "held_by": a.held_by,
                "request": f"{a.request.get('method', '')} {a.request.get('path', '')}".strip(),
                "reason": a.reason,
            }
            for a in self.actions
        ]
        cols = [
            "action_id",
            "kind",
            "customer_uid",
            "subscription_id",
            "key",
            "amount",
            "finding_kind",
            "finding_id",
            "held_by",
            "request",
            "reason",
        ]
        return pd.DataFrame(rows, columns=cols)

    def held_frame(self) -> pd.DataFrame:
        """The actions on hold, one row each, with the finding that holds it."""
        cols = [
            "kind",
            "customer_uid",
            "subscription_id",
            "key",
            "amount",
            "held_by_kind",
            "held_by",
            "reason",
        ]
        return pd.DataFrame([{c: h.get(c) for c in cols} for h in self.held], columns=cols)

    def filter(self, kinds: Iterable[str] | None = None, customers: Iterable[str] | None = None) -> FixPlan:
        """A sub-plan with only these action kinds and/or customers (not recorded: record it to apply)."""
        ks = set(kinds) if kinds is not None else None
        cs = set(customers) if customers is not None else None
        acts = tuple(
            a for a in self.actions if (ks is None or a.kind in ks) and (cs is None or a.customer_uid in cs)
        )
        return replace(self, actions=acts, plan_id=None, created_at=None)

    def to_dict(self) -> dict[str, Any]:
        return {
            **self._identity(),
            "digest": self.digest,
            "counts": self.counts(),
            "total_amount": self.total_amount,
            "unplanned": [dict(u) for u in self.unplanned],
            "held": [dict(h) for h in self.held],
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
        """Parse a plan saved by :meth:`to_json`; a malformed plan names the action and field."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ActionError(f"not a fix plan (invalid JSON at line {exc.lineno}): {exc.msg}") from exc
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: Any) -> FixPlan:
        if not isinstance(data, dict) or "actions" not in data:
            raise ActionError("not a fix plan (no 'actions')")
        if data.get("version") != PLAN_VERSION:
            raise ActionError(
                f"fix plan of version {data.get('version')!r}; this version reads {PLAN_VERSION}: "
                "re-plan with `portone-recon fix plan`"
            )
        if not isinstance(data["actions"], list):
            raise ActionError("fix plan: 'actions' is not a list")
        actions = tuple(Action.from_dict(a, i) for i, a in enumerate(data["actions"]))
        seen: set[str] = set()
        for a in actions:
            if a.action_id in seen:
                raise ActionError(f"fix plan holds action {a.action_id} twice")
            seen.add(a.action_id)
        params = data.get("params") or {}
        if not isinstance(params, dict):
            raise ActionError("fix plan: 'params' is not an object")
        try:
            as_of = _instant(data.get("as_of"))
            created_at = _instant(data.get("created_at"))
        except ValueError as exc:
            raise ActionError(f"fix plan: {exc}") from exc
        plan = cls(
            actions=actions,
            unplanned=tuple(u for u in data.get("unplanned") or () if isinstance(u, dict)),
            run_id=as_str(data.get("run_id")),
            as_of=as_of,
            params=params,
            held=tuple(h for h in data.get("held") or () if isinstance(h, dict)),
            plan_id=as_str(data.get("plan_id")),
            created_at=created_at,
        )
        if data.get("digest") is not None and data.get("digest") != plan.digest:
            raise ActionError(
                "fix plan was changed after it was written (its digest does not match its content): "
                "re-plan with `portone-recon fix plan`"
            )
        return plan

    @classmethod
    def load(cls, path: str | Path) -> FixPlan:
        """Read a plan file."""
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise ActionError(f"{p}: not a UTF-8 fix plan file: {exc.reason}") from exc
        except OSError as exc:
            raise ActionError(f"{p}: cannot read the fix plan: {exc.strerror}") from exc
        try:
            return cls.from_json(text)
        except ActionError as exc:
            raise ActionError(f"{p}: {exc}") from exc

    def __repr__(self) -> str:
        counts = ", ".join(f"{k} {n}" for k, n in self.counts().items()) or "nothing to do"
        held = f"; {len(self.held)} on hold" if self.held else ""
        return (
            f"FixPlan({len(self.actions)} actions: {counts}; {self.total_amount:,} to charge{held}; "
            f"{len(self.unplanned)} findings left for review)"
        )

    def _repr_html_(self) -> str:
        try:
            head = html.escape(repr(self))
            frame = self.to_frame().drop(columns=["action_id", "finding_id"])
            table = frame.head(50).to_html(index=False, escape=True, formatters={"amount": "{:,}".format})
            more = f"<p>... and {len(frame) - 50} more</p>" if len(frame) > 50 else ""
            held = ""
            if self.held:
                held = "<p><b>On hold (a person must review first)</b></p>" + self.held_frame().head(
                    50
                ).to_html(index=False, escape=True)
            return f"<b>{head}</b>{table}{more}{held}"
        except Exception as exc:  # a repr never raises
            return f"<b>FixPlan</b> <i>(cannot render: {html.escape(type(exc).__name__)})</i>"


def _instant(value: Any) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"instant {value!r} is not ISO 8601 text")
    try:
        return ensure_aware(datetime.fromisoformat(value))
    except ValueError:
        raise ValueError(f"instant {value!r} is not ISO 8601 text") from None


def single_action_plan(actions: Sequence[Action], as_of: datetime | None = None, **params: Any) -> FixPlan:
    """A plan of a person's own one-off actions (the reverify/rebook helpers)."""
    return FixPlan(tuple(actions), (), None, as_of, {"origin": "manual", **params})
