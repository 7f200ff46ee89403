"""The V2 change capture beyond the listing: the periodic re-read of partially cancelled payments.

The ``v2:payments`` stream lists by ``STATUS_CHANGED_AT``. A payment's first partial cancel is a status
transition (PAID -> PARTIAL_CANCELLED) and is listed; whether a second partial cancel, which leaves the
status PARTIAL_CANCELLED, moves ``statusChangedAt`` is not documented by PortOne. If it does not, the
listing never shows that refund again. So every ``full_every`` (and on ``full=True``), every payment the
store holds from V2 that is ``PARTIAL_CANCELLED`` with money left is read again by its payment id
(``GET /payments/{paymentId}``) and what changed is stored (payments, new cancellations; an unreadable
answer is quarantined). A ``PAID`` payment needs no re-read: any cancel of it changes its status, so the
listing shows it. Payments this run's listing has just read (status changed since the listing's start)
are skipped. First run and backfills: no pass (everything was just listed).

The V2 schema has no batch form of this read: ``GET /payments`` filters by time, status and one
``textSearch`` value per entry (how several entries combine is not documented), so it is one call per
payment, ``concurrency`` in flight (the client's setting).

How soon each V2 payment change is seen:

=====================================  ==========================================  =========================
change                                 how it is caught                             seen within
=====================================  ==========================================  =========================
new payment, status change (paid,      ``v2:payments`` listing by                   the next run
failed, cancelled, first partial       ``STATUS_CHANGED_AT`` from the cursor
cancel)                                minus the overlap
second (third, ...) partial cancel,    the same listing                             the next run
if it moves ``statusChangedAt``
second partial cancel, if it does      re-read by id of every partially cancelled   ``full_every`` (7 days)
not (unconfirmed)                      V2 payment with money left                   or ``--full``
                                       (:func:`refundable_payment_ids`)
full cancel of a partially             status change: the listing                   the next run
cancelled payment
=====================================  ==========================================  =========================

The sandbox plays both readings (``SandboxV2.partial_cancel_moves_status_time``); the sync's tests pass
under both.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import duckdb
import orjson
from tqdm.auto import tqdm

from portone_recon._time import parse_instant
from portone_recon.config import Settings
from portone_recon.errors import NotFoundError, PortOneReconError, SyncError
from portone_recon.store import Store, atomic
from portone_recon.sync._job import record_error
from portone_recon.sync.report import StreamResult, TableCounts
from portone_recon.sync.v2 import CHUNK, ingest_payment_items

__all__ = ["STREAM", "V2RereadClient", "refundable_payment_ids", "reread_refundable"]

STREAM = "v2:refundable"
_ENDPOINT = "/payments/{paymentId}"


class V2RereadClient(Protocol):
    """What the re-read needs of :class:`~portone_recon.api.v2.PortOneV2Client`."""

    @property
    def api_calls(self) -> int: ...

    @property
    def settings(self) -> Settings: ...

    def get_payment(self, payment_id: str) -> dict[str, Any]: ...


def refundable_payment_ids(con: duckdb.DuckDBPyConnection, listed_from: datetime | None) -> list[str]:
    """Payment ids (``merchant_uid``) of the V2 payments in the store whose next refund may not show in
    the listing: ``PARTIAL_CANCELLED`` with money left; those whose status changed at or after
    ``listed_from`` (just listed in their current state) are left out."""
    rows = con.execute(
        "SELECT DISTINCT merchant_uid FROM payments WHERE source_api = 'v2' "
        "AND status_v2 = 'PARTIAL_CANCELLED' AND merchant_uid IS NOT NULL "
        "AND coalesce(amount_exact, amount, 0) > coalesce(cancel_amount_exact, cancel_amount, 0) "
        "AND ($lo IS NULL OR status_changed_at IS NULL OR status_changed_at < $lo) ORDER BY merchant_uid",
        {"lo": listed_from},
    ).fetchall()
    return [str(r[0]) for r in rows]


def _fetch(client: V2RereadClient, ids: Sequence[str], bar: Any) -> tuple[list[dict[str, Any]], int]:
    """``GET /payments/{paymentId}`` of each id, ``concurrency`` in flight; (answers, ids not found)."""
    workers = max(1, client.settings.concurrency)

    def one(payment_id: str) -> dict[str, Any] | None:
        try:
            return client.get_payment(payment_id)
        except NotFoundError:
            return None  # gone from PortOne's view: nothing to update

    out: list[dict[str, Any]] = []
    missing = 0
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="portone-v2-reread") as pool:
        for item in pool.map(one, ids):
            bar.update(1)
            if item is None:
                missing += 1
            else:
                out.append(item)
    return out, missing


def _state(con: duckdb.DuckDBPyConnection) -> tuple[datetime | None, datetime | None, bool]:
    """``(cursor, full_at, exists)`` of the stream's ``sync_state`` row."""
    row = con.execute("SELECT cursor, detail FROM sync_state WHERE stream = ?", [STREAM]).fetchone()
    if row is None:
        return None, None, False
    detail = row[1]
    if isinstance(detail, str | bytes):
        with suppress(orjson.JSONDecodeError):
            detail = orjson.loads(detail)
    value = detail.get("full_at") if isinstance(detail, dict) else None
    full_at = None
    if isinstance(value, str):
        with suppress(ValueError, PortOneReconError):
            full_at = parse_instant(value)
    return row[0], full_at, True


