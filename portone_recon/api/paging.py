"""Paged listings: pages fetched ahead on a small thread pool, windows of a time range, refusals.

Concurrency (listings' pages, multi-lookup chunks) uses a bounded thread pool over the transport's one
thread-safe ``httpx.Client``; results come back in order. A window PortOne refuses as too long is listed
as two halves; a later page refused because the listing shrank while it was paged restarts the listing
once (readers keep one copy of a repeated item).
"""

from __future__ import annotations

import contextvars
import itertools
import logging
import math
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from contextlib import suppress
from typing import Any, TypeVar

from portone_recon.api._pool import PriorityPool
from portone_recon.api.envelope import RawPage, fast_page_header
from portone_recon.api.models import parse_page_envelope
from portone_recon.api.transport import Params, Transport
from portone_recon.errors import BadRequestError, MalformedResponseError

log = logging.getLogger("portone_recon.api")

R = TypeVar("R")
A = TypeVar("A")

#: Listings read without decoding their items (``RawPage.keys``): the key field of each item.
_PAGE_KEYS = {
    "/payments/status/{payment_status}": b"imp_uid",
    "/subscribe/payments/schedule": b"merchant_uid",
}
#: Only windows longer than this are split on a refusal: a shorter one was refused for another reason.
_SPLIT_ABOVE = 30 * 86400


def _window_of(base: Params) -> tuple[str, str, int, int] | None:
    """The (from-name, to-name, from, to) of a listing's time window, if ``base`` has one."""
    names = dict(base)
    for lo, hi in (("from", "to"), ("schedule_from", "schedule_to")):
        if lo in names and hi in names:
            try:
                return lo, hi, int(names[lo]), int(names[hi])
            except ValueError:
                return None
    return None


def _split_window(base: Params) -> list[tuple[tuple[str, str], ...]] | None:
    """``base`` with its time window cut in two halves (None without a window or when it is short)."""
    window = _window_of(base)
    if window is None:
        return None
    lo_name, hi_name, lo, hi = window
    if hi - lo <= _SPLIT_ABOVE:
        return None
    mid = lo + (hi - lo) // 2

    def with_(a: int, b: int) -> tuple[tuple[str, str], ...]:
        return tuple((k, str(a) if k == lo_name else str(b) if k == hi_name else v) for k, v in base)

    # Both halves hold ``mid``: some listings' ``to`` is inclusive, some exclusive; a record at that
    # second may come twice, and every reader keeps one copy per key.
    return [with_(lo, mid), with_(mid, hi)]


