"""What people decided about a finding: acknowledged, explained, won't fix, and until when.

A finding keeps its ``finding_id`` from run to run (a hash of its kind and keys), so a decision made today
still applies tomorrow. Every decision is a row of ``finding_triage`` (history is kept); the latest row of
a finding is its state:

- ``acknowledged``: seen, someone owns it (note optional); with ``until`` it holds through that KST day
  and the finding is open again from the next day.
- ``explained`` / ``wont_fix``: the reason is the note (required).
- ``open``: un-acknowledged; ``resolved``: the finding left the data (written by :func:`reconcile`), so a
  later re-appearance starts open.

Findings with a decision in effect stay in every result and report, but ``--fail-on`` alerts count only
the open ones (``ReconResult.open``).
"""

from __future__ import annotations

import getpass
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from portone_recon._time import KST, now_kst, parse_instant
from portone_recon.config import Settings
from portone_recon.errors import ReconcileError
from portone_recon.store import Store, open_store

#: States that take a finding out of the alerts while they are in effect.
TRIAGE_STATES = ("acknowledged", "explained", "wont_fix")
#: States that need a non-empty note (the reason).
REASON_STATES = frozenset({"explained", "wont_fix"})
#: ``--fail-on`` of ``reconcile`` and ``report``: the least severity of an open finding that alerts.
DEFAULT_FAIL_ON = "high"
#: Its choices ("none": never alert).
FAIL_ON_CHOICES = ("low", "medium", "high", "critical", "none")
#: Columns every findings frame of a result carries after the finding columns.
TRIAGE_COLUMNS = ("triage_state", "triage_note", "triage_by", "triage_until", "age_days")

_TABLE = "finding_triage"
_LATEST = f"""
SELECT finding_id, kind, state, note, actor, decided_at, until
FROM {_TABLE}
QUALIFY row_number() OVER (PARTITION BY finding_id ORDER BY seq DESC) = 1
"""


@dataclass(frozen=True)
class TriageEntry:
    """The decision in effect for one finding.

    Attributes:
        finding_id: the finding's stable id.
        state: acknowledged, explained or wont_fix.
        note: the note or reason (None when an acknowledgement has none).
        by: who decided.
        at: when (Asia/Seoul).
        until: the last KST day it holds (None: until the finding resolves or someone un-acknowledges).
    """

    finding_id: str
    state: str
    note: str | None
    by: str | None
    at: datetime
    until: date | None


def acknowledge(
    store: Store | str | Path | None,
    finding_ids: str | Iterable[str],
    *,
    note: str | None,
    until: date | datetime | str | None = None,
    by: str | None = None,
    state: str = "acknowledged",
) -> list[TriageEntry]:
    """Record a decision for findings (one history row each, one transaction).

    Args:
        store: the store (or its path; None for the default).
        finding_ids: ids as shown in results and reports (``finding_id`` column).
        note: what was seen or agreed; required (non-empty) for ``explained`` and ``wont_fix``.
        until: the last day (KST, ``YYYY-MM-DD``) the decision holds; the finding is open again after it.
        by: who decides (default: the operating-system user).
        state: ``acknowledged``, ``explained`` or ``wont_fix``.

    Returns:
        The entries written.

    Raises:
        ReconcileError: an unknown state, a missing reason, a bad date, or finding ids no run has
            reported (all of them named; nothing is written).
    """
    if state not in TRIAGE_STATES:
        raise ReconcileError(f"unknown triage state {state!r}; states: {', '.join(TRIAGE_STATES)}")
    text = (note or "").strip() or None
    if state in REASON_STATES and text is None:
        raise ReconcileError(f"state {state!r} needs a note giving the reason")
    last_day = _parse_until(until)
    who = (by or "").strip() or _default_user()
    ids = _ids(finding_ids)
    at = now_kst()
    st = _as_store(store)
    with st.transaction() as con:
        kinds = _known(con, ids, st.path)
        con.executemany(
            f"INSERT INTO {_TABLE} (finding_id, kind, state, note, actor, decided_at, until) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [[fid, kinds[fid], state, text, who, at, last_day] for fid in ids],
        )
    return [TriageEntry(fid, state, text, who, at, last_day) for fid in ids]


