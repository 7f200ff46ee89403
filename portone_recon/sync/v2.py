"""Pull PortOne V2 payments, cancellations, schedules and billing keys into the SAME tables as V1.

Streams, each committed in one transaction with its ``sync_state`` cursor:

``v2:payments``
    ``GET /payments`` by ``STATUS_CHANGED_AT`` over ``[cursor - overlap, until]`` (first run
    ``[until - lookback, until]``), windows split under the 60,000 page reach by the client. Upsert by
    ``imp_uid`` (= ``transactionId``). With V1 credentials too (a migrating merchant), only
    ``version: "V2"`` payments are read here: the V1 sync owns V1 payments, so each payment is one row.
    A schedule's READY payment before it runs (``SCHEDULE_PLACEHOLDER_SQL``) is no attempt and not kept.
``v2:schedules``
    ``GET /payment-schedules`` with an explicit ``from``/``until`` on ``timeToPay`` (the listing hides
    anything outside the last 90 days by default): ``[cursor - overlap - recheck, until + horizon]``, so
    schedules that executed since the last run are read again (the listing has no change feed).
    Executed schedules get the ``imp_uid`` and ``fail_reason`` of their payment (same merchant_uid).
``v2:billing_keys``
    ``GET /billing-keys`` by ``STATUS_TIMESTAMP`` (issue and delete times) over ``[cursor - overlap,
    until]`` (with V1 credentials too, only ``version: "V2"`` keys). Every key is kept in
    ``v2_billing_keys``; ``billing_keys`` gets one row per customer: the newest issued key, deleted only
    when every key of the customer is deleted (a card change is a new key, not a churn). A V1
    customer's live V1 key is never overwritten by a deleted V2 one.

A record the tolerant reader cannot store (an unknown status, i.e. a new oneOf case; a missing id; an
amount that is not an integer) goes to ``quarantine`` with its raw JSON, endpoint and reason; everything
else is stored and the cursor moves. ``raw`` keeps each item's JSON; rows are rewritten only when it
changed. Cursors are PortOne's clock (``now``; the V2 API has no clock endpoint, so the caller's or the
wall clock).

How: no Python loop touches an item. Listing pages are fetched on one background thread, in stream order,
into spool files on disk as received; the main thread stages each finished file into TEMP tables of the
run's own scratch DuckDB with the SQL reader of :mod:`portone_recon.sync.v2_sql` while later pages
still arrive. The store is attached to that connection only to read the cursors and, per stream, to
merge the staged rows and move the cursor in one transaction: no write lock is held over the network,
and memory is bounded by a spool file and DuckDB's ``_job.MEMORY_LIMIT`` (it spills beyond), not by the
listing.
"""

from __future__ import annotations

import math
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import duckdb
import orjson
from tqdm.auto import tqdm

from portone_recon.api.v2.paging import V2Page
from portone_recon.api.v2.records import SCHEDULE_PLACEHOLDER_SQL
from portone_recon.config import Settings
from portone_recon.errors import PortOneReconError, SyncError
from portone_recon.store import Store, atomic
from portone_recon.sync._job import auto_progress, guarded, scratch
from portone_recon.sync._spool import Spool
from portone_recon.sync.report import StreamResult, SyncReport, TableCounts
from portone_recon.sync.v2_ingest import Staging
from portone_recon.sync.v2_sql import (
    BILLING_KEYS,
    KEY_COLS,
    PAYMENT_COLS,
    PAYMENTS,
    SCHEDULE_COLS,
    SCHEDULES,
    V2Entity,
    cancellations_sql,
)

DEFAULT_LOOKBACK = timedelta(days=400)
DEFAULT_HORIZON = timedelta(days=400)
DEFAULT_OVERLAP = timedelta(hours=1)
#: The periodic re-read of partially cancelled payments runs when the last one is older than this.
DEFAULT_FULL_EVERY = timedelta(days=7)
#: A stream's spool finishes a file every this many items; finished files are staged while later pages
#: are still fetched.
CHUNK = 20_000
#: How far before the cursor schedules are read again (those that executed since the last run).
SCHEDULE_RECHECK = timedelta(days=40)


