"""V2 page listings over time windows, split so that ``(page.number + 1) * page.size`` never passes 60,000.

``GET /payments``, ``/payment-schedules`` and ``/billing-keys`` take ``{page: {number, size}, filter}``
(and ``sort``) in the ``requestBody`` query parameter and answer ``{items, page: {number, size,
totalCount}}``. A window whose ``totalCount`` lies beyond the reachable pages is listed as two halves,
down to one second; later pages are fetched concurrently (bounded) and yielded in order. Windows are
passed as ``from``/``until`` RFC 3339 instants; whether PortOne's ``until`` is inclusive is not
documented, so adjacent windows share their boundary and readers keep one copy of a repeated item.

PortOne documents no longest window. A window whose first page is refused with 400 is listed again in
windows of half its length (as V1's listings split a refused window), down to :data:`SPLIT_ABOVE`; every
later window of the client is no longer than that (one refusal teaches the limit to every listing).
"""

from __future__ import annotations

import contextvars
import math
import re
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from datetime import UTC, datetime, timedelta
from typing import Any

from portone_recon.api._pool import PriorityPool
from portone_recon.api.v2.transport import V2Transport, decode_object
from portone_recon.errors import BadRequestError, MalformedResponseError

#: PortOne refuses a page with ``(number + 1) * size`` above this.
MAX_PAGE_REACH = 60_000
#: Default page size of the sync's listings.
PAGE_SIZE = 1000
#: Longest window sent at once (PortOne's default window; no maximum is documented).
WINDOW = timedelta(days=90)
#: Only windows longer than this are split on a refusal: a shorter one was refused for another reason.
SPLIT_ABOVE = timedelta(days=1)

BodyFor = Callable[[datetime, datetime, int, int], dict[str, Any]]


def rfc3339(moment: datetime) -> str:
    """An aware instant as PortOne's RFC 3339 UTC text, e.g. ``2026-01-31T15:00:00.000Z``."""
    if moment.tzinfo is None:
        raise ValueError(f"instant must be timezone-aware, got {moment!r}")
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def reachable_pages(size: int) -> int:
    """How many pages of ``size`` a listing can reach: ``(number + 1) * size <= 60000``."""
    if size <= 0 or size > MAX_PAGE_REACH:
        raise ValueError(f"page size must be in 1..{MAX_PAGE_REACH}, got {size}")
    return MAX_PAGE_REACH // size


def windows(since: datetime, until: datetime, span: timedelta = WINDOW) -> list[tuple[datetime, datetime]]:
    """``[since, until]`` cut into consecutive windows of at most ``span``."""
    out = []
    lo = since
    while lo < until:
        hi = min(until, lo + span)
        out.append((lo, hi))
        lo = hi
    return out


def _page_of(data: dict[str, Any], method: str, endpoint: str) -> tuple[list[Any], int]:
    items = data.get("items")
    if not isinstance(items, list):
        raise MalformedResponseError("expected a list", method=method, endpoint=endpoint, field="items")
    page = data.get("page")
    total = page.get("totalCount") if isinstance(page, dict) else None
    if isinstance(total, bool) or not isinstance(total, int) or total < 0:
        raise MalformedResponseError(
            f"expected a count >= 0, got {total!r}", method=method, endpoint=endpoint, field="page.totalCount"
        )
    return items, total


#: A page body as PortOne and the sandbox write it: the items first, then the page object last.
_FAST_HEAD = re.compile(rb"\s*\{\s*\"items\"\s*:\s*\[")
_FAST_TAIL = re.compile(
    rb"\]\s*,\s*\"page\"\s*:\s*\{\s*\"number\"\s*:\s*(\d+)\s*,\s*\"size\"\s*:\s*(\d+)\s*,"
    rb"\s*\"totalCount\"\s*:\s*(\d+)\s*\}\s*\}\s*$"
)


