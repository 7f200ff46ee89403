"""Pull PortOne V1 payments, cancellations, schedules and billing keys into the DuckDB store.

Streams, run in this order, each committed in ONE transaction together with its ``sync_state`` cursor
(a run killed anywhere leaves every stream either fully before or fully after; a rerun converges):

``payments:ready`` / ``payments:paid`` / ``payments:failed`` / ``payments:cancelled``
    ``GET /payments/status/{status}`` on that status's own time axis (ready: started_at, paid: paid_at,
    failed: failed_at, cancelled: cancelled_at), windows of at most 90 days, ``limit`` 1000, pages
    fetched ``concurrency`` at a time by the client. Range: ``[cursor - overlap, until)``; first run
    ``[until - lookback, until)`` (``lookback`` default 400 days). Status changes are caught because the
    payment re-appears under its new status at its new timestamp (ready->paid at paid_at, paid->cancelled
    at cancelled_at, failed->paid at paid_at). Offset paging can skip a row that slides onto an
    already-read page when another row leaves the listing mid-walk; a window whose distinct imp_uids
    fall short of its ``total`` is listed once more.
``payments:updated``
    A partial refund does not change ``status`` nor ``paid_at``, so the ``paid`` stream cannot see it.
    This stream reads ``GET /payments/status/paid`` over the refund window (default 90 days back from
    ``until``: one window) with ``sorting=-updated`` one page at a time, and stops at the first page
    holding a payment not updated since ``cursor - overlap`` (PortOne's "updated": the latest of
    started/paid/failed/cancelled_at and the cancel_history times). Cost: one call per window plus one
    per 1000 changed payments. Decision: sequential requests here (not the concurrent page iterator), so
    an early stop never leaves pages in flight. No PortOne source confirms that a refund moves
    ``updated``; refunds this scan misses (any age) are caught by ``payments:refundable``.
    First run: no scan (the status streams have just read the current state); the cursor is set.
    The scan covers only ``paid_at`` in ``[until - refund_window, paid_lo)`` where
    ``paid_lo`` is where this run's ``payments:paid`` listing starts: that listing (committed just
    before, with its short-window re-listing guard) already holds every payment paid since, in its
    current state, refunds included. So the day's new payments are read once, not twice.
``payments:refundable``
    Every ``full_every`` (and on ``full=True``), every stored payment paid before this run's ``paid``
    listing that still has a refundable balance (``paid``, or ``cancelled`` with money left) is read again
    by ``imp_uid`` (``GET /payments?imp_uid[]=``, 100 per call, concurrent): a refund of any age is seen
    within ``full_every`` whatever PortOne's ``updated`` or status does. First run and backfills: no pass.
``schedules``
    ``GET /subscribe/payments/schedule`` by ``schedule_at`` in windows of at most 90 days over
    ``[cursor - overlap, until + horizon)`` (first run ``[until - lookback, ...)``, ``horizon`` default
    400 days). The API has no change feed for schedules, so an incremental run reads
    ``[cursor - overlap, until + schedule_near)`` (default 40 days: where renewals are booked for the
    next month); the whole horizon is re-read by the periodic full pass, when the last one (``full_at``
    in ``sync_state.detail``, PortOne's clock) is older than ``full_every`` (default 7 days), on
    ``full=True`` and on the first run. Consequence: a revocation, reschedule or new booking more than
    ``schedule_near`` ahead is seen within ``full_every`` (a schedule moved out of the near range stays
    stored at its old time until then, or until it is past and re-fetched as stuck, below). A backfill
    reads ``[since, until)`` and does not count as a full pass. Past schedules that may still change
    are re-fetched one by one (``GET /subscribe/payments/schedule/{merchant_uid}``): those still
    ``scheduled`` before the range (stuck), and those whose payment (same merchant_uid) was written
    since the last schedules run and disagrees with the stored schedule (a retry, a refund). On an
    incremental run, each active subscription whose interval reaches past the near range (quarterly,
    annual) has its next renewal window read from its customer's schedules (one call each,
    ``capture.renewal_windows``): a renewal booked 11 months ahead is seen the next day.
``billing_keys``
    ``GET /subscribe/customers?customer_uid[]=`` (100 per call). An incremental run
    looks up customers that are new (no stored key), stored as deleted, have a charge booked in the
    future (checked daily: one call per 100 such customers), or have a failed payment or a
    failed/revoked schedule written since the last billing-key run. Every known key is re-read by the
    periodic full pass (same ``full_every`` rule, its own ``full_at``), on
    ``full=True``/``full_billing_keys=True`` and on the first run; then the lookups start beside the
    listings, fed with each staged part's customers, and share the client's pool (``_keys``). A key the
    lookup leaves out is stored deleted; its own ``GET /subscribe/customers/{customer_uid}`` proves it
    where the proof decides something, and a sample of the rest is proven each run (``_keys`` says how,
    and what happens when a GET finds a live key). A re-issued key is un-deleted. Keys the V2 sync
    stored are left to it.

Quarantine: a record the reader cannot store (unknown status, missing id, an amount that is no number,
an instant a row is placed by that is not unix seconds) is kept in the ``quarantine`` table with its raw
JSON, endpoint and reason; the stream stores everything else and its cursor moves. The report counts
them (``SyncReport.quarantined``; ``portone-recon sync`` exits 1), reconcile results and the daily report
show them on their own line, and a quarantined record whose key is later stored cleanly leaves the
table. What each change costs and how soon it is caught: :mod:`portone_recon.sync.capture`.

Cursors: ``until`` of the run (PortOne's clock, ``client.server_now()`` from ``POST /users/getToken``'s
``now`` when ``now`` is not given: the sandbox's clock is not the wall clock; everything before the cursor
on that stream's axis is in the tables). Overlap default 1 hour (rows committed late at PortOne).
``deleted_seen_at`` of billing keys is PortOne's clock too, so a rerun or a killed-and-rerun sync writes the
same value as an uninterrupted one.

The store is not held over the network. The run works in its own scratch DuckDB (in memory, capped at
``_job.MEMORY_LIMIT`` and spilling to the run's temporary folder): pages are fetched into spool files and
staged into its TEMP tables while the store file is closed. The store is attached to that connection
(``Store.attached``) only to read what a pass needs (cursors, ids to look up) and to merge and commit a
stream in one transaction; detaching folds the write-ahead log into the file. So a notebook or report
opens the store between streams; it waits at most for one stream's merge and commit, never for a fetch.

A backfill (``since``/``until``) writes rows but moves a cursor only forwards and only when its range starts
at or before the cursor (no gap); it never moves a cursor backwards. An ``until`` later than PortOne's now is
clamped to now (and then reads schedules ahead as a run without ``until`` does): a cursor past now would make
every later sync skip what happens until then. A stored cursor already past now is dropped, and its stream
reads its lookback again.

Rows are written only when their content changed (compared on the raw JSON), so a rerun changes
nothing and ``synced_at`` says when the row last changed here. ``raw`` keeps each item's JSON text.
Ingest goes through an NDJSON spool and one DuckDB ``read_json`` per stream (see ``_ingest``).

Overlap: every listing is fetched ahead of its stream's turn into spool files on disk, the payment
listings on one thread and the schedule listing beside them (``_listings``); a full billing-key pass
sends its lookups on a third thread (``_keys``). All of them share the client's pool of
``concurrency`` requests, the work fetched for later as background work: more threads fill the pool's
idle slots, never put more requests in flight. The main thread ingests and commits the streams in
order; fetching writes nothing to the store, so each stream's rows and cursor are still committed
together and in order, and a failed fetch is raised when its stream's turn comes (earlier streams
committed). Each listing and the lookups count their own API calls, so a stream's ``api_calls`` is
exact; the main thread calls the API only after the last listing (schedule re-fetches, deletion
proofs). Pages are written to disk as they arrive and dropped, so memory does not grow with the stream;
finished spool files are staged into TEMP part tables while later pages arrive, so the stream's
transaction holds only the checks that span parts, the merge and the cursor.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import duckdb
import orjson
from tqdm.auto import tqdm

from portone_recon._time import instant_arg, parse_instant
from portone_recon.api.models import MultiResult
from portone_recon.errors import (
    NotFoundError,
    PortOneReconError,
    SyncError,
    UsageError,
)
from portone_recon.store.store import Store, atomic
from portone_recon.sync import _ingest, _keys, capture
from portone_recon.sync._job import auto_progress, guarded, scratch
from portone_recon.sync._keys import KeyClient, KeyLookups
from portone_recon.sync._listings import Fetched, ListingClient, Listings
from portone_recon.sync._spool import Spool
from portone_recon.sync.report import StreamResult, SyncReport, TableCounts

PAYMENT_STREAM_STATUSES = ("ready", "paid", "failed", "cancelled")
STATUS_ENDPOINT = "/payments/status/{payment_status}"
DEFAULT_LOOKBACK = timedelta(days=400)
DEFAULT_HORIZON = timedelta(days=400)
DEFAULT_OVERLAP = timedelta(hours=1)
DEFAULT_REFUND_WINDOW = timedelta(days=90)
DEFAULT_SCHEDULE_NEAR = timedelta(days=40)
DEFAULT_FULL_EVERY = timedelta(days=7)
PAGE_LIMIT = 1000
#: A listing's spool finishes a file every this many items; the main thread stages finished files into
#: the stream's TEMP table while later pages are still being fetched (so the paid stream's staging
#: does not wait for its last page). Validation, merge and cursor stay in the stream's transaction.
CHUNK_ITEMS = 20_000
#: Lookups by id (refundable payments, past schedules, billing keys) are sent and spooled this many ids
#: at a time, so no whole answer of a large merchant is held as Python objects.
LOOKUP_BATCH = 5_000

Instant = datetime | date | str


class SyncClient(ListingClient, KeyClient, Protocol):
    """What the sync needs of :class:`~portone_recon.api.client.PortOneClient`: the listings', the key
    lookups' and the following."""

    @property
    def api_calls(self) -> int: ...

    def server_now(self) -> datetime: ...

    def iter_customer_schedule_pages(
        self, customer_uid: str, since: Any, until: Any, *, status: str | None = ...
    ) -> Iterator[Any]: ...

    def fetch_schedule_items(self, merchant_uids: Sequence[str]) -> MultiResult[dict[str, Any]]: ...

    def fetch_payment_items(self, imp_uids: Sequence[str]) -> MultiResult[dict[str, Any]]: ...