class V2SyncClient(Protocol):
    """What the V2 sync needs of :class:`~portone_recon.api.v2.PortOneV2Client`."""

    @property
    def api_calls(self) -> int: ...

    def payment_pages(
        self, since: datetime, until: datetime, *, version: str | None = ...
    ) -> Iterator[V2Page]: ...

    def schedule_pages(self, since: datetime, until: datetime) -> Iterator[V2Page]: ...

    def billing_key_pages(
        self, since: datetime, until: datetime, *, version: str | None = ...
    ) -> Iterator[V2Page]: ...

    def get_payment(self, payment_id: str) -> dict[str, Any]: ...

    @property
    def settings(self) -> Settings: ...

    def counting_calls(self) -> AbstractContextManager[Any]: ...

    def background(self) -> AbstractContextManager[None]: ...


@dataclass(frozen=True)
class _Derived:
    """Columns a stream fills from other tables as it merges (not from the item): the SQL of the value
    on insert (over ``s``), on update (over ``s`` and the stored row ``t``), and when a stored row whose
    item did not change must be rewritten for them."""

    insert: dict[str, str]
    update: dict[str, str]
    changed: str


def _upsert(
    con: duckdb.DuckDBPyConnection,
    table: str,
    staged: str,
    key: tuple[str, ...],
    cols: tuple[tuple[str, str], ...],
    *,
    synced_at: datetime,
    hashed: bool = True,
    derived: _Derived | None = None,
) -> TableCounts:
    """Insert new rows and rewrite changed ones (changed = another raw hash); counts both.

    An UPDATE of the changed rows and an INSERT of the new ones (no anti-join when every key is new):
    DuckDB's ``INSERT ... ON CONFLICT DO UPDATE`` costs several times more on a first sync, and an
    UPDATE of every row a first sync has just inserted does not fit the run's memory cap at 1e6 rows.
    """
    on = " AND ".join(f"t.{k} = s.{k}" for k in key)
    changed = (
        "t.raw_hash IS DISTINCT FROM s.raw_hash"
        if hashed
        else "t.raw::VARCHAR IS DISTINCT FROM s.raw::VARCHAR"
    )
    rewrite = f"({changed} OR {derived.changed})" if derived else changed
    row = con.execute(
        f"SELECT count(*) FILTER (WHERE t.{key[0]} IS NULL), count(*) FILTER (WHERE t.{key[0]} IS NOT NULL "
        f"AND {changed}), count(*) FILTER (WHERE t.{key[0]} IS NOT NULL AND {rewrite}), count(*) "
        f"FROM {staged} s LEFT JOIN {table} t ON {on}"
    ).fetchone()
    new, updated, rewritten, total = (int(v) for v in row) if row else (0, 0, 0, 0)
    names = [c for c, _ in cols]
    extra = ["raw", "raw_hash"] if hashed else ["raw"]
    all_cols = (
        [*names, *extra, "source_api", "synced_at"]
        if table != "v2_billing_keys"
        else [*names, "raw", "synced_at"]
    )

    def value(c: str) -> str:
        return "'v2'" if c == "source_api" else ("$at" if c == "synced_at" else f"s.{c}")

    if rewritten:
        sets = [f"{c} = {value(c)}" for c in all_cols if c not in key]
        sets += [f"{c} = {sql}" for c, sql in (derived.update if derived else {}).items()]
        con.execute(
            f"UPDATE {table} AS t SET {', '.join(sets)} FROM {staged} s WHERE {on} AND {rewrite}",
            {"at": synced_at},
        )
    if new:
        anti = "" if new == total else f" WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE {on})"
        more = derived.insert if derived else {}
        columns = [*all_cols, *more]
        values = [*(value(c) for c in all_cols), *more.values()]
        con.execute(
            f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(values)} FROM {staged} s{anti}",
            {"at": synced_at},
        )
    return TableCounts(new, updated)


