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
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import duckdb
import orjson
import pyarrow as pa

from portone_recon.api.v2.records import (
    SCHEDULE_PLACEHOLDER_SQL,
    read_billing_key,
    read_cancellations,
    read_payment,
    read_schedule,
)
from portone_recon.config import Settings
from portone_recon.errors import PortOneReconError, SyncError
from portone_recon.store import Store, atomic
from portone_recon.sync.report import StreamResult, SyncReport, TableCounts

DEFAULT_LOOKBACK = timedelta(days=400)
DEFAULT_HORIZON = timedelta(days=400)
DEFAULT_OVERLAP = timedelta(hours=1)
#: The periodic re-read of refundable payments runs when the last one is older than this.
DEFAULT_FULL_EVERY = timedelta(days=7)
#: Items read, staged and released at a time (the V2 payment stream's memory bound).
CHUNK = 5000
#: How far before the cursor schedules are read again (those that executed since the last run).
SCHEDULE_RECHECK = timedelta(days=40)

_PAYMENT_COLS: tuple[tuple[str, str], ...] = (
    ("imp_uid", "VARCHAR"),
    ("merchant_uid", "VARCHAR"),
    ("customer_uid", "VARCHAR"),
    ("customer_uid_usage", "VARCHAR"),
    ("status", "VARCHAR"),
    ("amount", "BIGINT"),
    ("amount_exact", "DECIMAL(18, 4)"),
    ("cancel_amount", "BIGINT"),
    ("cancel_amount_exact", "DECIMAL(18, 4)"),
    ("currency", "VARCHAR"),
    ("pay_method", "VARCHAR"),
    ("channel", "VARCHAR"),
    ("pg_provider", "VARCHAR"),
    ("pg_tid", "VARCHAR"),
    ("name", "VARCHAR"),
    ("card_name", "VARCHAR"),
    ("card_number", "VARCHAR"),
    ("buyer_name", "VARCHAR"),
    ("buyer_email", "VARCHAR"),
    ("buyer_tel", "VARCHAR"),
    ("custom_data", "VARCHAR"),
    ("fail_reason", "VARCHAR"),
    ("cancel_reason", "VARCHAR"),
    ("started_at", "TIMESTAMPTZ"),
    ("paid_at", "TIMESTAMPTZ"),
    ("failed_at", "TIMESTAMPTZ"),
    ("cancelled_at", "TIMESTAMPTZ"),
    ("sandbox", "BOOLEAN"),
    ("api_version", "VARCHAR"),
    ("status_v2", "VARCHAR"),
    ("store_id", "VARCHAR"),
    ("billing_key", "VARCHAR"),
    ("schedule_id", "VARCHAR"),
    ("webhook_status", "VARCHAR"),
    ("status_changed_at", "TIMESTAMPTZ"),
)
_SCHEDULE_COLS: tuple[tuple[str, str], ...] = (
    ("merchant_uid", "VARCHAR"),
    ("customer_uid", "VARCHAR"),
    ("schedule_status", "VARCHAR"),
    ("payment_status", "VARCHAR"),
    ("schedule_at", "TIMESTAMPTZ"),
    ("executed_at", "TIMESTAMPTZ"),
    ("revoked_at", "TIMESTAMPTZ"),
    ("amount", "BIGINT"),
    ("amount_exact", "DECIMAL(18, 4)"),
    ("currency", "VARCHAR"),
    ("name", "VARCHAR"),
    ("custom_data", "VARCHAR"),
    ("buyer_name", "VARCHAR"),
    ("buyer_email", "VARCHAR"),
    ("buyer_tel", "VARCHAR"),
    ("schedule_id", "VARCHAR"),
    ("billing_key", "VARCHAR"),
    ("status_v2", "VARCHAR"),
    ("store_id", "VARCHAR"),
)
_CANCEL_COLS: tuple[tuple[str, str], ...] = (
    ("imp_uid", "VARCHAR"),
    ("cancellation_id", "VARCHAR"),
    ("pg_tid", "VARCHAR"),
    ("amount", "BIGINT"),
    ("amount_exact", "DECIMAL(18, 4)"),
    ("cancelled_at", "TIMESTAMPTZ"),
    ("reason", "VARCHAR"),
    ("receipt_url", "VARCHAR"),
)
_KEY_COLS: tuple[tuple[str, str], ...] = (
    ("billing_key", "VARCHAR"),
    ("customer_uid", "VARCHAR"),
    ("status", "VARCHAR"),
    ("pg_provider", "VARCHAR"),
    ("card_name", "VARCHAR"),
    ("card_number", "VARCHAR"),
    ("issued_at", "TIMESTAMPTZ"),
    ("deleted_at", "TIMESTAMPTZ"),
    ("store_id", "VARCHAR"),
)


