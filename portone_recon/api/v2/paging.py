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

import math
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from portone_recon.api.v2.transport import V2Transport
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


class V2Pager:
    """Lists one V2 endpoint window by window (see the module docstring)."""

    def __init__(self, transport: V2Transport, *, size: int = PAGE_SIZE) -> None:
        self._transport = transport
        self.size = size
        self.reach = reachable_pages(size)
        self.windows_split = 0
        #: Length of the windows sent (shortened when PortOne refuses a window as too long).
        self.span = WINDOW

    def _get(self, path: str, body: dict[str, Any]) -> tuple[list[Any], int]:
        data = self._transport.request("GET", path, body_query=body)
        return _page_of(data, "GET", path)

    def items(self, path: str, body_for: BodyFor, since: datetime, until: datetime) -> Iterator[Any]:
        """Every raw item of ``path`` in ``[since, until]`` (window by window, page by page)."""
        lo = since
        while lo < until:
            hi = min(until, lo + self.span)
            yield from self._window(path, body_for, lo, hi)
            lo = hi

    def _window(self, path: str, body_for: BodyFor, lo: datetime, hi: datetime) -> Iterator[Any]:
        try:
            first, total = self._get(path, body_for(lo, hi, 0, self.size))
        except BadRequestError:
            if hi - lo <= SPLIT_ABOVE:
                raise
            self.span = min(self.span, (hi - lo) / 2)
            yield from self.items(path, body_for, lo, hi)
            return
        pages = math.ceil(total / self.size) if total else 0
        if pages > self.reach and hi - lo > timedelta(seconds=1):
            self.windows_split += 1
            mid = lo + (hi - lo) / 2
            yield from self._window(path, body_for, lo, mid)
            yield from self._window(path, body_for, mid, hi)
            return
        yield from first
        rest = list(range(1, min(pages, self.reach)))
        if not rest:
            return
        workers = max(1, self._transport.settings.concurrency)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="portone-v2-page") as pool:
            # At most ``workers`` pages in flight: memory stays bounded by the pages not yet yielded.
            pending = [pool.submit(self._get, path, body_for(lo, hi, n, self.size)) for n in rest[:workers]]
            nxt = len(pending)
            while pending:
                items, _ = pending.pop(0).result()
                if nxt < len(rest):
                    pending.append(pool.submit(self._get, path, body_for(lo, hi, rest[nxt], self.size)))
                    nxt += 1
                yield from items