#: The attempt an executed schedule ran is its payment's (same merchant_uid, the latest attempt), and so
#: is its failure reason: read from the store's payments before the schedules' transaction.
_ATTEMPTS = (
    "INSERT INTO _v2_attempt SELECT merchant_uid, "
    "arg_max(imp_uid, coalesce(status_changed_at, started_at)) AS p_imp_uid, "
    "arg_max(fail_reason, coalesce(status_changed_at, started_at)) AS p_fail_reason FROM payments "
    "WHERE hash(merchant_uid) % $parts = $part AND merchant_uid IN (SELECT merchant_uid FROM _v2_sch "
    "WHERE schedule_status = 'executed' AND hash(merchant_uid) % $parts = $part) GROUP BY merchant_uid"
)
#: The attempts are read in slices of about this many executed schedules (each slice's hash tables fit
#: the run's memory cap; 1e6 in one slice did not).
_ATTEMPT_SLICE = 150_000
#: The staged schedules with the attempt of the executed ones.
_SCHEDULES_WITH_ATTEMPT = (
    "(SELECT s.*, a.p_imp_uid, a.p_fail_reason FROM _v2_sch s LEFT JOIN _v2_attempt a "
    "ON s.schedule_status = 'executed' AND a.merchant_uid = s.merchant_uid)"
)
_EXECUTED = "s.schedule_status = 'executed'"
_ATTEMPT = _Derived(
    insert={"imp_uid": "s.p_imp_uid", "fail_reason": "s.p_fail_reason"},
    update={
        "imp_uid": f"CASE WHEN {_EXECUTED} THEN s.p_imp_uid ELSE t.imp_uid END",
        "fail_reason": f"CASE WHEN {_EXECUTED} THEN s.p_fail_reason ELSE t.fail_reason END",
    },
    changed=(
        f"({_EXECUTED} AND (t.imp_uid IS DISTINCT FROM s.p_imp_uid OR "
        "t.fail_reason IS DISTINCT FROM s.p_fail_reason))"
    ),
)


@dataclass(frozen=True)
class _Fetched:
    """A listing fetched into its spool (closed), with its API calls."""

    spool: Spool
    calls: int


def _quarantine(
    con: duckdb.DuckDBPyConnection,
    entity: V2Entity,
    stream: str,
    bad: str,
    *,
    at: datetime,
    endpoint: str | None = None,
) -> TableCounts:
    """Upsert the unreadable items of ``bad`` (record_key, reason, raw) into ``quarantine``."""
    row = con.execute(
        "SELECT count(*) FILTER (WHERE q.raw_hash IS NULL), count(*) FILTER (WHERE q.raw_hash IS NOT "
        f"NULL) FROM (SELECT DISTINCT hash(raw::VARCHAR) AS h FROM {bad}) s "
        "LEFT JOIN quarantine q ON q.source = $source AND q.raw_hash = s.h",
        {"source": entity.name},
    ).fetchone()
    if not row or not (row[0] or row[1]):
        return TableCounts()
    con.execute(
        "INSERT INTO quarantine (source, record_key, endpoint, reason, stream, raw, raw_hash, "
        "first_seen, last_seen) "
        "SELECT $source, any_value(record_key), $endpoint, any_value(reason), $stream, any_value(raw), "
        f"hash(raw::VARCHAR), $at, $at FROM {bad} GROUP BY raw::VARCHAR, hash(raw::VARCHAR) "
        "ON CONFLICT (source, raw_hash) DO UPDATE SET last_seen = excluded.last_seen, reason = "
        "excluded.reason",
        {"source": entity.name, "endpoint": endpoint or entity.endpoint, "stream": stream, "at": at},
    )
    return TableCounts(int(row[0]), int(row[1]))


def _store_payments(
    con: duckdb.DuckDBPyConnection,
    good: str,
    cancels: str,
    bad: str,
    *,
    stream: str,
    synced_at: datetime,
    at: datetime,
    endpoint: str | None = None,
) -> dict[str, TableCounts]:
    """Inside the caller's transaction: upsert the staged payments ``good`` and add their new
    cancellations ``cancels``; quarantine ``bad``; a payment read cleanly leaves quarantine."""
    pays = _upsert(con, "payments", good, ("imp_uid",), PAYMENT_COLS, synced_at=synced_at)
    row = con.execute(
        f"SELECT count(*) FROM {cancels} s LEFT JOIN payment_cancellations t USING (imp_uid, "
        "cancellation_id) WHERE t.imp_uid IS NULL"
    ).fetchone()
    con.execute(
        "INSERT INTO payment_cancellations (imp_uid, cancellation_id, pg_tid, amount, amount_exact, "
        "cancelled_at, reason, receipt_url, source_api, synced_at) SELECT imp_uid, cancellation_id, "
        f"pg_tid, amount, amount_exact, cancelled_at, reason, receipt_url, 'v2', $at FROM {cancels} "
        "ON CONFLICT (imp_uid, cancellation_id) DO NOTHING",
        {"at": synced_at},
    )
    q = _quarantine(con, PAYMENTS, stream, bad, at=at, endpoint=endpoint)
    con.execute(
        f"DELETE FROM quarantine WHERE source = 'payments' AND record_key IN (SELECT imp_uid FROM {good})"
    )
    return {
        "payments": pays,
        "payment_cancellations": TableCounts(int(row[0]) if row else 0, 0),
        "quarantine": q,
    }