class V2SyncClient(Protocol):
    """What the V2 sync needs of :class:`~portone_recon.api.v2.PortOneV2Client`."""

    @property
    def api_calls(self) -> int: ...

    def payments(
        self, since: datetime, until: datetime, *, timestamp_type: str = ..., version: str | None = ...
    ) -> Iterator[dict[str, Any]]: ...

    def schedules(self, since: datetime, until: datetime) -> Iterator[dict[str, Any]]: ...

    def billing_keys(
        self, since: datetime, until: datetime, *, version: str | None = ...
    ) -> Iterator[dict[str, Any]]: ...

    def get_payment(self, payment_id: str) -> dict[str, Any]: ...

    @property
    def settings(self) -> Settings: ...


def _stage(
    con: duckdb.DuckDBPyConnection, name: str, cols: tuple[tuple[str, str], ...], rows: list[dict[str, Any]]
) -> None:
    """``rows`` as a typed temp table ``name`` (+ ``raw`` JSON and its hash), converted column by column in
    Arrow (aware datetimes, exact decimals) and loaded in one statement."""
    arrays = []
    for c, kind in cols:
        values = [row.get(c) for row in rows]
        if kind == "TIMESTAMPTZ":
            arrays.append(pa.array(values, type=pa.timestamp("us", tz="UTC")))
        elif kind.startswith("DECIMAL"):
            arrays.append(pa.array(values, type=pa.decimal128(18, 4)))
        else:
            arrays.append(pa.array(values, type=_ARROW[kind]))
    arrays.append(pa.array([row.get("raw") for row in rows], type=pa.string()))
    table = pa.Table.from_arrays(arrays, names=[*(c for c, _ in cols), "raw"])
    con.register(f"{name}_arrow", table)
    con.execute(f"DROP TABLE IF EXISTS {name}")
    con.execute(
        f"CREATE TEMP TABLE {name} AS SELECT * EXCLUDE (raw), CAST(raw AS JSON) AS raw, "
        f"hash(raw) AS raw_hash FROM {name}_arrow"
    )
    con.unregister(f"{name}_arrow")


_ARROW = {"VARCHAR": pa.string(), "BIGINT": pa.int64(), "BOOLEAN": pa.bool_()}