def unacknowledge(store: Store | str | Path | None, finding_ids: str | Iterable[str]) -> int:
    """Make findings open again (one ``open`` history row each). Returns how many had a decision.

    Raises:
        ReconcileError: finding ids no run has reported (named; nothing is written).
    """
    ids = _ids(finding_ids)
    st = _as_store(store)
    at = now_kst()
    with st.transaction() as con:
        kinds = _known(con, ids, st.path)
        had = len(
            [e for e in _latest(con).values() if e["finding_id"] in kinds and e["state"] in TRIAGE_STATES]
        )
        con.executemany(
            f"INSERT INTO {_TABLE} (finding_id, kind, state, actor, decided_at) VALUES (?, ?, 'open', ?, ?)",
            [[fid, kinds[fid], _default_user(), at] for fid in ids],
        )
    return had


def active_triage(
    store: Store | str | Path | None = None, at: datetime | None = None
) -> dict[str, TriageEntry]:
    """The decisions in effect at ``at`` (default now), by finding_id.

    Every decision counts however late it was made (an acknowledgement made after a run applies to that
    run's findings); ``at`` decides only whether an ``until`` day has passed.
    """
    st = _reader(store)
    if not st.path.exists():
        return {}
    with st.connect(read_only=True) as con:
        return active_in(con, now_kst() if at is None else at)


def triage_history(store: Store | str | Path | None = None, finding_id: str | None = None) -> pd.DataFrame:
    """Every decision recorded (oldest first), optionally for one finding."""
    st = _reader(store)
    if not st.path.exists():
        raise ReconcileError(f"{st.path}: no such store")
    with st.connect(read_only=True) as con:
        if not _has_table(con):
            return pd.DataFrame(
                columns=["finding_id", "kind", "state", "note", "by", "at", "until", "run_id"]
            )
        df = con.execute(
            'SELECT finding_id, kind, state, note, actor AS "by", decided_at AS "at", until, run_id '
            f"FROM {_TABLE} WHERE $id IS NULL OR finding_id = $id ORDER BY seq",
            {"id": finding_id},
        ).df()
    if isinstance(df["at"].dtype, pd.DatetimeTZDtype):
        df["at"] = df["at"].dt.tz_convert(KST)
    return df


# -- used by the reconcile runner (inside its transaction) ----------------------------------------


def active_in(con: duckdb.DuckDBPyConnection, at: datetime) -> dict[str, TriageEntry]:
    """:func:`active_triage` on an open connection (a store without the table has no decisions)."""
    day = at.astimezone(KST).date()
    out: dict[str, TriageEntry] = {}
    for e in _latest(con).values():
        until = e["until"]
        if e["state"] not in TRIAGE_STATES or (until is not None and until < day):
            continue
        out[e["finding_id"]] = TriageEntry(
            e["finding_id"], e["state"], e["note"], e["actor"], e["at"].astimezone(KST), until
        )
    return out


def clear_resolved(con: duckdb.DuckDBPyConnection, run_id: str, kinds: Iterable[str]) -> int:
    """Close the decisions of findings (of ``kinds``) that run ``run_id`` no longer reports.

    Each gets a ``resolved`` history row, so the finding starts open should it come back. Returns how
    many were closed.
    """
    if not _has_table(con):
        return 0
    row = con.execute(
        f"""
        INSERT INTO {_TABLE} (finding_id, kind, state, note, actor, decided_at, run_id)
        SELECT t.finding_id, t.kind, 'resolved', 'not reported by run ' || $run_id, 'reconcile', $at, $run_id
        FROM ({_LATEST}) t
        WHERE list_contains($states, t.state) AND list_contains($kinds, t.kind)
          AND t.finding_id NOT IN (SELECT finding_id FROM findings WHERE run_id = $run_id)
        """,
        {"run_id": run_id, "at": now_kst(), "states": list(TRIAGE_STATES), "kinds": list(kinds)},
    ).fetchone()
    return int(row[0]) if row else 0


