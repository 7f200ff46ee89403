"""The DuckDB store: open, migrate, locking policy, transactions."""

from portone_recon.store.store import TABLES, Store, open_store

__all__ = ["TABLES", "Store", "open_store"]
