"""The one place where reports call the other areas (sync, reconcile, actions, api).

Imports are lazy: a report that only reads the store does not need them, and a missing piece fails
with a :class:`ReportError` naming it. Progress bars are off: a report's output is its HTML.
"""

from __future__ import annotations

import importlib
from datetime import datetime
from typing import Any

import pandas as pd

from portone_recon.errors import ReportError
from portone_recon.store import Store


def _attr(module: str, name: str) -> Any:
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ReportError(f"{module}.{name} is not available in this installation: {exc}") from exc


def make_client_from_env() -> Any:
    """A PortOneClient from PORTONE_* settings (the secret stays in the environment, never a parameter)."""
    client_cls = _attr("portone_recon.api", "PortOneClient")
    return client_cls.from_env()


def fixup_client_from_env(store: Store) -> Any:
    """The client fix-ups are sent with, from PORTONE_* settings (with a V2 secret, each customer's
    fix-ups go to the API holding its key); None without credentials."""
    settings = _attr("portone_recon.config", "Settings").from_env()
    return _attr("portone_recon.actions.v2_client", "fixup_client")(settings, store)


def sync_store(store: Store, client: Any | None = None) -> Any:
    """Pull PortOne into the store (the client comes from the environment unless given)."""
    sync = _attr("portone_recon.sync", "sync")
    return sync(client if client is not None else make_client_from_env(), store, progress=False)


def reconcile_store(store: Store, as_of: datetime, grace: str) -> Any:
    """Run every reconciliation rule; returns the ReconResult (its run is stored)."""
    reconcile = _attr("portone_recon.reconcile", "reconcile")
    return reconcile(store, as_of=as_of, grace=grace, progress=False)


def plan_for_run(store: Store, run_id: str, kinds: list[str] | None = None) -> Any:
    """The FixPlan ``portone-recon fix plan --run-id RUN`` would produce (nothing is sent or recorded)."""
    return _attr("portone_recon.actions", "plan_for_store")(store, run_id, kinds)


def plan_frame(plan: Any, client: Any | None = None) -> pd.DataFrame:
    """A plan as a DataFrame (one row per action), each request in the form ``client`` sends it."""
    frame = _attr("portone_recon.actions.preview", "plan_frame")(plan, client)
    if not isinstance(frame, pd.DataFrame):  # pragma: no cover - contract of actions
        raise ReportError("actions: FixPlan.to_frame() did not return a DataFrame")
    return frame


def held_frame(plan: Any) -> pd.DataFrame:
    """The money-moving actions a plan holds back for a person's review, with the finding that holds each."""
    frame = plan.held_frame()
    if not isinstance(frame, pd.DataFrame):  # pragma: no cover - contract of actions
        raise ReportError("actions: FixPlan.held_frame() did not return a DataFrame")
    return frame


def apply_plan(
    plan: Any, client: Any, store: Store, *, max_actions: int, max_amount: int, dry_run: bool
) -> pd.DataFrame:
    """Apply (or dry-run) a plan through apply's gate and caps; returns its outcomes, one row per action."""
    apply = _attr("portone_recon.actions", "apply")
    report = apply(
        plan, client, store, dry_run=dry_run, max_actions=max_actions, max_amount=max_amount, progress=False
    )
    outcomes = report.outcomes
    if not isinstance(outcomes, pd.DataFrame):  # pragma: no cover - contract of actions
        raise ReportError("actions: ApplyReport.outcomes is not a DataFrame")
    return outcomes
