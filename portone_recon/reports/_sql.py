"""Load this package's ``.sql`` files by name and run them read-only against a store."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import duckdb
import pandas as pd

from portone_recon.errors import StoreError
from portone_recon.store import Store

SQL_PACKAGE = "portone_recon.reports"


@cache
def load_sql(name: str) -> str:
    """The text of ``sql/<name>.sql`` shipped with the package."""
    return (resources.files(SQL_PACKAGE) / "sql" / f"{name}.sql").read_text(encoding="utf-8")


def run_sql(store: Store, name: str, params: dict[str, Any] | None = None) -> pd.DataFrame:
    """Run the named query on a read-only connection; times come back in Asia/Seoul."""
    sql = load_sql(name)
    with store.connect(read_only=True) as con:
        try:
            return con.execute(sql, params or {}).df()
        except duckdb.Error as exc:
            raise StoreError(f"{store.path}: report query {name}.sql failed: {exc}") from exc
