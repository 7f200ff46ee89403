"""The store's record of fix plans: the authority apply trusts, not a plan file.

``record_plan`` checks that every action of a plan is exactly what the planner makes of a finding stored
in the store (or, for a person's one-off action, that it is well formed), stamps the plan with an id and
its creation instant, and records it with its digest. ``recorded_plan`` finds a plan's record and
``first_difference`` names where a plan file departs from it. ``derive_actions`` re-plans stored findings
with today's subscriptions: apply uses it right before sending, so an action whose finding or
subscription changed since the plan was made is skipped rather than sent.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd

from portone_recon.actions.model import Action, FixPlan, canonical, clean
from portone_recon.actions.plan import Planner, PlanSettings
from portone_recon.actions.requests import build_request
from portone_recon.actions.subscriptions import Subscriptions
from portone_recon.errors import ActionError, PlanRefusedError
from portone_recon.store import Store

#: Target fields that the planner does not derive from a finding: compared separately.
_FREE_TARGET_FIELDS = frozenset({"held_by"})


@dataclass(frozen=True)
class PlanRecord:
    """One recorded plan."""

    plan: FixPlan
    digest: str
    origin: str


def _origin(plan: FixPlan) -> str:
    return "manual" if plan.params.get("origin") == "manual" else "findings"


def check_well_formed(plan: FixPlan) -> None:
    """Every action's request can be built from its target (else the action and field are named)."""
    for i, a in enumerate(plan.actions):
        try:
            build_request(a.kind, a.target)
        except ActionError as exc:
            raise PlanRefusedError(f"action {i + 1} ({a.action_id}): {exc}") from None


def stored_findings(store: Store, run_id: str, finding_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The stored finding rows of a run, by finding_id (only the ids asked for)."""
    ids = sorted({i for i in finding_ids if i})
    if not ids:
        return {}
    with store.connect() as con:
        frame = con.execute(
            "SELECT * FROM findings WHERE run_id = $run AND list_contains($ids, finding_id)",
            {"run": run_id, "ids": ids},
        ).df()
    return {str(r["finding_id"]): {str(k): clean(v) for k, v in r.items()} for r in frame.to_dict("records")}


def derive_actions(
    store: Store, plan: FixPlan, subscriptions: Subscriptions | None = None
) -> dict[str, Action | str]:
    """What the planner makes today of each action's stored finding: the action, or why there is none.

    Keyed by the plan's action ids; an action without a finding (a person's one-off) is absent.
    """
    wanted = [a for a in plan.actions if a.finding_id]
    if not wanted:
        return {}
    if plan.run_id is None or plan.as_of is None:
        return {a.action_id: "the plan names no reconciliation run" for a in wanted}
    rows = stored_findings(store, plan.run_id, [str(a.finding_id) for a in wanted])
    subs = subscriptions if subscriptions is not None else Subscriptions.from_store(store)
    planner = Planner(plan.as_of, subs, PlanSettings.from_params(plan.params))
    out: dict[str, Action | str] = {}
    for a in wanted:
        row = rows.get(str(a.finding_id))
        if row is None:
            out[a.action_id] = f"finding {a.finding_id} is not in reconciliation run {plan.run_id}"
            continue
        made, why = planner.for_finding(row)
        match = next((m for m in made if m.action_id == a.action_id), None)
        out[a.action_id] = (
            match if match is not None else f"the finding no longer calls for it ({why or 'other action'})"
        )
    return out


def difference(recorded: Action, derived: Action) -> str | None:
    """The first field in which a recorded action differs from what the planner derives, or None."""
    for name in ("kind", "amount", "finding_id", "finding_kind"):
        if getattr(recorded, name) != getattr(derived, name):
            return f"{name}: {getattr(recorded, name)!r} != {getattr(derived, name)!r}"
    keys = sorted((set(recorded.target) | set(derived.target)) - _FREE_TARGET_FIELDS)
    for k in keys:
        if canonical(recorded.target.get(k)) != canonical(derived.target.get(k)):
            return f"target.{k}: {recorded.target.get(k)!r} != {derived.target.get(k)!r}"
    return None


def validate_against_findings(store: Store, plan: FixPlan) -> None:
    """Refuse a plan any of whose actions is not what the planner makes of a stored finding."""
    if _origin(plan) == "manual":
        if any(a.finding_id for a in plan.actions):
            raise PlanRefusedError("a one-off plan cannot carry actions that name findings")
        if any(a.kind not in ("reverify", "rebook") for a in plan.actions):
            raise PlanRefusedError("a one-off plan holds only reverify and rebook actions")
        return
    derived = derive_actions(store, plan)
    for i, a in enumerate(plan.actions):
        if not a.finding_id:
            raise PlanRefusedError(f"action {i + 1} ({a.action_id}) answers no finding")
        got = derived.get(a.action_id)
        if isinstance(got, str) or got is None:
            raise PlanRefusedError(f"action {i + 1} ({a.action_id}): {got or 'unknown action'}")
        diff = difference(a, got)
        if diff:
            raise PlanRefusedError(
                f"action {i + 1} ({a.action_id}) is not what finding {a.finding_id} means: {diff}"
            )
        if a.held_by and not plan.params.get("include_held"):
            raise PlanRefusedError(
                f"action {i + 1} ({a.action_id}) is marked held but the plan excludes held"
            )


def record_plan(store: Store, plan: FixPlan, *, now: datetime) -> FixPlan:
    """Validate a plan against the store's findings, stamp it and record it. Returns the stamped plan.

    A plan that already carries a ``plan_id`` must equal its record (nothing is recorded twice).
    """
    if plan.plan_id is not None:
        return recorded_plan(store, plan).plan
    check_well_formed(plan)
    validate_against_findings(store, plan)
    stamped = plan.stamped(now)
    body = json.dumps([a.to_dict() for a in stamped.actions], ensure_ascii=False, default=str)
    with store.transaction() as con:
        con.execute(
            "INSERT INTO fix_plans (plan_id, digest, created_at, run_id, as_of, origin, params, actions, "
            "action_count) VALUES ($id, $digest, $created, $run, $as_of, $origin, $params::JSON, "
            "$actions::JSON, $n) ON CONFLICT DO NOTHING",
            {
                "id": stamped.plan_id,
                "digest": stamped.digest,
                "created": stamped.created_at,
                "run": stamped.run_id,
                "as_of": stamped.as_of,
                "origin": _origin(stamped),
                "params": json.dumps(dict(stamped.params), ensure_ascii=False, default=str),
                "actions": body,
                "n": len(stamped.actions),
            },
        )
    return stamped


def _load_record(store: Store, plan_id: str) -> PlanRecord | None:
    with store.connect() as con:
        row = con.execute(
            "SELECT digest, created_at, run_id, as_of, origin, params::VARCHAR, actions::VARCHAR "
            "FROM fix_plans WHERE plan_id = ?",
            [plan_id],
        ).fetchone()
    if row is None:
        return None
    digest, created_at, run_id, as_of, origin, params, actions = row
    plan = FixPlan(
        actions=tuple(Action.from_dict(a, i) for i, a in enumerate(json.loads(actions))),
        run_id=run_id,
        as_of=_aware(as_of),
        params=json.loads(params) if params else {},
        plan_id=plan_id,
        created_at=_aware(created_at),
    )
    return PlanRecord(plan, str(digest), str(origin))


def _aware(value: Any) -> datetime | None:
    if value is None:
        return None
    ts = value if isinstance(value, datetime) else pd.Timestamp(value).to_pydatetime()
    return ts


def recorded_plan(store: Store, plan: FixPlan) -> PlanRecord:
    """The store's record of ``plan``; refused (naming the first difference) when the plan departs from it."""
    if plan.plan_id is None:
        raise PlanRefusedError("the plan has no plan_id: it was not recorded; make it with `fix plan`")
    record = _load_record(store, plan.plan_id)
    if record is None:
        raise PlanRefusedError(
            f"plan {plan.plan_id} is not recorded in {store.path} (made for another store, or invented): "
            "re-plan with `portone-recon fix plan`"
        )
    diff = first_difference(plan, record.plan)
    if diff is not None or record.plan.digest != record.digest:
        raise PlanRefusedError(
            f"plan {plan.plan_id} differs from the plan recorded in the store: {diff or 'digest'}; "
            "a plan file is a view, not an instruction - re-plan with `portone-recon fix plan`"
        )
    return record


