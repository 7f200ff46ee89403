"""How a resolved finding went away: fixed by a journaled fix-up action, or gone from the data.

A finding is resolved when a run no longer reports it. When the action journal (``actions``) holds a
succeeded action planned for the same ``finding_id``, the fix-up did it; otherwise the data changed on its
own (a late webhook, an order fixed by hand, a sync that brought the missing payment).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from portone_recon._time import KST
from portone_recon.store import Store

#: Columns :func:`how_resolved` adds.
RESOLUTION_COLUMNS = ("resolved_how", "fixed_by_action", "fixed_by_action_id", "fixed_at")


def how_resolved(store: Store | str | Path, resolved: pd.DataFrame) -> pd.DataFrame:
    """``resolved`` (findings with ``finding_id``) plus :data:`RESOLUTION_COLUMNS`.

    ``resolved_how`` is ``"fixed by <kind> <action_id>"`` or ``"gone from the data"``; ``fixed_by_action``
    the action kind (reverify, rebook, retry, unschedule), ``fixed_at`` when it succeeded (KST).
    """
    st = store if isinstance(store, Store) else Store(store)
    ids = [str(f) for f in resolved["finding_id"]] if len(resolved) else []
    fixes: dict[str, tuple[str, str, datetime | None]] = {}
    if ids and st.path.exists():
        with st.connect(read_only=True) as con:
            fixes = succeeded_actions(con, ids)
    out = resolved.copy()
    found = [fixes.get(str(f)) for f in out["finding_id"]] if len(out) else []
    out["fixed_by_action"] = pd.Series([f[0] if f else None for f in found], index=out.index, dtype="object")
    out["fixed_by_action_id"] = pd.Series(
        [f[1] if f else None for f in found], index=out.index, dtype="object"
    )
    fixed_at: list[Any] = [f[2] if f else None for f in found]
    out["fixed_at"] = pd.Series(pd.to_datetime(fixed_at, utc=True), index=out.index).dt.tz_convert(KST)
    out["resolved_how"] = pd.Series(
        [f"fixed by {f[0]} {f[1]}" if f else "gone from the data" for f in found],
        index=out.index,
        dtype="object",
    )
    return out


def succeeded_actions(
    con: duckdb.DuckDBPyConnection, finding_ids: list[str]
) -> dict[str, tuple[str, str, datetime | None]]:
    """The latest succeeded action of each finding: (kind, action_id, updated_at)."""
    rows = con.execute(
        "SELECT finding_id, arg_max(kind, updated_at), arg_max(action_id, updated_at), max(updated_at) "
        "FROM actions WHERE status = 'succeeded' AND list_contains($ids, finding_id) GROUP BY finding_id",
        {"ids": finding_ids},
    ).fetchall()
    return {str(r[0]): (str(r[1]), str(r[2]), r[3]) for r in rows}
