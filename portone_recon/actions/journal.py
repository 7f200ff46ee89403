"""The action journal (the ``actions`` table), the one-apply-at-a-time lock, and stored findings.

Journal life cycle of one action (each step committed on its own, before and after the call)::

    planned -> sending -> succeeded | failed | skipped | unknown | failed_retryable
                 \\______ a crash here leaves 'sending': the next apply resolves it by reading

``result`` (JSON) keeps ``pre`` (what was read right before sending, e.g. the payment attempts already on
a merchant_uid), ``sent_at`` and the response or evidence. Statuses ``succeeded``/``failed``/``skipped`` are
final: applying the same plan again never repeats them. ``sending``/``unknown`` are resolved by a read, and
so is ``failed_retryable`` (PortOne answered a write with 429 or 5xx): the next apply reads first and sends
again only when the read proves nothing happened.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import filelock
import pandas as pd

from portone_recon._time import KST
from portone_recon.actions.model import Action, FixPlan
from portone_recon.errors import ActionError, ApplyInProgressError
from portone_recon.reconcile import triage
from portone_recon.store import Store

FINAL = frozenset({"succeeded", "failed", "skipped"})
UNRESOLVED = frozenset({"sending", "unknown", "failed_retryable"})
STATUSES = ("planned", "sending", "succeeded", "failed", "skipped", "unknown", "failed_retryable")


def _now() -> datetime:
    return datetime.now(tz=KST)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


@dataclass(frozen=True)
class JournalRow:
    """One row of the ``actions`` table."""

    action_id: str
    kind: str
    status: str
    attempts: int
    result: Mapping[str, Any]
    message: str | None
    plan_id: str | None = None

    def done_for(self, plan_id: str | None) -> bool:
        """Final for this plan: succeeded or failed, or skipped by this same (recorded) plan."""
        if self.status == "skipped":
            return plan_id is not None and self.plan_id == plan_id
        return self.status in FINAL


def _row(values: Sequence[Any]) -> JournalRow:
    action_id, kind, status, attempts, result, message, plan_id = values
    parsed: Any = json.loads(result) if isinstance(result, str) and result else {}
    return JournalRow(
        str(action_id),
        str(kind),
        str(status),
        int(attempts),
        parsed if isinstance(parsed, dict) else {},
        message,
        plan_id,
    )


def ensure_planned(
    store: Store, actions: Sequence[Action], plan_id: str | None = None
) -> dict[str, JournalRow]:
    """Journal every action not journaled yet as ``planned`` (one transaction); return all their rows.

    An action another plan skipped (nothing was sent) is ``planned`` again for this plan: the state that
    made it unnecessary may have changed. Succeeded and failed actions stay final.
    """
    if not actions:
        return {}
    now = _now()
    frame = pd.DataFrame(
        {
            "action_id": [a.action_id for a in actions],
            "kind": [a.kind for a in actions],
            "finding_id": [a.finding_id for a in actions],
            "target": [_dumps(dict(a.target)) for a in actions],
            "request": [_dumps(dict(a.request)) for a in actions],
            "amount": pd.array([a.amount for a in actions], dtype="Int64"),
        }
    )
    with store.transaction() as con:
        con.register("_plan_actions", frame)
        con.execute(
            """
            INSERT INTO actions (action_id, kind, status, finding_id, target, request, amount, attempts,
                                 result, message, created_at, updated_at, plan_id)
            SELECT p.action_id, p.kind, 'planned', p.finding_id, p.target::JSON, p.request::JSON, p.amount, 0,
                   NULL, NULL, $now, $now, $plan
            FROM _plan_actions p
            WHERE p.action_id NOT IN (SELECT action_id FROM actions)
            """,
            {"now": now, "plan": plan_id},
        )
        if plan_id is not None:
            con.execute(
                "UPDATE actions SET status = 'planned', plan_id = $plan, updated_at = $now, "
                "message = 'skipped by an earlier plan; evaluated again' "
                "WHERE status = 'skipped' AND plan_id IS DISTINCT FROM $plan "
                "AND action_id IN (SELECT action_id FROM _plan_actions)",
                {"now": now, "plan": plan_id},
            )
        con.unregister("_plan_actions")
        return _read(con, [a.action_id for a in actions])


def _read(con: duckdb.DuckDBPyConnection, ids: Sequence[str]) -> dict[str, JournalRow]:
    rows = con.execute(
        "SELECT action_id, kind, status, attempts, result::VARCHAR, message, plan_id FROM actions "
        "WHERE list_contains($ids, action_id)",
        {"ids": list(ids)},
    ).fetchall()
    return {str(r[0]): _row(r) for r in rows}


def read_rows(store: Store, ids: Sequence[str]) -> dict[str, JournalRow]:
    """Journal rows of these action ids (missing ids are absent); empty when the store has no file yet."""
    if not ids or not store.path.exists():
        return {}
    with store.connect() as con:
        return _read(con, ids)


def update(
    store: Store,
    action_id: str,
    status: str,
    *,
    message: str | None = None,
    result: Mapping[str, Any] | None = None,
    attempt: bool = False,
    con: duckdb.DuckDBPyConnection | None = None,
) -> None:
    """Set an action's status (and message/result), committed at once unless ``con`` is given."""
    if status not in STATUSES:
        raise ActionError(f"unknown journal status {status!r}")
    sql = (
        "UPDATE actions SET status = $status, message = $message, "
        "result = coalesce($result::JSON, result), attempts = attempts + $inc, updated_at = $now "
        "WHERE action_id = $id"
    )
    params = {
        "status": status,
        "message": message,
        "result": _dumps(dict(result)) if result is not None else None,
        "inc": 1 if attempt else 0,
        "now": _now(),
        "id": action_id,
    }
    if con is not None:
        con.execute(sql, params)
        return
    with store.transaction() as c:
        c.execute(sql, params)