class _WindowScheduler:
    """Fetches the pages of several windows through the pager's pool (see :meth:`Pager.window_pages`)."""

    def __init__(
        self, pager: Pager, path: str, endpoint: str, bases: list[tuple[tuple[str, str], ...]]
    ) -> None:
        self._pager = pager
        self._path = path
        self._endpoint = endpoint
        self._bases = bases
        self._queue: deque[tuple[int, int]] = deque((w, 1) for w in range(len(bases)))
        self._futures: dict[tuple[int, int], Future[RawPage]] = {}
        self._limit = pager.concurrency

    def _fetch(self, job: tuple[int, int]) -> RawPage:
        w, p = job
        return self._pager.fetch_page(self._path, self._endpoint, self._bases[w], p)

    def _submit(self, job: tuple[int, int]) -> None:
        # the submitter's context travels with the job (``counting_calls`` counts it)
        self._futures[job] = self._pager.executor().submit(contextvars.copy_context().run, self._fetch, job)

    def _fill(self) -> None:
        running = sum(1 for f in self._futures.values() if not f.done())
        while running < self._limit and self._queue:
            self._submit(self._queue.popleft())
            running += 1

    def _take(self, job: tuple[int, int]) -> RawPage:
        if job not in self._futures:
            with suppress(ValueError):
                self._queue.remove(job)
            self._submit(job)
        fut = self._futures[job]
        while True:
            self._fill()
            if fut.done():
                break
            waiting = [f for f in self._futures.values() if not f.done()]
            wait(waiting, return_when=FIRST_COMPLETED)
        del self._futures[job]
        self._fill()
        return fut.result()

    def _rest(self, w: int, first: RawPage) -> Iterator[RawPage]:
        """Pages 2.. of window ``w``."""
        check = Pager.check_next
        nxt = first.next
        if nxt and first.count:
            last = max(nxt, math.ceil(first.total / first.count))
            self._queue.extendleft((w, p) for p in range(last, nxt - 1, -1))
            for p in range(nxt, last + 1):
                page = self._take((w, p))
                check(page, self._endpoint)
                yield page
                nxt = page.next
                if nxt == 0:
                    break
            self._drop(w)
        # The listing grew while we paged (or page 1 had no items): follow ``next``.
        while nxt:
            page = self._fetch((w, nxt))
            check(page, self._endpoint)
            yield page
            nxt = page.next

    def _drop(self, w: int) -> None:
        """Forget window ``w``'s queued and fetched-ahead pages (it ended early)."""
        self._queue = deque(j for j in self._queue if j[0] != w)
        for job in [j for j in self._futures if j[0] == w]:
            self._futures.pop(job).cancel()

    def pages(self) -> Iterator[RawPage]:
        try:
            for w in range(len(self._bases)):
                try:
                    first = self._take((w, 1))
                except BadRequestError as refused:
                    # A window refused as too long: the client's sequential pager lists its halves.
                    self._drop(w)
                    yield from self._pager.halves(self._path, self._endpoint, self._bases[w], refused)
                    continue
                yield first
                try:
                    yield from self._rest(w, first)
                except BadRequestError:
                    # A page past the end of a listing that shrank while we paged: list it again.
                    self._drop(w)
                    yield from self._pager.pages(
                        self._path, self._endpoint, self._bases[w], concurrent=False, relisted=True
                    )
        finally:
            self._queue.clear()
            for fut in self._futures.values():
                fut.cancel()
            self._futures.clear()


