"""The sync's listings: fetched ahead of their stream's turn into spool files, staged while they arrive.

The payment listings (four status streams, then the ``-updated`` scan) are fetched in stream order on one
thread, the schedule listing on a second one, each into its own spool files on disk; the main thread
ingests and commits the streams in order and takes each listing when its turn comes (:meth:`Listings.take`).
Fetching writes nothing to the store. A failed fetch is raised when its stream takes it. Each listing
counts its own API calls (``counting_calls``), so a stream's ``api_calls`` is exact beside the others.

The payment listings share one thread: ``failed`` and ``cancelled`` beside ``paid`` only took its
slots in the client's pool (200 ms: payment streams 7.7 s -> 8.2 s). The schedule listing runs beside
them as background work of the client's pool (``background``): a large merchant's ``paid`` listing is
bound by parsing and staging, so the pool has idle slots, and the schedules are on disk by the time
``paid`` is merged. While the main thread waits for a payment listing's last page, it stages that
listing's and the schedule listing's finished spool files into TEMP part tables with one DuckDB thread.

Offset paging can skip a row that slides onto an already-read page when another row leaves the listing
mid-walk: a window whose distinct keys fall short of its ``total`` is listed once more
(:meth:`Listings.spool_pages`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from operator import itemgetter
from pathlib import Path
from typing import Any, Protocol

import duckdb

from portone_recon.api.windows import payment_windows
from portone_recon.errors import PortOneReconError, SyncError
from portone_recon.sync._spool import PageLike, Spool

PAGE_LIMIT = 1000
SCHEDULES = "schedules"


class ListingClient(Protocol):
    """What the listings need of :class:`~portone_recon.api.client.PortOneClient`."""

    def iter_payment_pages(
        self, status: str, since: Any, until: Any, *, limit: int = ..., sorting: str | None = ...
    ) -> Iterator[Any]: ...

    def iter_schedule_pages(
        self,
        since: Any,
        until: Any,
        *,
        status: str | None = ...,
        limit: int = ...,
        sorting: str | None = ...,
    ) -> Iterator[Any]: ...

    def fetch_payment_page(
        self,
        status: str,
        window: tuple[int, int],
        page: int,
        *,
        limit: int = ...,
        sorting: str | None = ...,
    ) -> Any: ...

    def background(self) -> AbstractContextManager[None]: ...

    def counting_calls(self) -> AbstractContextManager[Any]:
        """A context whose ``.calls`` counts this caller's requests (exact beside other threads)."""
        ...


@dataclass(frozen=True)
class Fetched:
    """A listing fetched into its spool (closed, except the schedules'), with its API calls and range."""

    spool: Spool
    calls: int
    lo: datetime
    hi: datetime


@contextmanager
def filling(spool: Spool) -> Iterator[Spool]:
    """A spool being filled: removed (file and all) when filling fails, so no half listing is ingested."""
    try:
        yield spool
    except BaseException:
        spool.remove()
        raise