def retries_sent(store: Store, schedule_merchant_uid: str, *, exclude: str | None = None) -> int:
    """Retries of one failed schedule that were sent (succeeded or failed), other than ``exclude``."""
    if not store.path.exists():
        return 0
    with store.connect() as con:
        row = con.execute(
            "SELECT count(*) FROM actions WHERE kind = 'retry' AND attempts > 0 "
            "AND status IN ('succeeded', 'failed') AND target->>'schedule_merchant_uid' = $smu "
            "AND action_id IS DISTINCT FROM $exclude",
            {"smu": schedule_merchant_uid, "exclude": exclude},
        ).fetchone()
    return int(row[0]) if row else 0


def retries_by_schedule(store: Store) -> dict[str, int]:
    """Retries sent per failed schedule merchant_uid (what the planner's ``max_retries`` counts)."""
    if not store.path.exists():
        return {}
    with store.connect() as con:
        rows = con.execute(
            "SELECT target->>'schedule_merchant_uid', count(*) FROM actions WHERE kind = 'retry' "
            "AND attempts > 0 AND status IN ('succeeded', 'failed') GROUP BY 1"
        ).fetchall()
    return {str(r[0]): int(r[1]) for r in rows if r[0] is not None}


def journal_frame(store: Store, *, status: str | None = None) -> pd.DataFrame:
    """The journal as a DataFrame (newest first), optionally one status."""
    where = "WHERE status = $status" if status else ""
    sql = (
        "SELECT action_id, kind, status, finding_id, target::VARCHAR AS target, amount, attempts, message, "
        f"result::VARCHAR AS result, created_at, updated_at FROM actions {where} ORDER BY updated_at DESC"
    )
    with store.connect() as con:
        return con.execute(sql, {"status": status} if status else {}).df()


# -- one apply at a time ---------------------------------------------------------------------------


def lock_path_for(store: Store) -> Path:
    """The apply lock file beside the DB: ``<db>.apply.lock``."""
    return store.path.with_name(store.path.name + ".apply.lock")


def holder_path_for(lock_path: Path) -> Path:
    """Where the lock holder writes who it is (pid, host, start): ``<lock>.holder``.

    A separate file because Windows refuses reads of a locked file to every other handle.
    """
    return lock_path.with_name(lock_path.name + ".holder")