@dataclass(frozen=True)
class _State:
    cursor: datetime | None
    last_success: datetime | None
    full_at: datetime | None = None
    lookup_omits_live: bool = False


def sync(
    client: SyncClient,
    store: Store,
    since: Instant | None = None,
    until: Instant | None = None,
    *,
    lookback: timedelta = DEFAULT_LOOKBACK,
    horizon: timedelta = DEFAULT_HORIZON,
    overlap: timedelta = DEFAULT_OVERLAP,
    refund_window: timedelta = DEFAULT_REFUND_WINDOW,
    full_billing_keys: bool = False,
    now: datetime | None = None,
    progress: bool | None = None,
    full: bool = False,
    schedule_near: timedelta = DEFAULT_SCHEDULE_NEAR,
    full_every: timedelta = DEFAULT_FULL_EVERY,
) -> SyncReport:
    """Pull PortOne into ``store``: payments, cancellations, schedules, billing keys.

    Incremental by default (each stream from its cursor); ``since``/``until`` backfill a range.

    Args:
        client: a :class:`~portone_recon.api.client.PortOneClient` (or anything with its methods).
        store: the DuckDB store.
        since: start of a backfill (a date means 00:00 Asia/Seoul); None = incremental.
        until: end of the range (exclusive); None = PortOne's ``now``; a later instant is clamped to it.
        lookback: how far back the first run reads when the store is empty and no ``since``.
        horizon: how far past ``until`` schedules are read (future charges).
        overlap: re-read this much before each cursor (late-committed rows).
        refund_window: how old a paid payment may be for its partial refunds to be caught.
        full_billing_keys: re-read every known billing key, not only those of changed customers.
        now: PortOne's current time; None asks PortOne (``getToken``'s ``now``).
        progress: True shows a bar, False hides it, None shows it only on a terminal / in Jupyter.
        full: do the periodic full pass now (whole schedule horizon, every known billing key).
        schedule_near: on incremental runs schedules are read up to ``until + schedule_near`` only.
        full_every: the full pass runs when the last one is older than this (PortOne's clock).

    Returns:
        A :class:`SyncReport` (rows new/updated per table, API calls, seconds, streams).

    Raises:
        APIError: a PortOne call failed (the failing stream's rows and cursor are unchanged; streams
            before it are committed). MalformedResponseError names the endpoint and field.
        SyncError: writing a stream failed.
        UsageError: ``since``/``until`` unparseable, or ``since`` not before ``until`` (or now).
    """
    started = time.perf_counter()
    calls_before = client.api_calls
    since_dt = instant_arg(since, "since") if since is not None else None
    asked_until = instant_arg(until, "until") if until is not None else None
    server_now = now if now is not None else portone_now(client)
    # No cursor may pass now: a later until is clamped, and then reads ahead as a run without until.
    reads_ahead = asked_until is None or asked_until > server_now
    until_dt = server_now if reads_ahead or asked_until is None else asked_until
    if since_dt is not None and since_dt >= until_dt:
        later = "PortOne's now" if reads_ahead else "until"
        raise UsageError(f"since ({since_dt.isoformat()}) must be before {later} ({until_dt.isoformat()})")
    run = _Run(
        client=client,
        store=store,
        since=since_dt,
        until=until_dt,
        schedule_until=until_dt + horizon if reads_ahead else until_dt,
        lookback=lookback,
        overlap=overlap,
        refund_window=refund_window,
        full_billing_keys=full_billing_keys or full,
        full=full,
        schedule_near=schedule_near,
        full_every=full_every,
        synced_at=datetime.now(tz=UTC),
        now=server_now,
        progress=progress,
    )
    results = run.run_all()
    return SyncReport.of(
        results,
        api_calls=client.api_calls - calls_before,
        seconds=time.perf_counter() - started,
        since=since_dt,
        until=until_dt,
        now=server_now,
    )