class V2Page:
    """One page of a V2 listing: the body as received, its item count and the listing's ``totalCount``.

    Attributes:
        endpoint: the listing's path (``/payments``, ...).
        body: the response body, byte for byte.
        count: items on this page.
        total: ``page.totalCount`` of the whole window.
        items: the items as decoded JSON (decoded on first access).
    """

    __slots__ = ("_items", "body", "count", "endpoint", "total")

    def __init__(self, endpoint: str, body: bytes, count: int, total: int, items: list[Any] | None) -> None:
        self.endpoint = endpoint
        self.body = body
        self.count = count
        self.total = total
        self._items = items

    @classmethod
    def read(cls, endpoint: str, body: bytes) -> V2Page:
        """The page of ``body``: header read from PortOne's layout without decoding, else decoded."""
        head = _FAST_HEAD.match(body)
        tail = _FAST_TAIL.search(body, max(0, len(body) - 200)) if head else None
        if tail is not None:
            number, size, total = int(tail[1]), int(tail[2]), int(tail[3])
            if tail.start() == head.end():  # type: ignore[union-attr]
                return cls(endpoint, body, 0, total, [])
            # Every page but the last holds ``size`` items (the items are checked where they are read).
            count = max(0, min(size, total - number * size))
            if count:
                return cls(endpoint, body, count, total, None)
        items, total = _page_of(decode_object(body, "GET", endpoint), "GET", endpoint)
        return cls(endpoint, body, len(items), total, items)

    @property
    def items(self) -> list[Any]:
        if self._items is None:
            self._items = _page_of(decode_object(self.body, "GET", self.endpoint), "GET", self.endpoint)[0]
        return self._items

    def __repr__(self) -> str:
        return f"V2Page(endpoint={self.endpoint!r}, items={self.count}, total={self.total})"


class V2Pager:
    """Lists one V2 endpoint window by window (see the module docstring)."""

    def __init__(self, transport: V2Transport, *, size: int = PAGE_SIZE) -> None:
        self._transport = transport
        self.size = size
        self.reach = reachable_pages(size)
        self.windows_split = 0
        #: Length of the windows sent (shortened when PortOne refuses a window as too long).
        self.span = WINDOW
        self._pool: PriorityPool | None = None
        self._pool_lock = threading.Lock()

    def executor(self) -> PriorityPool:
        """The pool every listing request goes through: ``concurrency`` in flight at most, however
        many threads list at once; work submitted under ``background()`` yields to the rest."""
        with self._pool_lock:
            if self._pool is None:
                self._pool = PriorityPool(max(1, self._transport.settings.concurrency), "portone-v2-page")
            return self._pool

    def close(self) -> None:
        """Stop the page-fetching threads."""
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def _submit(self, path: str, body: dict[str, Any]) -> Future[V2Page]:
        # the submitter's context travels with the job (a ``counting_calls`` count includes it)
        return self.executor().submit(contextvars.copy_context().run, self._get, path, body)

    def _get(self, path: str, body: dict[str, Any]) -> V2Page:
        return V2Page.read(path, self._transport.request_bytes("GET", path, body_query=body))

    def pages(self, path: str, body_for: BodyFor, since: datetime, until: datetime) -> Iterator[V2Page]:
        """Every page of ``path`` in ``[since, until]`` (window by window, in order)."""
        lo = since
        while lo < until:
            hi = min(until, lo + self.span)
            yield from self._window(path, body_for, lo, hi)
            lo = hi

    def items(self, path: str, body_for: BodyFor, since: datetime, until: datetime) -> Iterator[Any]:
        """Every raw item of ``path`` in ``[since, until]`` (window by window, page by page)."""
        for page in self.pages(path, body_for, since, until):
            yield from page.items

    def _window(self, path: str, body_for: BodyFor, lo: datetime, hi: datetime) -> Iterator[V2Page]:
        try:
            first = self._submit(path, body_for(lo, hi, 0, self.size)).result()
        except BadRequestError:
            if hi - lo <= SPLIT_ABOVE:
                raise
            self.span = min(self.span, (hi - lo) / 2)
            yield from self.pages(path, body_for, lo, hi)
            return
        total = first.total
        pages = math.ceil(total / self.size) if total else 0
        if pages > self.reach and hi - lo > timedelta(seconds=1):
            self.windows_split += 1
            mid = lo + (hi - lo) / 2
            yield from self._window(path, body_for, lo, mid)
            yield from self._window(path, body_for, mid, hi)
            return
        yield first
        rest = list(range(1, min(pages, self.reach)))
        if not rest:
            return
        workers = max(1, self._transport.settings.concurrency)
        # At most ``workers`` pages of this window queued: memory stays bounded by the pages not yet
        # yielded.
        pending = [self._submit(path, body_for(lo, hi, n, self.size)) for n in rest[:workers]]
        nxt = len(pending)
        try:
            while pending:
                page = pending.pop(0).result()
                if nxt < len(rest):
                    pending.append(self._submit(path, body_for(lo, hi, rest[nxt], self.size)))
                    nxt += 1
                yield page
        finally:
            for fut in pending:
                fut.cancel()