@contextlib.contextmanager
def apply_lock(path: Path) -> Iterator[dict[str, Any]]:
    """Hold an exclusive lock on ``path`` for one apply; fail at once if another holds it.

    ``filelock`` takes an OS lock (``flock`` on POSIX, ``msvcrt.locking`` on Windows) that the system
    releases when the holder dies, even by SIGKILL, so a crashed apply never blocks the next one. The
    holder records itself in :func:`holder_path_for` so the error can name it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    holder_file = holder_path_for(path)
    lock = filelock.FileLock(str(path), timeout=0, thread_local=False)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise ApplyInProgressError(
            f"another apply is running on this store ({_holder(holder_file)}); lock file {path}. "
            "Wait for it to finish (only one apply at a time per store)."
        ) from None
    try:
        info = {"pid": os.getpid(), "host": socket.gethostname(), "started_at": _now().isoformat()}
        holder_file.write_text(json.dumps(info), encoding="utf-8")
        try:
            yield info
        finally:
            with contextlib.suppress(OSError):
                holder_file.write_text("", encoding="utf-8")
    finally:
        lock.release()


def _holder(holder_file: Path) -> str:
    """Who holds the lock, as recorded by the holder (pid, host, start)."""
    try:
        text = holder_file.read_text(encoding="utf-8").strip()
    except OSError:
        return "an unknown process"
    try:
        info = json.loads(text)
    except json.JSONDecodeError:
        return text or "an unknown process"
    if not isinstance(info, dict):
        return text
    return f"pid {info.get('pid')} on host {info.get('host')} since {info.get('started_at')}"


# -- findings stored by reconcile -----------------------------------------------------------------


@dataclass(frozen=True)
class StoredRecon:
    """The findings of one stored reconciliation run (what ``fix plan`` plans from), with the triage
    columns (``triage_state`` ...) of the decisions in effect."""

    run_id: str
    as_of: datetime
    findings: pd.DataFrame

    def __repr__(self) -> str:
        return (
            f"StoredRecon(run {self.run_id}, as_of {self.as_of.isoformat()}, {len(self.findings)} findings)"
        )


def load_recon(store: Store, run_id: str | None = None) -> StoredRecon:
    """Rebuild a run's findings frame from the store (the latest run by default)."""
    with store.connect() as con:
        if run_id is None:
            row = con.execute(
                "SELECT run_id, as_of FROM recon_runs ORDER BY started_at DESC, as_of DESC LIMIT 1"
            ).fetchone()
        else:
            row = con.execute("SELECT run_id, as_of FROM recon_runs WHERE run_id = ?", [run_id]).fetchone()
        if row is None:
            what = f"reconciliation run {run_id!r} is" if run_id else "reconciliation run is"
            raise ActionError(f"{store.path}: no {what} stored; run `portone-recon reconcile` first")
        rid, as_of = str(row[0]), row[1]
        findings = con.execute(
            "SELECT * FROM findings WHERE run_id = ? ORDER BY kind, finding_id", [rid]
        ).df()
        as_of_dt = as_of if isinstance(as_of, datetime) else pd.Timestamp(as_of).to_pydatetime()
        findings = triage.with_triage(findings, triage.active_in(con, as_of_dt), as_of_dt)
    return StoredRecon(rid, as_of_dt.astimezone(KST), findings)


def load_subscriptions_frame(store: Store) -> pd.DataFrame:
    """The store's subscriptions table (empty frame when none loaded)."""
    from portone_recon.actions.subscriptions import subscriptions_frame

    return subscriptions_frame(store)


def plan_for_store(
    store: Store,
    recon: StoredRecon | str | None = None,
    kinds: Sequence[str] | None = None,
    customers: Sequence[str] | None = None,
    **settings: Any,
) -> FixPlan:
    """The plan for a stored run (default the latest), with the store's subscriptions, the retries already
    sent and the findings a person triaged. Not recorded: ``fix plan`` records it, apply records it too.

    ``settings`` are :func:`~portone_recon.actions.plan_fixes`'s keyword settings (prefix, schedule_hour,
    name, notice_url, allow_inferred, include_held, max_retries); name, hour and notice_url default to
    the settings ``schedule_name``, ``schedule_hour`` and ``notice_url`` (environment or TOML).
    """
    from portone_recon.actions.holds import triaged_findings
    from portone_recon.actions.plan import plan_fixes
    from portone_recon.actions.subscriptions import Subscriptions
    from portone_recon.config import Settings

    defaults = Settings.from_env()
    settings.setdefault("name", defaults.schedule_name)
    settings.setdefault("schedule_hour", defaults.schedule_hour)
    settings.setdefault("notice_url", defaults.notice_url or None)
    stored = recon if isinstance(recon, StoredRecon) else load_recon(store, recon)
    return plan_fixes(
        stored,
        kinds,
        customers,
        subscriptions=Subscriptions.from_store(store),
        retries_sent=retries_by_schedule(store),
        triaged=triaged_findings(store),
        **settings,
    )
