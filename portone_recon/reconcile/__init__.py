"""Reconciliation: one SQL rule per finding kind, a runner, and the result people look at.

``reconcile(store, as_of=None, grace="15min")`` runs every rule of design.md §5 in one read snapshot,
records the run (``recon_runs``) and its findings (``findings``), and returns a :class:`ReconResult` with
what is new and what was resolved since the previous run. ``load_rule(kind)`` gives a rule's SQL text.
``acknowledge`` / ``unacknowledge`` record what people decided about a finding (``triage``).
"""

from portone_recon.reconcile.kinds import (
    AMOUNT_AT_RISK,
    FINDING_KINDS,
    KIND_SEVERITY,
    SEVERITIES,
    SUGGESTED_ACTIONS,
)
from portone_recon.reconcile.result import FINDING_COLUMNS, TRIAGE_COLUMNS, ReconResult
from portone_recon.reconcile.rules import load_rule, rule_description
from portone_recon.reconcile.runner import load_result, reconcile
from portone_recon.reconcile.triage import (
    TriageEntry,
    acknowledge,
    active_triage,
    triage_history,
    unacknowledge,
)

__all__ = [
    "AMOUNT_AT_RISK",
    "FINDING_COLUMNS",
    "FINDING_KINDS",
    "KIND_SEVERITY",
    "SEVERITIES",
    "SUGGESTED_ACTIONS",
    "TRIAGE_COLUMNS",
    "ReconResult",
    "TriageEntry",
    "acknowledge",
    "active_triage",
    "load_result",
    "load_rule",
    "reconcile",
    "rule_description",
    "triage_history",
    "unacknowledge",
]