def with_triage(df: pd.DataFrame, entries: Mapping[str, TriageEntry], as_of: datetime) -> pd.DataFrame:
    """``df`` (findings with ``finding_id`` and ``first_seen``) plus :data:`TRIAGE_COLUMNS`.

    ``triage_state`` is None for an open finding; ``age_days`` counts KST calendar days from
    ``first_seen`` to ``as_of`` (0 on the day it was first seen).
    """
    out = df.copy()
    ids = out["finding_id"].astype(str) if len(out) else pd.Series([], dtype="object")
    found = [entries.get(fid) for fid in ids]
    out["triage_state"] = pd.Series([e.state if e else None for e in found], index=out.index, dtype="object")
    out["triage_note"] = pd.Series([e.note if e else None for e in found], index=out.index, dtype="object")
    out["triage_by"] = pd.Series([e.by if e else None for e in found], index=out.index, dtype="object")
    out["triage_until"] = pd.Series([e.until if e else None for e in found], index=out.index, dtype="object")
    day = pd.Timestamp(as_of.astimezone(KST).date())
    first = pd.to_datetime(out["first_seen"], utc=True).dt.tz_convert(KST).dt.tz_localize(None).dt.normalize()
    out["age_days"] = (day - first).dt.days.astype("Int64")
    return out


# -- helpers -------------------------------------------------------------------------------------


def _as_store(store: Store | str | Path | None) -> Store:
    return store if isinstance(store, Store) else open_store(store)


def _reader(store: Store | str | Path | None) -> Store:
    """A store to read without creating or migrating it (a reader never writes)."""
    if isinstance(store, Store):
        return store
    return Store(store) if store is not None else Store.from_settings(Settings.from_env())


def _default_user() -> str | None:
    try:
        return getpass.getuser()
    except Exception:  # no user name in this environment (some containers, Windows services)
        return None


def _ids(finding_ids: str | Iterable[str]) -> list[str]:
    raw = [finding_ids] if isinstance(finding_ids, str) else list(finding_ids)
    ids = list(dict.fromkeys(str(f).strip() for f in raw if str(f).strip()))
    if not ids:
        raise ReconcileError("no finding id given")
    return ids


def _parse_until(until: date | datetime | str | None) -> date | None:
    if until is None or until == "":
        return None
    if isinstance(until, datetime):
        return until.astimezone(KST).date() if until.tzinfo else until.date()
    if isinstance(until, date):
        return until
    try:
        return parse_instant(str(until)).astimezone(KST).date()
    except ValueError:
        raise ReconcileError(f"until must be a date YYYY-MM-DD, got {until!r}") from None


def _has_table(con: duckdb.DuckDBPyConnection) -> bool:
    row = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [_TABLE]).fetchone()
    return bool(row and row[0])


def _latest(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, Any]]:
    if not _has_table(con):
        return {}
    cols = ("finding_id", "kind", "state", "note", "actor", "at", "until")
    return {str(r[0]): dict(zip(cols, r, strict=True)) for r in con.execute(_LATEST).fetchall()}


def _known(con: duckdb.DuckDBPyConnection, ids: list[str], path: Path) -> dict[str, str]:
    """The kind of every id (from the latest run reporting it); refuses ids no run has reported."""
    rows = con.execute(
        "SELECT f.finding_id, arg_max(f.kind, r.started_at) FROM findings f "
        "JOIN recon_runs r USING (run_id) WHERE list_contains($ids, f.finding_id) GROUP BY f.finding_id",
        {"ids": ids},
    ).fetchall()
    kinds = {str(r[0]): str(r[1]) for r in rows}
    unknown = [fid for fid in ids if fid not in kinds]
    if unknown:
        raise ReconcileError(
            f"{path}: unknown finding id(s) {', '.join(unknown)}: no reconciliation run reported them "
            "(see `portone-recon findings --state all`); nothing was written"
        )
    return kinds
