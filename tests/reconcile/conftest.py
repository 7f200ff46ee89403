"""Fixtures of the reconciliation tests (the builder lives in _recon_world.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from _recon_world import World

from portone_recon.store import Store


@pytest.fixture
def world(store: Store) -> World:
    return World(store)
