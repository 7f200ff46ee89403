"""Sandbox test fixtures (helpers live in sandbox_test_helpers.py, importable from these tests)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from sandbox_test_helpers import http, world

__all__ = ["http", "world"]
