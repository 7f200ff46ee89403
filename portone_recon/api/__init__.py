"""PortOne V1 API: the client, its typed records, token cache, transport (retries), paging, windows.

Speaks HTTP only (never imports duckdb or pandas).
"""

from portone_recon.api.client import PortOneClient
from portone_recon.api.envelope import RawPage, error_class_for_status
from portone_recon.api.models import (
    BillingKey,
    CancelRecord,
    MultiResult,
    Page,
    Payment,
    Schedule,
    Token,
)
from portone_recon.api.retry import backoff_seconds, retry_decision
from portone_recon.api.windows import payment_windows, schedule_windows

__all__ = [
    "BillingKey",
    "CancelRecord",
    "MultiResult",
    "Page",
    "Payment",
    "PortOneClient",
    "RawPage",
    "Schedule",
    "Token",
    "backoff_seconds",
    "error_class_for_status",
    "payment_windows",
    "retry_decision",
    "schedule_windows",
]