def _upsert(
    con: duckdb.DuckDBPyConnection,
    table: str,
    staged: str,
    key: tuple[str, ...],
    cols: tuple[tuple[str, str], ...],
    *,
    synced_at: datetime,
    hashed: bool = True,
) -> TableCounts:
    """Insert new rows and rewrite changed ones (changed = another raw hash); counts both."""
    on = " AND ".join(f"t.{k} = s.{k}" for k in key)
    changed = "t.raw_hash IS DISTINCT FROM s.raw_hash" if hashed else "t.raw IS DISTINCT FROM s.raw"
    row = con.execute(
        f"SELECT count(*) FILTER (WHERE t.{key[0]} IS NULL), count(*) FILTER (WHERE t.{key[0]} IS NOT NULL "
        f"AND {changed}) FROM {staged} s LEFT JOIN {table} t ON {on}"
    ).fetchone()
    new, updated = (int(row[0]), int(row[1])) if row else (0, 0)
    names = [c for c, _ in cols]
    extra = ["raw", "raw_hash"] if hashed else ["raw"]
    all_cols = (
        [*names, *extra, "source_api", "synced_at"]
        if table != "v2_billing_keys"
        else [*names, "raw", "synced_at"]
    )
    select = ", ".join(
        "'v2'" if c == "source_api" else ("$at" if c == "synced_at" else f"s.{c}") for c in all_cols
    )
    sets = ", ".join(f"{c} = excluded.{c}" for c in all_cols if c not in key)
    where = (
        f"WHERE {table}.raw_hash IS DISTINCT FROM excluded.raw_hash"
        if hashed
        else f"WHERE {table}.raw::VARCHAR IS DISTINCT FROM excluded.raw::VARCHAR"
    )
    con.execute(
        f"INSERT INTO {table} ({', '.join(all_cols)}) SELECT {select} FROM {staged} s "
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {sets} {where}",
        {"at": synced_at},
    )
    return TableCounts(new, updated)


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
        self.synced_at = datetime.now(tz=UTC)
        self.con: duckdb.DuckDBPyConnection | None = None

    @contextmanager
    def _transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        assert self.con is not None
        with atomic(self.con, self.store.path) as con:
            yield con

    def _cursor(self, stream: str) -> datetime | None:
        assert self.con is not None
        row = self.con.execute("SELECT cursor FROM sync_state WHERE stream = ?", [stream]).fetchone()
        cursor = row[0] if row else None
        return cursor if cursor is not None and cursor <= self.now else None

    def _lo(self, stream: str) -> tuple[datetime, datetime | None]:
        cursor = self._cursor(stream)
        if self.since is not None:
            return self.since, cursor
        if cursor is not None:
            return cursor - self.overlap, cursor
        return self.until - self.lookback, None

    def _quarantine(
        self,
        con: duckdb.DuckDBPyConnection,
        source: str,
        endpoint: str,
        stream: str,
        bad: list[tuple[str | None, str, str]],
    ) -> TableCounts:
        if not bad:
            return TableCounts()
        con.execute("DROP TABLE IF EXISTS _v2_quarantine")
        con.execute("CREATE TEMP TABLE _v2_quarantine (record_key VARCHAR, reason VARCHAR, raw VARCHAR)")
        con.executemany("INSERT INTO _v2_quarantine VALUES (?, ?, ?)", bad)
        row = con.execute(
            "SELECT count(*) FILTER (WHERE q.raw_hash IS NULL), count(*) FILTER (WHERE q.raw_hash IS NOT "
            "NULL) "
            "FROM (SELECT DISTINCT hash(raw) AS h FROM _v2_quarantine) s "
            "LEFT JOIN quarantine q ON q.source = $source AND q.raw_hash = s.h",
            {"source": source},
        ).fetchone()
        con.execute(
            "INSERT INTO quarantine (source, record_key, endpoint, reason, stream, raw, raw_hash, "
            "first_seen, last_seen) "
            "SELECT $source, any_value(record_key), $endpoint, any_value(reason), $stream, "
            "CAST(any_value(raw) AS JSON), "
            "hash(raw), $at, $at FROM _v2_quarantine GROUP BY raw "
            "ON CONFLICT (source, raw_hash) DO UPDATE SET last_seen = excluded.last_seen, reason = "
            "excluded.reason",
            {"source": source, "endpoint": endpoint, "stream": stream, "at": self.now},
        )
        return TableCounts(int(row[0]), int(row[1])) if row else TableCounts()

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

    def _read(
        self,
        items: Iterable[dict[str, Any]],
        reader: Callable[[Any], tuple[dict[str, Any] | None, str | None]],
        key: str,
    ) -> tuple[dict[str, dict[str, Any]], list[tuple[str | None, str, str]], int]:
        good: dict[str, dict[str, Any]] = {}
        bad: list[tuple[str | None, str, str]] = []
        n = 0
        for item in items:
            n += 1
            raw = orjson.dumps(item).decode()
            rec, why = reader(item)
            if rec is None:
                rid = item.get(key) if isinstance(item, dict) else None
                bad.append((rid if isinstance(rid, str) else None, why or "unreadable", raw))
                continue
            rec["raw"] = raw
            rec["_item"] = item
            good[rec[_RECORD_KEY[reader]]] = rec  # adjacent windows share a bound: keep one copy
        return good, bad, n

    def _chunks(
        self,
        items: Iterable[dict[str, Any]],
        reader: Callable[[Any], tuple[dict[str, Any] | None, str | None]],
        key: str,
    ) -> Iterator[tuple[dict[str, dict[str, Any]], list[tuple[str | None, str, str]], int]]:
        """:meth:`_read` in pieces of :data:`CHUNK` items, so memory stays bounded by one piece."""
        it = iter(items)
        while True:
            piece = list(itertools.islice(it, CHUNK))
            if not piece:
                return
            yield self._read(piece, reader, key)

    def payments(self) -> StreamResult:
        stream = "v2:payments"
        lo, before = self._lo(stream)
        started_calls = self.client.api_calls
        items = self.client.payments(lo, self.until, version="V2" if self.only_v2 else None)
        n = 0
        bad: list[tuple[str | None, str, str]] = []
        with self._transaction() as con:
            _stage(con, "_v2_pay_all", _PAYMENT_COLS, [])
            _stage(con, "_v2_can_all", _CANCEL_COLS, [])
            for good, chunk_bad, k in self._chunks(items, read_payment, "transactionId"):
                n += k
                bad += chunk_bad
                cancels = [
                    {**c, "imp_uid": r["imp_uid"]}
                    for r in good.values()
                    for c in read_cancellations(r.pop("_item"), r["currency"])
                ]
                _stage(con, "_v2_pay_chunk", _PAYMENT_COLS, list(good.values()))
                con.execute(f"DELETE FROM _v2_pay_chunk WHERE {SCHEDULE_PLACEHOLDER_SQL}")
                _stage(con, "_v2_can_chunk", _CANCEL_COLS, cancels)
                con.execute("INSERT INTO _v2_pay_all SELECT * FROM _v2_pay_chunk")
                con.execute("INSERT INTO _v2_can_all SELECT * FROM _v2_can_chunk")
            # Adjacent windows share their bound: one copy of a repeated item (its latest state).
            con.execute(
                "CREATE OR REPLACE TEMP TABLE _v2_pay AS SELECT * FROM _v2_pay_all QUALIFY row_number() "
                "OVER (PARTITION BY imp_uid ORDER BY status_changed_at DESC NULLS LAST) = 1"
            )
            con.execute(
                "CREATE OR REPLACE TEMP TABLE _v2_can AS SELECT * EXCLUDE (raw, raw_hash) FROM _v2_can_all "
                "QUALIFY row_number() OVER (PARTITION BY imp_uid, cancellation_id) = 1"
            )
            pays = _upsert(con, "payments", "_v2_pay", ("imp_uid",), _PAYMENT_COLS, synced_at=self.synced_at)
            row = con.execute(
                "SELECT count(*) FROM _v2_can s LEFT JOIN payment_cancellations t USING (imp_uid, "
                "cancellation_id) "
                "WHERE t.imp_uid IS NULL"
            ).fetchone()
            con.execute(
                "INSERT INTO payment_cancellations (imp_uid, cancellation_id, pg_tid, amount, amount_exact, "
                "cancelled_at, "
                "reason, receipt_url, source_api, synced_at) SELECT imp_uid, cancellation_id, pg_tid, "
                "amount, amount_exact, "
                "cancelled_at, reason, receipt_url, 'v2', $at FROM _v2_can ON CONFLICT (imp_uid, "
                "cancellation_id) DO NOTHING",
                {"at": self.synced_at},
            )
            q = self._quarantine(con, "payments", "/payments", stream, bad)
            con.execute(
                "DELETE FROM quarantine WHERE source = 'payments' AND record_key IN (SELECT imp_uid FROM "
                "_v2_pay)"
            )
            self._state(con, stream, self.until, lo, {"items": n, "only_v2": self.only_v2})
        tables = {
            "payments": pays,
            "payment_cancellations": TableCounts(int(row[0]) if row else 0, 0),
            "quarantine": q,
        }
        return StreamResult(
            stream,
            lo,
            self.until,
            before,
            self.until,
            items=n,
            tables=tables,
            api_calls=self.client.api_calls - started_calls,
        )

    def schedules(self) -> StreamResult:
        stream = "v2:schedules"
        lo, before = self._lo(stream)
        if self.since is None and before is not None:
            lo -= SCHEDULE_RECHECK
        hi = self.until + self.horizon
        started_calls = self.client.api_calls
        good, bad, n = self._read(self.client.schedules(lo, hi), read_schedule, "paymentId")
        with self._transaction() as con:
            _stage(con, "_v2_sch", _SCHEDULE_COLS, list(good.values()))
            counts = _upsert(
                con, "schedules", "_v2_sch", ("merchant_uid",), _SCHEDULE_COLS, synced_at=self.synced_at
            )
            # The attempt a schedule executed is its payment's (same merchant_uid); the failure reason too.
            con.execute(
                "UPDATE schedules SET imp_uid = p.imp_uid, fail_reason = p.fail_reason FROM ("
                "SELECT merchant_uid, arg_max(imp_uid, coalesce(status_changed_at, started_at)) AS imp_uid, "
                "arg_max(fail_reason, coalesce(status_changed_at, started_at)) AS fail_reason FROM payments "
                "WHERE merchant_uid IN (SELECT merchant_uid FROM _v2_sch) GROUP BY merchant_uid) p "
                "WHERE schedules.merchant_uid = p.merchant_uid AND schedules.source_api = 'v2' "
                "AND schedules.schedule_status = 'executed'"
            )
            q = self._quarantine(con, "schedules", "/payment-schedules", stream, bad)
            con.execute(
                "DELETE FROM quarantine WHERE source = 'schedules' AND record_key IN (SELECT merchant_uid "
                "FROM _v2_sch)"
            )
            self._state(con, stream, self.until, lo, {"items": n})
        return StreamResult(
            stream,
            lo,
            hi,
            before,
            self.until,
            items=n,
            tables={"schedules": counts, "quarantine": q},
            api_calls=self.client.api_calls - started_calls,
        )

    def billing_keys(self) -> StreamResult:
        stream = "v2:billing_keys"
        lo, before = self._lo(stream)
        started_calls = self.client.api_calls
        good, bad, n = self._read(
            self.client.billing_keys(lo, self.until, version="V2" if self.only_v2 else None),
            read_billing_key,
            "billingKey",
        )
        for r in good.values():
            r["status"] = "DELETED" if r["deleted"] else "ISSUED"
            r["issued_at"] = r["inserted"]
        with self._transaction() as con:
            _stage(con, "_v2_key", _KEY_COLS, list(good.values()))
            _upsert(
                con,
                "v2_billing_keys",
                "_v2_key",
                ("billing_key",),
                _KEY_COLS,
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
                "b.customer_uid IS NOT NULL "
                "AND (b.billing_key IS DISTINCT FROM c.billing_key OR b.deleted <> c.deleted)) FROM _v2_cust "
                "c "
                "LEFT JOIN billing_keys b USING (customer_uid)"
            ).fetchone()
            con.execute(
                "INSERT INTO billing_keys (customer_uid, pg_provider, card_name, card_number, inserted, "
                "updated, deleted, "
                "deleted_seen_at, raw, raw_hash, synced_at, source_api, billing_key) "
                "SELECT c.customer_uid, k.pg_provider, k.card_name, k.card_number, k.issued_at, "
                "coalesce(c.deleted_at, k.issued_at), "
                "c.deleted, CASE WHEN c.deleted THEN c.deleted_at END, k.raw, hash(k.raw::VARCHAR), $at, "
                "'v2', c.billing_key "
                "FROM _v2_cust c JOIN v2_billing_keys k USING (billing_key) "
                "ON CONFLICT (customer_uid) DO UPDATE SET pg_provider = excluded.pg_provider, card_name = "
                "excluded.card_name, "
                "card_number = excluded.card_number, inserted = excluded.inserted, updated = "
                "excluded.updated, "
                "deleted = excluded.deleted, deleted_seen_at = excluded.deleted_seen_at, raw = excluded.raw, "
                "raw_hash = excluded.raw_hash, synced_at = excluded.synced_at, source_api = "
                "excluded.source_api, "
                "billing_key = excluded.billing_key "
                # a live V1 key is never replaced by a deleted V2 one
                "WHERE NOT (billing_keys.source_api = 'v1' AND NOT billing_keys.deleted AND "
                "excluded.deleted) "
                "AND (billing_keys.billing_key IS DISTINCT FROM excluded.billing_key OR billing_keys.deleted "
                "<> excluded.deleted "
                "OR billing_keys.raw_hash IS DISTINCT FROM excluded.raw_hash)",
                {"at": self.synced_at},
            )
            q = self._quarantine(con, "billing_keys", "/billing-keys", stream, bad)
            self._state(con, stream, self.until, lo, {"items": n})
        counts = TableCounts(int(row[0]), int(row[1])) if row else TableCounts()
        return StreamResult(
            stream,
            lo,
            self.until,
            before,
            self.until,
            items=n,
            tables={"billing_keys": counts, "quarantine": q},
            api_calls=self.client.api_calls - started_calls,
        )

    def run(self) -> list[StreamResult]:
        out = []
        with self.store.connect() as con:
            self.con = con
            try:
                for name, fn in (
                    ("v2:payments", self.payments),
                    ("v2:schedules", self.schedules),
                    ("v2:billing_keys", self.billing_keys),
                ):
                    try:
                        out.append(fn())
                    except PortOneReconError as exc:
                        self._error(name, exc)
                        raise
                    except duckdb.Error as exc:
                        self._error(name, exc)
                        raise SyncError(f"stream {name}: writing to {self.store.path} failed: {exc}") from exc
            finally:
                self.con = None
        return out

    def _error(self, stream: str, exc: BaseException) -> None:
        assert self.con is not None
        with suppress(duckdb.Error):
            self.con.execute(
                "INSERT INTO sync_state (stream, last_error) VALUES (?, ?) "
                "ON CONFLICT (stream) DO UPDATE SET last_error = excluded.last_error",
                [stream, f"{type(exc).__name__}: {exc}"[:2000]],
            )


