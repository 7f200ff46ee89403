"""Fix-ups: plan them (pure), record them in the store, apply them (gated, journaled, dry-run by default)."""

from portone_recon.actions.apply import (
    DEFAULT_MAX_ACTIONS,
    DEFAULT_MAX_AMOUNT,
    DEFAULT_MAX_PLAN_AGE,
    ApplyReport,
    apply,
)
from portone_recon.actions.journal import StoredRecon, journal_frame, load_recon, plan_for_store
from portone_recon.actions.model import ACTION_KINDS, Action, FixPlan
from portone_recon.actions.plan import plan_fixes, rebook_merchant_uid
from portone_recon.actions.record import record_plan
from portone_recon.actions.single import plan_rebook, rebook, reverify

__all__ = [
    "ACTION_KINDS",
    "DEFAULT_MAX_ACTIONS",
    "DEFAULT_MAX_AMOUNT",
    "DEFAULT_MAX_PLAN_AGE",
    "Action",
    "ApplyReport",
    "FixPlan",
    "StoredRecon",
    "apply",
    "journal_frame",
    "load_recon",
    "plan_fixes",
    "plan_for_store",
    "plan_rebook",
    "rebook",
    "rebook_merchant_uid",
    "record_plan",
    "reverify",
]