class Pager:
    """Pages of PortOne's listings through ``transport``, at most ``concurrency`` requests in flight."""

    def __init__(self, transport: Transport, concurrency: int) -> None:
        self._transport = transport
        self.concurrency = concurrency
        self._pool: PriorityPool | None = None
        self._pool_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Pager(concurrency={self.concurrency})"

    def close(self) -> None:
        """Stop the page-fetching threads (queued pages are dropped)."""
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def executor(self) -> PriorityPool:
        """The pool every request of this pager goes through (``concurrency`` in flight at most)."""
        with self._pool_lock:
            if self._pool is None:
                self._pool = PriorityPool(self.concurrency, "portone-recon-api")
            return self._pool

    def ordered_map(self, fn: Callable[[A], R], args: Iterable[A]) -> Generator[R, None, None]:
        """``map`` with at most ``concurrency`` calls in flight, results in argument order.

        Always through the pool, also at ``concurrency`` 1: several threads of one reader share it.
        """
        it = iter(args)
        pool = self.executor()
        ctx = contextvars.copy_context()  # ``counting_calls`` of the caller counts the pool's requests

        def submit(a: A) -> Future[R]:
            return pool.submit(ctx.copy().run, fn, a)

        pending: deque[Future[R]] = deque(submit(a) for a in itertools.islice(it, self.concurrency))
        try:
            while pending:
                result = pending.popleft().result()
                for a in itertools.islice(it, 1):
                    pending.append(submit(a))
                yield result
        finally:
            for fut in pending:
                fut.cancel()

    def fetch_page(self, path: str, endpoint: str, base: Params, page: int) -> RawPage:
        params = (*base, ("page", str(page)))
        resp = self._transport.send("GET", path, params, None, endpoint)
        key = _PAGE_KEYS.get(endpoint)
        # Bulk listings in PortOne's own layout: the envelope is read without decoding the 1000 items.
        head = fast_page_header(resp.content, key) if key and 200 <= resp.status_code < 300 else None
        items: list[Any] | None = None
        keys: tuple[str, ...] | None = None
        if head is not None:
            total, previous, nxt, keys = head
        else:
            response = self._transport.decode(resp, "GET", endpoint)
            total, previous, nxt, items = parse_page_envelope(response, endpoint=endpoint)
        return RawPage(
            endpoint=endpoint,
            params=params,
            total=total,
            next=nxt,
            items=items,
            keys=keys,
            body=resp.content,
            page=page,
            previous=previous,
        )

    def pages(
        self, path: str, endpoint: str, base: Params, *, concurrent: bool, relisted: bool = False
    ) -> Iterator[RawPage]:
        """Pages 1, 2, ... until ``next == 0``; with ``concurrent``, pages 2..N are fetched ahead.

        PortOne's limits on a listing's time range are not settled by any source (the schedule listing's
        "3 months" may be 90 or 92 days): a first page refused with 400 is split into two halves, each
        listed on its own. A later page refused with 400 (past the end of a listing that shrank while we
        paged) makes the listing start again from page 1, once; readers keep one copy of a repeated item.
        """
        try:
            first = self.fetch_page(path, endpoint, base, 1)
        except BadRequestError as refused:
            yield from self.halves(path, endpoint, base, refused)
            return
        yield first
        try:
            yield from self._later_pages(path, endpoint, base, first, concurrent=concurrent)
        except BadRequestError:
            if relisted:
                raise
            log.info("GET %s: a later page was refused (the listing shrank), listing it again", endpoint)
            yield from self.pages(path, endpoint, base, concurrent=False, relisted=True)

    def halves(self, path: str, endpoint: str, base: Params, refused: BadRequestError) -> Iterator[RawPage]:
        """The pages of ``base``'s window listed as two halves (``refused`` is raised when it cannot be
        split: a short window was refused for another reason)."""
        halves = _split_window(base)
        if halves is None:
            raise refused
        log.info("GET %s: window refused, listing it in two halves", endpoint)
        for half in halves:
            yield from self.pages(path, endpoint, half, concurrent=False)

    def _later_pages(
        self, path: str, endpoint: str, base: Params, first: RawPage, *, concurrent: bool
    ) -> Iterator[RawPage]:
        nxt = first.next
        if nxt and concurrent and first.count:
            last = max(nxt, math.ceil(first.total / first.count))
            fetched = self.ordered_map(
                lambda p: self.fetch_page(path, endpoint, base, p), range(nxt, last + 1)
            )
            try:
                for page in fetched:
                    self.check_next(page, endpoint)
                    yield page
                    nxt = page.next
                    if nxt == 0:
                        return
            finally:
                fetched.close()
            # The listing grew while we paged: follow ``next`` one page at a time.
        while nxt:
            page = self.fetch_page(path, endpoint, base, nxt)
            self.check_next(page, endpoint)
            yield page
            nxt = page.next

    def window_pages(
        self, path: str, endpoint: str, bases: list[tuple[tuple[str, str], ...]], *, concurrent: bool
    ) -> Iterator[RawPage]:
        """Pages of every window, window after window, each window's pages in order.

        With ``concurrent`` (and ``concurrency`` > 1) all windows share one bounded pool: page 1 of
        every window is queued up front, and as soon as a window's page 1 says how many pages it has,
        its remaining pages go to the front of the queue (the window being yielded is served first).
        At most ``concurrency`` requests are in flight; what is buffered ahead of the consumer is at
        most one page per window plus ``concurrency`` pages. An error is raised when its page's turn
        comes, so earlier pages are yielded first. Arguments are validated before this generator starts.
        """
        if not concurrent or self.concurrency <= 1:
            for base in bases:
                yield from self.pages(path, endpoint, base, concurrent=concurrent)
            return
        yield from _WindowScheduler(self, path, endpoint, bases).pages()

    @staticmethod
    def check_next(page: RawPage, endpoint: str) -> None:
        if page.next and page.next <= page.page:
            raise MalformedResponseError(
                f"page {page.page} says next page is {page.next}: refusing to loop",
                method="GET",
                endpoint=endpoint,
                field="response.next",
            )

    @staticmethod
    def items(pages: Iterable[RawPage], parse: Callable[..., R]) -> Iterator[R]:
        for page in pages:
            for i, item in enumerate(page.items):
                yield parse(item, path=f"response.list[{i}]", endpoint=page.endpoint, method="GET")