_RECORD_KEY: dict[Callable[[Any], tuple[dict[str, Any] | None, str | None]], str] = {
    read_payment: "imp_uid",
    read_schedule: "merchant_uid",
    read_billing_key: "billing_key",
}


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
) -> SyncReport:
    """Pull PortOne V2 into ``store`` (see the module docstring).

    Args:
        client: a :class:`~portone_recon.api.v2.PortOneV2Client`.
        store: the DuckDB store (migrated here).
        since / until: a backfill range; None = incremental up to ``now``.
        now: PortOne's clock (the sandbox's); None = the wall clock.
        only_v2: read only ``version: "V2"`` payments (the merchant's V1 payments come from the V1 sync).
        full: do the periodic re-read of refundable payments now (:mod:`~portone_recon.sync.v2_capture`).
        full_every: that re-read runs when the last one is older than this (PortOne's clock).
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
    store: Store,
    now: datetime,
    synced_at: datetime,
    stream: str,
    endpoint: str,
) -> tuple[dict[str, TableCounts], int]:
    """Store raw V2 payments read outside the listing (one by one, by id) as ``v2:payments`` stores them.

    Same tolerant reader; rows rewritten only when their JSON changed; new cancellations added; an item
    that cannot be read is quarantined (``endpoint``, ``stream``) and one read cleanly leaves quarantine.
    Runs inside the caller's transaction on ``con`` (the store's connection). Returns the table counts
    and how many items were read.
    """
    run = _V2Run(
        _NO_CLIENT,
        store,
        since=None,
        until=now,
        now=now,
        lookback=DEFAULT_LOOKBACK,
        horizon=DEFAULT_HORIZON,
        overlap=DEFAULT_OVERLAP,
        only_v2=False,
    )
    n = 0
    bad: list[tuple[str | None, str, str]] = []
    _stage(con, "_v2_again_pay_all", _PAYMENT_COLS, [])
    _stage(con, "_v2_again_can_all", _CANCEL_COLS, [])
    for good, chunk_bad, k in run._chunks(items, read_payment, "transactionId"):
        n += k
        bad += chunk_bad
        cancels = [
            {**c, "imp_uid": r["imp_uid"]}
            for r in good.values()
            for c in read_cancellations(r.pop("_item"), r["currency"])
        ]
        _stage(con, "_v2_again_pay_chunk", _PAYMENT_COLS, list(good.values()))
        _stage(con, "_v2_again_can_chunk", _CANCEL_COLS, cancels)
        con.execute("INSERT INTO _v2_again_pay_all SELECT * FROM _v2_again_pay_chunk")
        con.execute("INSERT INTO _v2_again_can_all SELECT * FROM _v2_again_can_chunk")
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _v2_again_pay AS SELECT * FROM _v2_again_pay_all QUALIFY "
        "row_number() OVER (PARTITION BY imp_uid ORDER BY status_changed_at DESC NULLS LAST) = 1"
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _v2_again_can AS SELECT * EXCLUDE (raw, raw_hash) FROM "
        "_v2_again_can_all QUALIFY row_number() OVER (PARTITION BY imp_uid, cancellation_id) = 1"
    )
    pays = _upsert(con, "payments", "_v2_again_pay", ("imp_uid",), _PAYMENT_COLS, synced_at=synced_at)
    row = con.execute(
        "SELECT count(*) FROM _v2_again_can s LEFT JOIN payment_cancellations t "
        "USING (imp_uid, cancellation_id) WHERE t.imp_uid IS NULL"
    ).fetchone()
    con.execute(
        "INSERT INTO payment_cancellations (imp_uid, cancellation_id, pg_tid, amount, amount_exact, "
        "cancelled_at, reason, receipt_url, source_api, synced_at) SELECT imp_uid, cancellation_id, pg_tid, "
        "amount, amount_exact, cancelled_at, reason, receipt_url, 'v2', $at FROM _v2_again_can "
        "ON CONFLICT (imp_uid, cancellation_id) DO NOTHING",
        {"at": synced_at},
    )
    q = run._quarantine(con, "payments", endpoint, stream, bad)
    con.execute(
        "DELETE FROM quarantine WHERE source = 'payments' AND record_key IN (SELECT imp_uid FROM "
        "_v2_again_pay)"
    )
    tables = {
        "payments": pays,
        "payment_cancellations": TableCounts(int(row[0]) if row else 0, 0),
        "quarantine": q,
    }
    return tables, n


class _NoClient:
    """Stands in for the client where a run only stores (:func:`ingest_payment_items` sends nothing)."""

    api_calls = 0


_NO_CLIENT: Any = _NoClient()