class _V2Run:
    def __init__(
        self,
        client: V2SyncClient,
        store: Store,
        *,
        since: datetime | None,
        until: datetime,
        now: datetime,
        lookback: timedelta,
        horizon: timedelta,
        overlap: timedelta,
        only_v2: bool,
        progress: bool | None,
    ) -> None:
        self.client = client
        self.store = store
        self.since = since
        self.until = until
        self.now = now
        self.lookback = lookback
        self.horizon = horizon
        self.overlap = overlap
        self.only_v2 = only_v2
        self.progress = progress
        self.synced_at = datetime.now(tz=UTC)
        self.con: duckdb.DuckDBPyConnection | None = None
        self.cursors: dict[str, datetime | None] = {}
        self._stop = threading.Event()
        #: each listing's staging (made when the run starts), and staging errors of a listing staged
        #: ahead of its turn, raised when its turn comes
        self._stagings: dict[str, Staging] = {}
        self._ahead_errors: dict[str, BaseException] = {}

    # -- plumbing ---------------------------------------------------------------------------------

    @property
    def _con(self) -> duckdb.DuckDBPyConnection:
        if self.con is None:  # pragma: no cover - only inside run()
            raise SyncError("the V2 sync's scratch connection is closed")
        return self.con

    @contextmanager
    def _transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """BEGIN ... COMMIT in the store (attached for it); any exception rolls back and propagates."""
        with self.store.attached(self._con), atomic(self._con, self.store.path) as con:
            yield con

    def _read_cursors(self) -> None:
        with self.store.attached(self._con):
            rows = self._con.execute(
                "SELECT stream, cursor FROM sync_state WHERE stream IN "
                "('v2:payments', 'v2:schedules', 'v2:billing_keys')"
            ).fetchall()
        for stream, cursor in rows:
            self.cursors[str(stream)] = cursor if cursor is not None and cursor <= self.now else None

    def _lo(self, stream: str) -> tuple[datetime, datetime | None]:
        cursor = self.cursors.get(stream)
        if self.since is not None:
            return self.since, cursor
        if cursor is not None:
            return cursor - self.overlap, cursor
        return self.until - self.lookback, None

    def _fetch(
        self, name: str, pages: Callable[[], Iterator[V2Page]], spool: Spool, bar: Any, *, ahead: bool = False
    ) -> _Fetched:
        """Every page of one listing into ``spool``; ``ahead``: fetched ahead of its turn, its requests
        yield to the listing whose turn it is (the client's ``background``)."""
        try:
            with (
                self.client.background() if ahead else nullcontext(),
                self.client.counting_calls() as counter,
            ):
                if self._stop.is_set():
                    raise SyncError("sync stopped")
                for page in pages():
                    if self._stop.is_set():
                        raise SyncError("sync stopped")
                    spool.add_page(page)
                    bar.update(page.count)
            spool.close()
        except BaseException:
            spool.remove()
            raise
        return _Fetched(spool, counter.calls)

    def _staged(self, fut: Future[_Fetched], staging: Staging) -> _Fetched:
        """Wait for a listing's last page, staging its finished spool files meanwhile, then the rest.

        One DuckDB thread while pages still arrive (the other core serves the fetch), one file at a
        time, so that all threads take the rest as soon as the last page is in. When none of its own
        files is finished, a later listing's (fetched beside it) is staged instead: its turn then starts
        with less to do. A staging error of a later listing is kept for its own turn.
        """
        if staging.name in self._ahead_errors:
            raise self._ahead_errors.pop(staging.name)
        con = self._con
        row = con.execute("SELECT current_setting('threads')").fetchone()
        con.execute("SET threads = 1")
        try:
            while True:
                try:
                    fetched = fut.result(timeout=0.05)
                    break
                except TimeoutError:
                    if not staging.stage(one=True):
                        self._stage_ahead(staging)
        finally:
            con.execute(f"SET threads = {int(row[0]) if row else 1}")
        staging.stage(final=True)
        return fetched

    def _stage_ahead(self, current: Staging) -> None:
        """One finished file of the next listing that has one (never raised into ``current``'s stream)."""
        for later in self._stagings.values():
            if later is current or later.name in self._ahead_errors:
                continue
            try:
                if later.stage(one=True):
                    return
            except (PortOneReconError, duckdb.Error) as exc:
                self._ahead_errors[later.name] = exc

    def _quarantine(
        self, con: duckdb.DuckDBPyConnection, entity: V2Entity, stream: str, bad: str
    ) -> TableCounts:
        return _quarantine(con, entity, stream, bad, at=self.now)

    def _state(
        self,
        con: duckdb.DuckDBPyConnection,
        stream: str,
        cursor: datetime | None,
        lo: datetime,
        detail: dict[str, Any],
    ) -> None:
        con.execute(
            "INSERT INTO sync_state (stream, cursor, last_success, last_error, detail, covered_from) "
            "VALUES ($stream, $cursor, $at, NULL, $detail, $lo) ON CONFLICT (stream) DO UPDATE SET "
            "cursor = CASE WHEN sync_state.cursor IS NULL OR excluded.cursor > sync_state.cursor "
            "THEN excluded.cursor ELSE sync_state.cursor END, last_success = excluded.last_success, "
            "last_error = NULL, detail = excluded.detail, covered_from = CASE "
            "WHEN sync_state.covered_from IS NULL THEN $lo "
            "WHEN $cursor >= sync_state.covered_from THEN least(sync_state.covered_from, $lo) "
            "ELSE sync_state.covered_from END",
            {
                "stream": stream,
                "cursor": cursor,
                "at": self.synced_at,
                "detail": orjson.dumps(detail).decode(),
                "lo": lo,
            },
        )

    # -- streams ----------------------------------------------------------------------------------

    def payments(self, fut: Future[_Fetched], spool: Spool, lo: datetime) -> StreamResult:
        stream = "v2:payments"
        before = self.cursors.get(stream)
        staging = self._stagings.get("v2:payments") or Staging(self._con, PAYMENTS, spool, "_v2_pay_stage")
        fetched = self._staged(fut, staging)
        con = self._con
        # Adjacent windows share their bound: one copy of a repeated item (its latest state).
        n = staging.finish(
            "_v2_pay",
            "status_changed_at DESC NULLS LAST, n DESC, idx DESC",
            "_v2_pay_bad",
            leave_out=SCHEDULE_PLACEHOLDER_SQL,  # a schedule's payment before it runs: no attempt, no row
        )
        con.execute(f"CREATE OR REPLACE TEMP TABLE _v2_can AS {cancellations_sql('_v2_pay')}")
        with self._transaction() as con:
            tables = _store_payments(
                con, "_v2_pay", "_v2_can", "_v2_pay_bad", stream=stream, synced_at=self.synced_at, at=self.now
            )
            self._state(con, stream, self.until, lo, {"items": n, "only_v2": self.only_v2})
        staging.drop("_v2_pay")
        return StreamResult(
            stream,
            lo,
            self.until,
            before,
            self.until,
            pages=spool.pages,
            items=n,
            tables=tables,
            api_calls=fetched.calls,
        )

    def schedules(self, fut: Future[_Fetched], spool: Spool, lo: datetime, hi: datetime) -> StreamResult:
        stream = "v2:schedules"
        before = self.cursors.get(stream)
        staging = self._stagings.get("v2:schedules") or Staging(self._con, SCHEDULES, spool, "_v2_sch_stage")
        fetched = self._staged(fut, staging)
        n = staging.finish("_v2_sch", "n DESC, idx DESC", "_v2_sch_bad")
        # Read before the transaction (TEMP rows written inside it make the commit slower); the
        # payments were committed by this run's payment stream.
        con = self._con
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _v2_attempt (merchant_uid VARCHAR, p_imp_uid VARCHAR, "
            "p_fail_reason VARCHAR)"
        )
        row = con.execute("SELECT count(*) FROM _v2_sch WHERE schedule_status = 'executed'").fetchone()
        slices = max(1, math.ceil((int(row[0]) if row else 0) / _ATTEMPT_SLICE))
        with self.store.attached(con):
            for part in range(slices):
                con.execute(_ATTEMPTS, {"parts": slices, "part": part})
        with self._transaction() as con:
            counts = _upsert(
                con,
                "schedules",
                _SCHEDULES_WITH_ATTEMPT,
                ("merchant_uid",),
                SCHEDULE_COLS,
                synced_at=self.synced_at,
                derived=_ATTEMPT,
            )
            q = self._quarantine(con, SCHEDULES, stream, "_v2_sch_bad")
            con.execute(
                "DELETE FROM quarantine WHERE source = 'schedules' AND record_key IN (SELECT merchant_uid "
                "FROM _v2_sch)"
            )
            self._state(con, stream, self.until, lo, {"items": n})
        staging.drop("_v2_sch")
        self._con.execute("DROP TABLE IF EXISTS _v2_attempt")
        return StreamResult(
            stream,
            lo,
            hi,
            before,
            self.until,
            pages=spool.pages,
            items=n,
            tables={"schedules": counts, "quarantine": q},
            api_calls=fetched.calls,
        )

    def billing_keys(self, fut: Future[_Fetched], spool: Spool, lo: datetime) -> StreamResult:
        stream = "v2:billing_keys"
        before = self.cursors.get(stream)
        staging = self._stagings.get("v2:billing_keys") or Staging(
            self._con, BILLING_KEYS, spool, "_v2_key_stage"
        )
        fetched = self._staged(fut, staging)
        n = staging.finish("_v2_key", "n DESC, idx DESC", "_v2_key_bad")
        with self._transaction() as con:
            _upsert(
                con,
                "v2_billing_keys",
                "_v2_key",
                ("billing_key",),
                KEY_COLS,
                synced_at=self.synced_at,
                hashed=False,
            )
            # One row per customer: the newest issued key; deleted only when every key is deleted.
            con.execute(
                "CREATE OR REPLACE TEMP TABLE _v2_cust AS SELECT customer_uid, "
                "coalesce(arg_max(billing_key, issued_at) FILTER (WHERE status = 'ISSUED'), "
                "arg_max(billing_key, issued_at)) AS billing_key, "
                "bool_and(status = 'DELETED') AS deleted, max(deleted_at) AS deleted_at "
                "FROM v2_billing_keys WHERE customer_uid IN (SELECT customer_uid FROM _v2_key) GROUP BY "
                "customer_uid"
            )
            row = con.execute(
                "SELECT count(*) FILTER (WHERE b.customer_uid IS NULL), count(*) FILTER (WHERE "
                "b.customer_uid IS NOT NULL AND (b.billing_key IS DISTINCT FROM c.billing_key OR "
                "b.deleted <> c.deleted)) FROM _v2_cust c LEFT JOIN billing_keys b USING (customer_uid)"
            ).fetchone()
            con.execute(
                "INSERT INTO billing_keys (customer_uid, pg_provider, card_name, card_number, inserted, "
                "updated, deleted, deleted_seen_at, raw, raw_hash, synced_at, source_api, billing_key) "
                "SELECT c.customer_uid, k.pg_provider, k.card_name, k.card_number, k.issued_at, "
                "coalesce(c.deleted_at, k.issued_at), c.deleted, CASE WHEN c.deleted THEN c.deleted_at END, "
                "k.raw, hash(k.raw::VARCHAR), $at, 'v2', c.billing_key "
                "FROM _v2_cust c JOIN v2_billing_keys k USING (billing_key) "
                "ON CONFLICT (customer_uid) DO UPDATE SET pg_provider = excluded.pg_provider, card_name = "
                "excluded.card_name, card_number = excluded.card_number, inserted = excluded.inserted, "
                "updated = excluded.updated, deleted = excluded.deleted, deleted_seen_at = "
                "excluded.deleted_seen_at, raw = excluded.raw, raw_hash = excluded.raw_hash, synced_at = "
                "excluded.synced_at, source_api = excluded.source_api, billing_key = excluded.billing_key, "
                # the V2 record itself says whether the key is deleted: no V1 proof stands behind it
                "deleted_proof = NULL "
                # a live V1 key is never replaced by a deleted V2 one
                "WHERE NOT (billing_keys.source_api = 'v1' AND NOT billing_keys.deleted AND "
                "excluded.deleted) AND (billing_keys.billing_key IS DISTINCT FROM excluded.billing_key OR "
                "billing_keys.deleted <> excluded.deleted OR billing_keys.raw_hash IS DISTINCT FROM "
                "excluded.raw_hash)",
                {"at": self.synced_at},
            )
            q = self._quarantine(con, BILLING_KEYS, stream, "_v2_key_bad")
            self._state(con, stream, self.until, lo, {"items": n})
        staging.drop("_v2_key")
        counts = TableCounts(int(row[0]), int(row[1])) if row else TableCounts()
        return StreamResult(
            stream,
            lo,
            self.until,
            before,
            self.until,
            pages=spool.pages,
            items=n,
            tables={"billing_keys": counts, "quarantine": q},
            api_calls=fetched.calls,
        )

    # -- the run ----------------------------------------------------------------------------------

    def run(self) -> list[StreamResult]:
        with tempfile.TemporaryDirectory(prefix="portone-recon-sync-v2-") as tmp:
            folder = Path(tmp)
            self.con = scratch(folder, preserve_insertion_order=False)
            try:
                return self._run_streams(folder)
            finally:
                self.con.close()
                self.con = None

    def _run_streams(self, folder: Path) -> list[StreamResult]:
        self._read_cursors()
        version = "V2" if self.only_v2 else None
        pay_lo, _ = self._lo("v2:payments")
        sch_lo, sch_before = self._lo("v2:schedules")
        if self.since is None and sch_before is not None:
            sch_lo -= SCHEDULE_RECHECK
        sch_hi = self.until + self.horizon
        key_lo, _ = self._lo("v2:billing_keys")
        spools = {
            name: Spool(folder, name.replace(":", "_"), chunk_items=CHUNK)
            for name in ("v2:payments", "v2:schedules", "v2:billing_keys")
        }
        listings: dict[str, Callable[[], Iterator[V2Page]]] = {
            "v2:payments": lambda: self.client.payment_pages(pay_lo, self.until, version=version),
            "v2:schedules": lambda: self.client.schedule_pages(sch_lo, sch_hi),
            "v2:billing_keys": lambda: self.client.billing_key_pages(key_lo, self.until, version=version),
        }
        self._stagings = {
            "v2:payments": Staging(self._con, PAYMENTS, spools["v2:payments"], "_v2_pay_stage"),
            "v2:schedules": Staging(self._con, SCHEDULES, spools["v2:schedules"], "_v2_sch_stage"),
            "v2:billing_keys": Staging(self._con, BILLING_KEYS, spools["v2:billing_keys"], "_v2_key_stage"),
        }
        show = auto_progress() if self.progress is None else self.progress
        out: list[StreamResult] = []
        with (
            tqdm(desc="sync v2", unit=" items", disable=not show, leave=True) as bar,
            ThreadPoolExecutor(1, thread_name_prefix="portone-recon-sync-v2-fetch") as fetcher,
            ThreadPoolExecutor(1, thread_name_prefix="portone-recon-sync-v2-fetch-ahead") as beside,
        ):
            # Payments on one fetch thread; schedules, then billing keys, on a second one as background
            # work of the client's pool (its idle slots while payments are parsed and staged): fetching
            # runs ahead of staging and merging, never more than ``concurrency`` requests in flight.
            futures = {
                "v2:payments": fetcher.submit(
                    self._fetch, "v2:payments", listings["v2:payments"], spools["v2:payments"], bar
                ),
                **{
                    name: beside.submit(self._fetch, name, listings[name], spools[name], bar, ahead=True)
                    for name in ("v2:schedules", "v2:billing_keys")
                },
            }
            try:
                for name, ingest in (
                    (
                        "v2:payments",
                        lambda: self.payments(futures["v2:payments"], spools["v2:payments"], pay_lo),
                    ),
                    (
                        "v2:schedules",
                        lambda: self.schedules(
                            futures["v2:schedules"], spools["v2:schedules"], sch_lo, sch_hi
                        ),
                    ),
                    (
                        "v2:billing_keys",
                        lambda: self.billing_keys(
                            futures["v2:billing_keys"], spools["v2:billing_keys"], key_lo
                        ),
                    ),
                ):
                    out.append(self._guard(name, ingest))
            finally:
                self._stop.set()
                fetcher.shutdown(wait=True, cancel_futures=True)
                beside.shutdown(wait=True, cancel_futures=True)
                for spool in spools.values():
                    spool.remove()
        return out

    def _guard(self, stream: str, fn: Callable[[], StreamResult]) -> StreamResult:
        return guarded(stream, fn, self._transaction, self.store.path)


