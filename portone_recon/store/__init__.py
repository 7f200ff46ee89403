"""The DuckDB store: open, migrate, locking policy, transactions."""

from portone_recon.store.store import TABLES, Store, atomic, existing_store, open_store

__all__ = ["TABLES", "Store", "atomic", "existing_store", "open_store"]
