"""Fix-ups: plan them (pure), apply them (journaled, idempotent, dry-run by default)."""

from portone_recon.actions.apply import ApplyReport, apply
from portone_recon.actions.journal import StoredRecon, journal_frame, load_recon
from portone_recon.actions.plan import ACTION_KINDS, Action, FixPlan, plan_fixes, rebook_merchant_uid
from portone_recon.actions.single import plan_rebook, rebook, reverify

__all__ = [
    "ACTION_KINDS",
    "Action",
    "ApplyReport",
    "FixPlan",
    "StoredRecon",
    "apply",
    "journal_frame",
    "load_recon",
    "plan_fixes",
    "plan_rebook",
    "rebook",
    "rebook_merchant_uid",
    "reverify",
]
