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
