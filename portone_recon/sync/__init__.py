"""Sync PortOne V1 into the DuckDB store: :func:`sync` returns a :class:`SyncReport`."""

from portone_recon.sync.engine import portone_now, sync
from portone_recon.sync.report import StreamResult, SyncReport, TableCounts

__all__ = ["StreamResult", "SyncReport", "TableCounts", "portone_now", "sync"]
