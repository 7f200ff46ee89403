"""Reports: papermill notebooks (shipped in ``reports/notebooks/``) and the library they call.

- :func:`run_report` executes a report notebook, exports HTML without code and writes ``summary.json``.
- :func:`build_daily`, :func:`build_monthly`, :func:`build_fixup` build what each notebook shows.
- :mod:`~portone_recon.reports.metrics` holds the SQL metrics (DataFrames) behind them.

Chart and notebook modules are imported on first use, so the CLI starts fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from portone_recon.reports.runner import NOTEBOOKS, ReportResult, run_report

if TYPE_CHECKING:
    from portone_recon.reports.daily import DailyReport, build_daily
    from portone_recon.reports.fixup import FixupReport, build_fixup
    from portone_recon.reports.monthly import MonthlyReport, build_monthly

_LAZY = {
    "DailyReport": "portone_recon.reports.daily",
    "build_daily": "portone_recon.reports.daily",
    "FixupReport": "portone_recon.reports.fixup",
    "build_fixup": "portone_recon.reports.fixup",
    "MonthlyReport": "portone_recon.reports.monthly",
    "build_monthly": "portone_recon.reports.monthly",
}

__all__ = [
    "NOTEBOOKS",
    "DailyReport",
    "FixupReport",
    "MonthlyReport",
    "ReportResult",
    "build_daily",
    "build_fixup",
    "build_monthly",
    "run_report",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'portone_recon.reports' has no attribute {name!r}")