def first_difference(given: FixPlan, recorded: FixPlan) -> str | None:
    """Where ``given`` first departs from ``recorded`` (identity, then action by action), or None."""
    for name in ("plan_id", "run_id"):
        if getattr(given, name) != getattr(recorded, name):
            return f"{name}: {getattr(given, name)!r}, recorded {getattr(recorded, name)!r}"
    for name in ("as_of", "created_at"):
        a, b = getattr(given, name), getattr(recorded, name)
        if (a is None) != (b is None) or (a is not None and b is not None and a != b):
            return f"{name}: {a}, recorded {b}"
    if canonical(dict(given.params)) != canonical(dict(recorded.params)):
        return f"params: {dict(given.params)}, recorded {dict(recorded.params)}"
    return _first_action_difference(given.actions, recorded.actions)


def _first_action_difference(given: Sequence[Action], recorded: Sequence[Action]) -> str | None:
    for i, (g, r) in enumerate(zip(given, recorded, strict=False)):
        gd, rd = g.to_dict(), r.to_dict()
        if gd == rd:
            continue
        for key in ("action_id", "kind", "amount", "finding_id", "finding_kind", "reason"):
            if gd[key] != rd[key]:
                return f"action {i + 1} ({r.action_id}) field {key}: {gd[key]!r}, recorded {rd[key]!r}"
        for section in ("target", "request"):
            diff = _dict_difference(gd[section], rd[section])
            if diff:
                return f"action {i + 1} ({r.action_id}) field {section}.{diff}"
        return f"action {i + 1} ({r.action_id}) differs"
    if len(given) > len(recorded):
        extra = given[len(recorded)]
        return f"action {len(recorded) + 1} ({extra.action_id}) is not in the recorded plan"
    if len(given) < len(recorded):
        gone = recorded[len(given)]
        return f"recorded action {len(given) + 1} ({gone.action_id}) is missing from the plan"
    return None


def _dict_difference(given: Mapping[str, Any], recorded: Mapping[str, Any]) -> str | None:
    for k in sorted(set(given) | set(recorded)):
        if canonical(given.get(k)) != canonical(recorded.get(k)):
            return f"{k}: {given.get(k)!r}, recorded {recorded.get(k)!r}"
    return None