def _chunks(ids: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(ids), CHUNK):
        yield ids[start : start + CHUNK]


def reread_refundable(
    client: V2RereadClient,
    store: Store,
    *,
    now: datetime,
    until: datetime,
    listed_from: datetime | None,
    backfill: bool = False,
    full: bool = False,
    full_every: timedelta = timedelta(days=7),
) -> StreamResult:
    """The ``v2:refundable`` stream (see the module docstring).

    Args:
        client: the V2 client.
        store: the store (already migrated).
        now: PortOne's clock (when the pass is due, and its ``full_at``).
        until: the run's ``until`` (the stream's cursor).
        listed_from: where this run's payment listing started (payments changed since are skipped).
        backfill: a ``--since`` run: no pass, nothing recorded as one.
        full: run the pass now, whatever ``full_every`` says.
        full_every: the pass runs when the last one is older than this.

    Returns:
        The stream's :class:`StreamResult` (its note says what was re-read, or when the next pass is due).
    """
    started_calls = client.api_calls
    synced_at = datetime.now(tz=UTC)
    with store.connect() as con:
        cursor, last_full, exists = _state(con)
    due = full or (exists and (last_full is None or now - last_full >= full_every))
    run_pass = due and not backfill
    first = not exists and not backfill
    full_at = now if run_pass or first else last_full
    tables = {"payments": TableCounts(), "payment_cancellations": TableCounts(), "quarantine": TableCounts()}
    ids: list[str] = []
    items = missing = 0
    try:
        if run_pass:
            with store.connect() as con:
                ids = refundable_payment_ids(con, listed_from)
            with tqdm(
                total=len(ids), desc=f"sync {STREAM}", unit="payment", disable=None if ids else True
            ) as bar:
                for chunk in _chunks(ids):
                    answers, gone = _fetch(client, chunk, bar)  # the store is not held over the network
                    missing += gone
                    with store.connect() as con, atomic(con, store.path):
                        counts, n = ingest_payment_items(
                            con,
                            answers,
                            now=now,
                            synced_at=synced_at,
                            stream=STREAM,
                            endpoint=_ENDPOINT,
                        )
                    items += n
                    tables = {k: tables[k] + counts.get(k, TableCounts()) for k in tables}
        if run_pass:
            note = f"re-read {len(ids)} V2 payment(s) with a refundable balance"
            if missing:
                note += f" ({missing} not found)"
        else:
            nxt = (full_at + full_every).isoformat() if full_at is not None else "the next run"
            note = f"next re-read of refundable V2 payments after {nxt}"
        new_cursor = until if cursor is None or cursor < until else cursor
        detail = {"full_at": full_at.isoformat() if full_at else None, "payments": len(ids), "note": note}
        with store.connect() as con, atomic(con, store.path):
            con.execute(
                "INSERT INTO sync_state (stream, cursor, last_success, last_error, detail) "
                "VALUES ($stream, $cursor, $at, NULL, $detail) ON CONFLICT (stream) DO UPDATE SET "
                "cursor = excluded.cursor, last_success = excluded.last_success, last_error = NULL, "
                "detail = excluded.detail",
                {
                    "stream": STREAM,
                    "cursor": new_cursor,
                    "at": synced_at,
                    "detail": orjson.dumps(detail).decode(),
                },
            )
    except PortOneReconError as exc:
        record_error(store.connect, STREAM, exc)
        raise
    except duckdb.Error as exc:
        record_error(store.connect, STREAM, exc)
        raise SyncError(f"stream {STREAM}: writing to {store.path} failed: {exc}") from exc
    return StreamResult(
        STREAM,
        None,
        until,
        cursor,
        new_cursor,
        pages=len(ids),
        items=items,
        tables=tables,
        api_calls=client.api_calls - started_calls,
        note=note,
    )