def portone_now(client: SyncClient) -> datetime:
    """PortOne's clock (``getToken``'s ``now``): the sandbox's clock is not the wall clock."""
    return client.server_now()


def _sane_cursor(cursor: datetime | None, now: datetime) -> datetime | None:
    """A stored cursor past PortOne's now (left by an unbounded ``until`` before it was clamped) is
    dropped: where the data really stops is unknown, so the stream reads its first-run lookback again
    (rows are written only when changed, so that costs calls, not duplicates)."""
    return None if cursor is not None and cursor > now else cursor


def _advance(old: datetime | None, lo: datetime, hi: datetime) -> datetime | None:
    """The new cursor after reading ``[lo, hi)``: forwards only, and only without a gap."""
    if old is None:
        return hi
    if lo <= old < hi:
        return hi
    return old


@dataclass
class _Run:
    client: SyncClient
    store: Store
    since: datetime | None
    until: datetime
    schedule_until: datetime
    lookback: timedelta
    overlap: timedelta
    refund_window: timedelta
    full_billing_keys: bool
    full: bool
    schedule_near: timedelta
    full_every: timedelta
    synced_at: datetime
    now: datetime
    progress: bool | None
    con: duckdb.DuckDBPyConnection | None = None
    _keys: KeyLookups | None = None
    _listings: Listings | None = None
    #: whether this run's billing-key pass is a full one, whose lookups start beside the listings
    _keys_early: bool = False

    def run_all(self) -> list[StreamResult]:
        self.store.migrate()
        with tempfile.TemporaryDirectory(prefix="portone-recon-sync-") as tmp:
            folder = Path(tmp)
            con = scratch(folder)
            self.con = con
            try:
                return self._run_streams(folder)
            finally:
                self.con = None
                con.close()

    def _run_streams(self, folder: Path) -> list[StreamResult]:
        keys = self._keys = KeyLookups(self.client, self._con, folder, chunk_items=CHUNK_ITEMS)
        try:
            return self._run_streams_with_keys(folder, keys)
        finally:
            self._keys = None
            keys.close()

    def _run_streams_with_keys(self, folder: Path, keys: KeyLookups) -> list[StreamResult]:
        with self._store():
            states = self._states()
            self._keys_early = self._keys_full(states.get("billing_keys"))
            keys.skip(capture.v2_key_customers(self._con))
            if self._keys_early:  # every known customer: looked up beside the listings
                keys.ask(capture.customers_to_fetch(self._con, None, self.now))
        results: list[StreamResult] = []
        with self._bar() as bar, self._listings_for(folder, bar) as listings:
            self._listings = listings
            listings.start(
                {
                    status: (self._lo(states.get(f"payments:{status}")), self.until)
                    for status in PAYMENT_STREAM_STATUSES
                },
                self._updated_scan(states),
                self._schedule_range(states.get("schedules"))[:2],
                self._staging(_ingest.stage_schedules),
            )
            try:
                for status in PAYMENT_STREAM_STATUSES:
                    results.append(self._payments_guarded(status, states, folder, bar))
                name = "payments:updated"
                results.append(self._guard(name, lambda: self._updated(states.get(name), folder, bar)))
                again = "payments:refundable"
                paid_lo = self._lo(states.get("payments:paid"))
                results.append(
                    self._guard(again, lambda: self._refundable(states.get(again), paid_lo, folder, bar))
                )
                results.append(
                    self._guard("schedules", lambda: self._schedules(states.get("schedules"), folder, bar))
                )
                results.append(
                    self._guard(
                        "billing_keys", lambda: self._billing_keys(states.get("billing_keys"), folder, bar)
                    )
                )
            finally:
                self._listings = None
        return results

    def _listings_for(self, folder: Path, bar: Any) -> Listings:
        return Listings(
            self.client,
            self._con,
            folder,
            bar,
            chunk_items=CHUNK_ITEMS,
            until=self.until,
            refund_window=self.refund_window,
            overlap=self.overlap,
        )

    def _updated_scan(self, states: dict[str, _State]) -> tuple[datetime, datetime] | None:
        """``(cursor, paid_lo)`` of this run's ``-updated`` scan; None on its first run (no scan)."""
        upd = states.get("payments:updated")
        if upd is None or upd.cursor is None:
            return None
        return upd.cursor, self._lo(states.get("payments:paid"))

    @property
    def _lists(self) -> Listings:
        if self._listings is None:  # pragma: no cover - only inside run_all
            raise SyncError("the sync's listings are closed")
        return self._listings

    def _schedule_range(self, state: _State | None) -> tuple[datetime, datetime, bool]:
        """``[lo, hi)`` of this run's schedule listing and whether it is the full-horizon pass."""
        lo = self._lo(state)
        if self.since is not None:  # a backfill reads [since, until): not a full-horizon pass
            return lo, self.schedule_until, False
        if state is None or state.cursor is None:
            return lo, self.schedule_until, True
        if self.full or _due(state.full_at, self.now, self.full_every):
            return lo, self.schedule_until, True
        return lo, min(self.schedule_until, self.until + self.schedule_near), False

    def _payments_guarded(
        self, status: str, states: dict[str, _State], folder: Path, bar: Any
    ) -> StreamResult:
        name = f"payments:{status}"
        return self._guard(name, lambda: self._payments(status, states.get(name), folder, bar))

    # -- plumbing -------------------------------------------------------------------------------

    @contextmanager
    def _bar(self) -> Iterator[Any]:
        show = auto_progress() if self.progress is None else self.progress
        bar = tqdm(desc="sync", unit=" items", disable=not show, leave=True)
        try:
            yield bar
        finally:
            bar.close()

    @property
    def _con(self) -> duckdb.DuckDBPyConnection:
        if self.con is None:  # pragma: no cover - only inside run_all
            raise SyncError("the sync's store connection is closed")
        return self.con

    def _store(self) -> AbstractContextManager[None]:
        """The store attached to the run's scratch connection: the only place the file is held."""
        return self.store.attached(self._con)

    @contextmanager
    def _transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """BEGIN ... COMMIT in the store (attached for it); any exception rolls back and propagates."""
        with self._store(), atomic(self._con, self.store.path) as con:
            yield con

    def _states(self) -> dict[str, _State]:
        rows = self._con.execute("SELECT stream, cursor, last_success, detail FROM sync_state").fetchall()
        return {
            str(s): _State(
                cursor=_sane_cursor(c, self.now),
                last_success=ls,
                full_at=_full_at(d),
                lookup_omits_live=_detail(d).get("lookup_omits_live") is True,
            )
            for s, c, ls, d in rows
        }

    def _guard(self, stream: str, fn: Callable[[], StreamResult]) -> StreamResult:
        return guarded(stream, fn, self._transaction, self.store.path)

    def _commit(
        self,
        stream: str,
        write: Callable[[duckdb.DuckDBPyConnection], dict[str, TableCounts]],
        *,
        cursor: datetime | None,
        detail: dict[str, Any],
        covered: tuple[datetime, datetime] | None = None,
    ) -> dict[str, TableCounts]:
        """Rows and cursor of one stream in one transaction.

        ``covered`` is the ``[lo, hi)`` the stream just listed completely: ``covered_from`` (where the
        stream's rows are complete from, up to its cursor) moves back to ``lo`` when that range joins what
        was covered already (a first run, or a backfill reaching the covered range); a disjoint backfill
        leaves it alone.
        """
        lo, hi = covered if covered is not None else (None, None)
        with self._transaction() as con:
            counts = write(con)
            con.execute(
                "INSERT INTO sync_state (stream, cursor, last_success, last_error, detail, covered_from) "
                "VALUES ($stream, $cursor, $at, NULL, $detail, $lo) ON CONFLICT (stream) DO UPDATE SET "
                "cursor = excluded.cursor, last_success = excluded.last_success, last_error = NULL, "
                "detail = excluded.detail, covered_from = CASE "
                "WHEN $lo IS NULL THEN sync_state.covered_from "
                "WHEN sync_state.covered_from IS NULL THEN $lo "
                "WHEN $hi >= sync_state.covered_from THEN least(sync_state.covered_from, $lo) "
                "ELSE sync_state.covered_from END",
                {
                    "stream": stream,
                    "cursor": cursor,
                    "at": self.synced_at,
                    "detail": orjson.dumps(detail, default=str).decode(),
                    "lo": lo,
                    "hi": hi,
                },
            )
        return counts

    def _lo(self, state: _State | None) -> datetime:
        if self.since is not None:
            return self.since
        if state is not None and state.cursor is not None:
            return state.cursor - self.overlap
        return self.until - self.lookback

    # -- streams ----------------------------------------------------------------------------------

    def _payments(self, status: str, state: _State | None, folder: Path, bar: Any) -> StreamResult:
        stream = f"payments:{status}"
        old = state.cursor if state else None
        stage = self._staging(_ingest.stage_payments)
        fetched = self._lists.take(stream, stage) or self._lists.fetch_payments(
            status, self._lo(state), self.until
        )
        lo, hi = fetched.lo, fetched.hi
        bar.set_description(f"sync {stream}")
        try:
            # The rest of the spool, outside the stream's transaction (see _schedules).
            stage(fetched.spool, final=True)
            return self._commit_payments(
                stream, fetched.spool, lo, hi, old, _advance(old, lo, hi), fetched.calls
            )
        finally:
            fetched.spool.remove()

    def _updated(self, state: _State | None, folder: Path, bar: Any) -> StreamResult:
        stream = "payments:updated"
        old = state.cursor if state else None
        hi = self.until
        lo = hi - self.refund_window
        bar.set_description(f"sync {stream}")
        note = ""
        if old is None:
            fetched = Fetched(Spool(folder, "payments_updated"), 0, lo, lo)
            note = "first run: no scan (the status streams read the current state)"
        else:
            fetched = self._lists.take(stream) or self._lists.fetch_updated(old, self.until)
            if fetched.hi < hi:
                note = f"scanned paid_at before {fetched.hi.isoformat()} (the paid stream read the rest)"
        try:
            cursor = old if old is not None and old >= hi else hi
            return self._commit_payments(stream, fetched.spool, lo, hi, old, cursor, fetched.calls, note=note)
        finally:
            fetched.spool.remove()

    def _refundable(self, state: _State | None, paid_lo: datetime, folder: Path, bar: Any) -> StreamResult:
        """The periodic re-read of every stored payment that still has a refundable balance.

        No PortOne source says that a partial refund moves a payment's ``updated`` (the ``-updated``
        scan relies on it) or its status, so every ``full_every`` (and on ``full``) each payment that
        could still be refunded is read again by ``imp_uid`` (100 per call, concurrent): a refund of any
        age is caught within ``full_every`` whatever PortOne's ``updated`` does. Payments this run's
        ``paid`` listing has just read are skipped. First run: no pass (everything was just listed).
        """
        stream = "payments:refundable"
        old = state.cursor if state else None
        due = self.full or (state is not None and _due(state.full_at, self.now, self.full_every))
        run_pass = due and self.since is None  # a backfill is no periodic pass
        if run_pass or (state is None and self.since is None):
            full_at: datetime | None = self.now  # a first run has just listed everything
        else:
            full_at = state.full_at if state else None
        spool = Spool(folder, "payments_refundable", chunk_items=CHUNK_ITEMS)
        try:
            ids: list[str] = []
            calls = 0
            if run_pass:
                with self._store():
                    ids = capture.refundable_ids(self._con, paid_lo)
                with self.client.counting_calls() as counter:
                    if ids:
                        bar.set_description(f"sync {stream}")
                    for batch in _batches(ids, LOOKUP_BATCH):
                        spool.add_items("/payments", list(self.client.fetch_payment_items(batch).found))
                        bar.update(len(batch))
                calls = counter.calls
                # Staged before the stream's transaction: the store is held only for checks and merge.
                _ingest.stage_payments(self._con, spool, final=True)
            note = (
                f"re-read {len(ids)} payment(s) with a refundable balance"
                if run_pass
                else f"next re-read of refundable payments after {_iso(_next(full_at, self.full_every))}"
            )
            return self._commit_stream(
                stream,
                spool,
                lambda con: _ingest.ingest_payments(con, spool, self.synced_at, stream=stream),
                self.until,
                self.until,
                old,
                self.until if old is None or old < self.until else old,
                calls,
                note=note,
                extra_detail={"full_at": full_at, "payments": len(ids)},
            )
        finally:
            spool.remove()

    def _commit_payments(
        self,
        stream: str,
        spool: Spool,
        lo: datetime,
        hi: datetime,
        old: datetime | None,
        cursor: datetime | None,
        api_calls: int,
        *,
        note: str | None = None,
    ) -> StreamResult:
        """Ingest a payments stream's spool and move its cursor in one transaction."""
        return self._commit_stream(
            stream,
            spool,
            lambda con: _ingest.ingest_payments(con, spool, self.synced_at, stream=stream),
            lo,
            hi,
            old,
            cursor,
            api_calls,
            note=note,
        )

    def _commit_stream(
        self,
        stream: str,
        spool: Spool,
        ingest: Callable[[duckdb.DuckDBPyConnection], dict[str, TableCounts]],
        lo: datetime,
        hi: datetime,
        old: datetime | None,
        cursor: datetime | None,
        api_calls: int,
        *,
        note: str | None = None,
        extra_detail: Mapping[str, Any] | None = None,
    ) -> StreamResult:
        """Ingest a stream's spool and move its cursor in one transaction; describe what was done."""
        detail: dict[str, Any] = {"from": lo, "to": hi, "pages": spool.pages, "items": spool.items}
        if note is not None:
            detail["note"] = note
        detail.update(extra_detail or {})
        counts = self._commit(stream, ingest, cursor=cursor, detail=detail, covered=(lo, hi))
        return StreamResult(
            stream=stream,
            range_from=lo,
            range_to=hi,
            cursor_before=old,
            cursor_after=cursor,
            pages=spool.pages,
            items=spool.items,
            tables=counts,
            api_calls=api_calls,
            note=note or "",
        )

    def _schedules(self, state: _State | None, folder: Path, bar: Any) -> StreamResult:
        stream = "schedules"
        old = state.cursor if state else None
        lo, hi, full = self._schedule_range(state)
        stage = self._staging(_ingest.stage_schedules)
        fetched = self._lists.take(stream, stage) or self._lists.fetch_schedules(lo, hi)
        spool = fetched.spool
        bar.set_description(f"sync {stream}")
        with self._store():
            refetch = capture.schedules_to_refetch(self._con, lo, state.last_success if state else None)
            renewals = (
                []
                if full
                else capture.renewal_windows(
                    self._con, self.until, self.schedule_near, near_end=hi, horizon_end=self.schedule_until
                )
            )
        try:
            gone = 0
            # counted by context, not by the client's total: the key lookups run beside this stream
            with self.client.counting_calls() as counter:
                for batch in _batches(refetch, LOOKUP_BATCH):
                    again = self.client.fetch_schedule_items(batch)
                    spool.add_items("/subscribe/payments/schedule/{merchant_uid}", list(again.found))
                    gone += len(again.missing)
                    bar.update(len(batch))
                for customer_uid, wlo, whi in renewals:
                    try:
                        for page in self.client.iter_customer_schedule_pages(customer_uid, wlo, whi):
                            spool.add_page(page)
                            bar.update(len(page.items))
                    except NotFoundError:
                        continue  # no key at PortOne: nothing can be booked on it
            cursor = _advance(old, lo, self.until)
            full_at = self.now if full else (state.full_at if state else None)
            note = "" if full else f"near future only (full horizon read at {_iso(full_at)})"
            if renewals:
                note += f"; next renewal window of {len(renewals)} long-interval subscription(s)"
            if refetch:
                note += ("; " if note else "") + f"re-fetched {len(refetch)} past schedule(s)"
            if gone:
                note += f"; {gone} no longer found"
            # Staged outside the stream's transaction: appending to a TEMP table inside it made COMMIT
            # 3x slower (DuckDB merges the transaction-local rows into the TEMP table at commit).
            stage(spool, final=True)
            return self._commit_stream(
                stream,
                spool,
                lambda con: _ingest.ingest_schedules(con, spool, self.synced_at, stream=stream),
                lo,
                hi,
                old,
                cursor,
                fetched.calls + counter.calls,
                note=note,
                extra_detail={"full_at": full_at},
            )
        finally:
            spool.remove()

    def _keys_full(self, state: _State | None) -> bool:
        """Whether this run's billing-key pass looks up every known customer (the periodic full pass)."""
        return self.full_billing_keys or state is None or _due(state.full_at, self.now, self.full_every)

    def _staging(self, stage: Callable[..., int]) -> Callable[..., None]:
        """``stage`` (an ``_ingest.stage_*``) on the run's connection, then, on a full billing-key pass,
        the customers of each new staged part queued for their key lookup."""

        def run(spool: Spool, final: bool = False) -> None:
            before = len(spool.staged_parts)
            stage(self._con, spool, final=final)
            if self._keys_early and self._keys is not None:
                for part in spool.staged_parts[before:]:
                    self._keys.feed(part)

        return run

    def _billing_keys(self, state: _State | None, folder: Path, bar: Any) -> StreamResult:
        stream = "billing_keys"
        keys = self._keys
        if keys is None:  # pragma: no cover - only inside run_all
            raise SyncError("the sync's billing-key lookups are closed")
        old = state.cursor if state else None
        bar.set_description(f"sync {stream}")
        full = self._keys_full(state)
        since = None if full else state.last_success if state else None
        with self._store():
            wanted = capture.customers_to_fetch(self._con, since, self.now)
        left_out = keys.finish(wanted)
        bar.update(len(wanted))
        with self._store():
            plan = _keys.proof_plan(self._con, left_out, self.now)
        seed = f"{self.now.date().isoformat()}"
        omits_live = state.lookup_omits_live if state else False
        with self.client.counting_calls() as counter:
            gone = _keys.prove(self.client, keys.spool, plan, omits_live=omits_live, seed=seed)
        cursor = old if old is not None and old >= self.until else self.until
        note = _keys_note(len(wanted), gone)
        full_at = self.now if full else (state.full_at if state else None)
        detail = {
            "looked_up": len(wanted),
            "missing": len(gone.gone),
            "proven": len(gone.proven),
            "by_lookup": len(gone.by_lookup),
            "probed": gone.probed,
            "lookup_omits_live": gone.omits_live,
            "note": note,
            "full_at": full_at,
        }
        spool = keys.spool
        counts = self._commit(
            stream,
            lambda con: _ingest.ingest_billing_keys(
                con, spool, gone.gone, self.synced_at, self.now, stream=stream, by_lookup=gone.by_lookup
            ),
            cursor=cursor,
            detail=detail,
        )
        return StreamResult(
            stream=stream,
            cursor_before=old,
            cursor_after=cursor,
            pages=spool.pages,
            items=len(wanted),
            tables=counts,
            api_calls=keys.calls + counter.calls,
            note=note,
        )


