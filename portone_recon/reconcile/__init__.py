"""Reconciliation: one SQL rule per finding kind, a runner, and the result people look at.

``reconcile(store, as_of=None, grace="15min")`` runs every rule of design.md §5 in one read snapshot,
records the run (``recon_runs``) and its findings (``findings``), and returns a :class:`ReconResult` with
what is new and what was resolved since the previous run. ``load_rule(kind)`` gives a rule's SQL text.
"""

from portone_recon.reconcile.kinds import (
    AMOUNT_AT_RISK,
    FINDING_KINDS,
    KIND_SEVERITY,
    SEVERITIES,
    SUGGESTED_ACTIONS,
)
from portone_recon.reconcile.result import FINDING_COLUMNS, ReconResult
from portone_recon.reconcile.rules import load_rule, rule_description
from portone_recon.reconcile.runner import load_result, reconcile

__all__ = [
    "AMOUNT_AT_RISK",
    "FINDING_COLUMNS",
    "FINDING_KINDS",
    "KIND_SEVERITY",
    "SEVERITIES",
    "SUGGESTED_ACTIONS",
    "ReconResult",
    "load_result",
    "load_rule",
    "reconcile",
    "rule_description",
]
