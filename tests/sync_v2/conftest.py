"""Puts this folder's helpers and the V2 contract folder's small mixed merchant on the import path."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent / "contract_v2"))