def _detail(detail: Any) -> dict[str, Any]:
    """A stream's ``sync_state.detail`` as a dict (empty when absent or unreadable)."""
    if isinstance(detail, str | bytes):
        try:
            detail = orjson.loads(detail)
        except orjson.JSONDecodeError:
            return {}
    return detail if isinstance(detail, dict) else {}


def _full_at(detail: Any) -> datetime | None:
    """``full_at`` stored in a stream's ``sync_state.detail`` (None when absent or unreadable)."""
    value = _detail(detail).get("full_at")
    if not isinstance(value, str):
        return None
    try:
        return parse_instant(value)
    except (ValueError, PortOneReconError):
        return None


def _keys_note(looked_up: int, gone: _keys.Deletions) -> str:
    """What the billing-key pass did, for the report: lookups, deletions and how they are known."""
    if not looked_up:
        return ""
    note = f"{looked_up} looked up, {len(gone.gone)} deleted"
    if gone.by_lookup:
        note += (
            f" ({len(gone.by_lookup)} on the multi-lookup's word: {gone.probed} single-key GET(s) "
            "found no live key it left out)"
        )
    elif gone.omits_live:
        note += " (each by its own GET: the multi-lookup leaves out live keys at this merchant)"
    return note


def _batches(values: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _due(last: datetime | None, now: datetime, every: timedelta) -> bool:
    """Whether a periodic full pass last done at ``last`` is due at ``now``."""
    return last is None or now - last >= every


def _next(last: datetime | None, every: timedelta) -> datetime | None:
    return last + every if last is not None else None


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value is not None else "never"


__all__ = ["SyncClient", "portone_now", "sync"]