class Listings:
    """The listings of one sync run (see the module docstring). Use as a context manager: leaving it
    stops the fetch threads and closes what they fetched.

    Args:
        client: the API client.
        con: the run's scratch connection (main thread): staging while waiting runs on it.
        folder: where spool files go.
        bar: the run's progress bar.
        chunk_items: a spool finishes a file every this many items (staged while later pages arrive).
        until: the end of this run's payment listings.
        refund_window: how far back the ``-updated`` scan reads.
        overlap: how far before its cursor the ``-updated`` scan stops.
    """

    def __init__(
        self,
        client: ListingClient,
        con: duckdb.DuckDBPyConnection,
        folder: Path,
        bar: Any,
        *,
        chunk_items: int,
        until: datetime,
        refund_window: timedelta,
        overlap: timedelta,
    ) -> None:
        self._client = client
        self._con = con
        self._folder = folder
        self._bar = bar
        self._chunk_items = chunk_items
        self._until = until
        self._refund_window = refund_window
        self._overlap = overlap
        self._fetched: dict[str, Future[Fetched]] = {}
        self._spools: dict[str, Spool] = {}
        self._ahead_errors: dict[str, BaseException] = {}
        self._stage_schedules: Callable[[Spool], object] | None = None
        self._stop = threading.Event()
        self._fetcher = ThreadPoolExecutor(1, thread_name_prefix="portone-recon-sync-fetch")
        self._beside = ThreadPoolExecutor(1, thread_name_prefix="portone-recon-sync-fetch-schedules")

    def __enter__(self) -> Listings:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._fetcher.shutdown(wait=True, cancel_futures=True)
        self._beside.shutdown(wait=True, cancel_futures=True)
        for fut in self._fetched.values():
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                fut.result().spool.close()
        self._fetched.clear()

    def start(
        self,
        payments: Mapping[str, tuple[datetime, datetime]],
        updated: tuple[datetime, datetime] | None,
        schedules: tuple[datetime, datetime],
        stage_schedules: Callable[[Spool], object],
    ) -> None:
        """Queue the payment listings (``status -> [lo, hi)``, in stream order), the ``-updated`` scan
        (``(cursor, paid_lo)``, None on a first run) and the schedule listing ``[lo, hi)``, staged ahead
        with ``stage_schedules`` while payment streams wait."""
        for status, (lo, hi) in payments.items():
            name = f"payments:{status}"
            spool = self._spools[name] = Spool(
                self._folder, f"payments_{status}", chunk_items=self._chunk_items
            )
            self._fetched[name] = self._fetcher.submit(self.fetch_payments, status, lo, hi, spool)
        if updated is not None:
            self._fetched["payments:updated"] = self._fetcher.submit(self.fetch_updated, *updated)
        spool = self._spools[SCHEDULES] = Spool(self._folder, "schedules", chunk_items=self._chunk_items)
        self._fetched[SCHEDULES] = self._beside.submit(self.fetch_schedules, *schedules, spool)
        self._stage_schedules = stage_schedules

    def take(self, name: str, stage: Callable[[Spool], object] | None = None) -> Fetched | None:
        """The prefetched listing ``name`` (None if it was not prefetched), waiting for its last page.

        With ``stage``, the spool's finished files are staged while waiting (main thread, TEMP tables),
        and so are the schedule listing's while a payment listing is waited for.
        """
        fut = self._fetched.pop(name, None)
        spool = self._spools.pop(name, None)
        if name in self._ahead_errors:
            raise self._ahead_errors.pop(name)
        if fut is None:
            return None
        if stage is None or spool is None:
            return fut.result()
        con = self._con
        threads = con.execute("SELECT current_setting('threads')").fetchone()
        # One DuckDB thread while pages still arrive: the other core serves the fetch threads.
        con.execute("SET threads = 1")
        try:
            while True:
                try:
                    return fut.result(timeout=0.05)
                except TimeoutError:
                    stage(spool)
                    self._stage_ahead(name)
        finally:
            con.execute(f"SET threads = {int(threads[0]) if threads else 1}")

    def _stage_ahead(self, current: str) -> None:
        """Stage the schedule listing's finished files while a payment stream waits. A staging error is
        kept for the schedules stream's turn (raised there, where it belongs), never raised into the
        payment stream."""
        spool = self._spools.get(SCHEDULES)
        stage = self._stage_schedules
        if current == SCHEDULES or spool is None or stage is None or SCHEDULES in self._ahead_errors:
            return
        try:
            stage(spool)
        except (PortOneReconError, duckdb.Error) as exc:
            self._ahead_errors[SCHEDULES] = exc

    def _pages_of(self, pages: Iterator[PageLike]) -> Iterator[PageLike]:
        for page in pages:
            if self._stop.is_set():
                raise SyncError("sync stopped")
            yield page

    def fetch_payments(self, status: str, lo: datetime, hi: datetime, spool: Spool | None = None) -> Fetched:
        """``GET /payments/status/{status}`` over ``[lo, hi)`` into ``spool``; a short window again."""
        client = self._client
        with (
            client.counting_calls() as counter,
            filling(spool or Spool(self._folder, f"payments_{status}")) as spool,
        ):
            if lo < hi:
                pages = self._pages_of(client.iter_payment_pages(status, lo, hi, limit=PAGE_LIMIT))
                for wlo, whi in self.spool_pages(spool, pages, key="imp_uid"):
                    again = client.iter_payment_pages(status, wlo, whi + 1, limit=PAGE_LIMIT)
                    self.spool_pages(spool, self._pages_of(again))
            spool.close()
        return Fetched(spool, counter.calls, lo, hi)

    def fetch_updated(self, old: datetime, paid_lo: datetime) -> Fetched:
        """The ``sorting=-updated`` scan of paid payments since ``old - overlap`` (see the engine)."""
        hi = self._until
        lo = hi - self._refund_window
        # The paid stream of this run lists every payment paid in [paid_lo, until) in its current state,
        # refunds included; only payments paid before it can hide a new partial refund.
        scan_hi = min(hi, paid_lo)
        with (
            self._client.counting_calls() as counter,
            filling(Spool(self._folder, "payments_updated")) as spool,
        ):
            stop_at = int((old - self._overlap).timestamp())
            if lo < scan_hi:
                for wlo, whi in payment_windows(lo, scan_hi):
                    self._scan_window(spool, wlo, whi, stop_at)
            spool.close()
        return Fetched(spool, counter.calls, lo, scan_hi)

    def fetch_schedules(self, lo: datetime, hi: datetime, spool: Spool | None = None) -> Fetched:
        """The schedule listing over ``[lo, hi)``, as background work of the client's pool."""
        # left open: the schedules stream appends re-fetched past schedules to it
        with (
            self._client.background(),
            self._client.counting_calls() as counter,
            filling(spool or Spool(self._folder, "schedules")) as spool,
        ):
            if lo < hi:
                pages = self._pages_of(self._client.iter_schedule_pages(lo, hi, limit=PAGE_LIMIT))
                self.spool_pages(spool, pages)
        return Fetched(spool, counter.calls, lo, hi)

    def spool_pages(self, spool: Spool, pages: Iterator[PageLike], key: str = "") -> list[tuple[int, int]]:
        """Spool every page; with ``key``, return the windows that came back short.

        Offset paging shifts when a row leaves the listing mid-walk (a payment cancelled while we page
        its "paid" window): one row slides onto a page already read. A window whose distinct ``key``
        values are fewer than its first page's ``total`` is therefore re-listed once.

        Windows come one after another (the client walks them in order), so only the current window's
        keys are held: memory follows the largest window, not the history.
        """
        short: list[tuple[int, int]] = []
        current: tuple[int, int] | None = None
        total, seen = 0, set[str]()
        for page in pages:
            spool.add_page(page)
            count = getattr(page, "count", None)
            self._bar.update(len(page.items) if count is None else count)
            if key:
                params = dict(getattr(page, "params", ()) or ())
                try:
                    window = (int(params["from"]), int(params["to"]))
                except (KeyError, ValueError):
                    continue
                if window != current:
                    if current is not None and len(seen) < total:
                        short.append(current)
                    current, total, seen = window, int(getattr(page, "total", 0)), set()
                keys = getattr(page, "keys", None)
                if keys is not None:  # read from the body without decoding it (the client's fast path)
                    seen.update(keys)
                    continue
                try:  # C speed for the usual page of dicts; validation reports odd items later
                    seen.update(map(itemgetter(key), page.items))
                except (KeyError, TypeError):
                    seen.update(str(i.get(key)) for i in page.items if isinstance(i, Mapping))
        if current is not None and len(seen) < total:
            short.append(current)
        return short

    def _scan_window(self, spool: Spool, wlo: int, whi: int, stop_at: int) -> None:
        """Pages of one window sorted by ``-updated``, until one holds a payment older than ``stop_at``."""
        page = 1
        while True:
            got = self._client.fetch_payment_page(
                "paid", (wlo, whi), page, limit=PAGE_LIMIT, sorting="-updated"
            )
            items, nxt = got.items, got.next
            spool.add_page(got)
            self._bar.update(len(items))
            if not items or nxt == 0 or nxt <= page:
                return
            if min(_item_updated(item) for item in items) < stop_at:
                return
            page = nxt


def _item_updated(item: Any) -> int:
    """PortOne's "updated" of a payment JSON (0 when unreadable: validation reports it later)."""
    if not isinstance(item, Mapping):
        return 0
    best = 0
    for name in ("started_at", "paid_at", "failed_at", "cancelled_at"):
        v = item.get(name)
        if isinstance(v, int) and not isinstance(v, bool):
            best = max(best, v)
    history = item.get("cancel_history")
    if isinstance(history, list):
        for entry in history:
            v = entry.get("cancelled_at") if isinstance(entry, Mapping) else None
            if isinstance(v, int) and not isinstance(v, bool):
                best = max(best, v)
    return best