def sync_v2(
    client: V2SyncClient,
    store: Store,
    since: datetime | None = None,
    until: datetime | None = None,
    *,
    now: datetime | None = None,
    only_v2: bool = False,
    lookback: timedelta = DEFAULT_LOOKBACK,
    horizon: timedelta = DEFAULT_HORIZON,
    overlap: timedelta = DEFAULT_OVERLAP,
    full: bool = False,
    full_every: timedelta = DEFAULT_FULL_EVERY,
    progress: bool | None = None,
) -> SyncReport:
    """Pull PortOne V2 into ``store`` (see the module docstring).

    Args:
        client: a :class:`~portone_recon.api.v2.PortOneV2Client`.
        store: the DuckDB store (migrated here).
        since / until: a backfill range; None = incremental up to ``now``.
        now: PortOne's clock (the sandbox's); None = the wall clock.
        only_v2: read only ``version: "V2"`` payments (the merchant's V1 payments come from the V1 sync).
        full: do the periodic re-read of partially cancelled payments now
            (:mod:`~portone_recon.sync.v2_capture`).
        full_every: that re-read runs when the last one is older than this (PortOne's clock).
        progress: True shows a bar, False hides it, None shows it only on a terminal / in Jupyter.
    """
    started = time.perf_counter()
    calls = client.api_calls
    store.migrate()
    at = now or datetime.now(tz=UTC)
    hi = min(until, at) if until is not None else at
    run = _V2Run(
        client,
        store,
        since=since,
        until=hi,
        now=at,
        lookback=lookback,
        horizon=horizon,
        overlap=overlap,
        only_v2=only_v2,
        progress=progress,
    )
    results = run.run()
    from portone_recon.sync.v2_capture import reread_refundable  # it stores through this module

    results.append(
        reread_refundable(
            client,
            store,
            now=at,
            until=hi,
            listed_from=results[0].range_from,
            backfill=since is not None,
            full=full,
            full_every=full_every,
        )
    )
    return SyncReport.of(
        results,
        api_calls=client.api_calls - calls,
        seconds=time.perf_counter() - started,
        since=since,
        until=hi,
        now=at,
    )


