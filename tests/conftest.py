"""Shared fixtures: no test sees the developer's PORTONE_* variables or touches the live API."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from portone_recon.store import Store


@pytest.fixture(autouse=True)
def _clean_portone_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        keep = name.startswith("PORTONE_RECON_TEST_") or name == "PORTONE_RECON_REQUIRE_SQL"
        if name.startswith("PORTONE_") and not keep:
            monkeypatch.delenv(name, raising=False)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    """A fresh, migrated store in a temporary folder."""
    s = Store(tmp_path / "test.duckdb", lock_timeout=2.0)
    s.migrate()
    return s


#: The SQL servers the SQL-source tests run against, and the variable holding each one's URL.
SQL_SERVERS = {"postgresql": "PORTONE_RECON_TEST_PG_URL", "mariadb": "PORTONE_RECON_TEST_MYSQL_URL"}


@pytest.fixture(params=sorted(SQL_SERVERS))
def sql_url(request: pytest.FixtureRequest) -> str:
    """Each SQL server's URL (from .ci/run); skips without it, fails when PORTONE_RECON_REQUIRE_SQL=1."""
    var = SQL_SERVERS[request.param]
    value = os.environ.get(var)
    if not value:
        reason = f"{var} not set ({request.param} SQL-source tests)"
        if os.environ.get("PORTONE_RECON_REQUIRE_SQL") == "1":
            pytest.fail(f"{reason} but PORTONE_RECON_REQUIRE_SQL=1")
        pytest.skip(reason)
    return value