def ingest_payment_items(
    con: duckdb.DuckDBPyConnection,
    items: Iterable[dict[str, Any]],
    *,
    now: datetime,
    synced_at: datetime,
    stream: str,
    endpoint: str,
) -> tuple[dict[str, TableCounts], int]:
    """Store raw V2 payments read outside the listing (one by one, by id) as ``v2:payments`` stores them.

    The same SQL reader (the items go through a spool like a listing's page); rows rewritten only when
    their JSON changed; new cancellations added; an item that cannot be read is quarantined
    (``endpoint``, ``stream``) and one read cleanly leaves quarantine. Runs inside the caller's
    transaction on ``con`` (the store's connection). Returns the table counts and how many items were
    read.
    """
    rows = list(items)
    page = {"items": rows, "page": {"number": 0, "size": len(rows), "totalCount": len(rows)}}
    with tempfile.TemporaryDirectory(prefix="portone-recon-v2-again-") as tmp:
        spool = Spool(Path(tmp), "again")
        spool.add_page(V2Page(endpoint, orjson.dumps(page), len(rows), len(rows), rows))
        staging = Staging(con, PAYMENTS, spool, "_v2_again_stage")
        staging.stage(final=True)
        n = staging.finish(
            "_v2_again_pay",
            "status_changed_at DESC NULLS LAST, n DESC, idx DESC",
            "_v2_again_bad",
            leave_out=SCHEDULE_PLACEHOLDER_SQL,
        )
        con.execute(f"CREATE OR REPLACE TEMP TABLE _v2_again_can AS {cancellations_sql('_v2_again_pay')}")
        tables = _store_payments(
            con,
            "_v2_again_pay",
            "_v2_again_can",
            "_v2_again_bad",
            stream=stream,
            synced_at=synced_at,
            at=now,
            endpoint=endpoint,
        )
        staging.drop("_v2_again_pay")
    return tables, n
