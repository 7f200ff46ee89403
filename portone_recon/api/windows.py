"""Split a time range into the windows PortOne's listings accept.

Both functions take a half-open range ``[since, until)`` (``since`` included, ``until`` excluded),
given as aware datetimes, KST calendar dates (meaning 00:00 Asia/Seoul), ISO 8601 text or unix
seconds, and return windows in chronological order as ``(from_unix, to_unix)`` pairs that cover the
range exactly once:

* :func:`payment_windows` for ``GET /payments/status/{status}``, whose ``from`` and ``to`` are both
  **inclusive** and whose window is at most 90 days: ``[a, a+90d-1], [a+90d, a+180d-1], ..., [.., until-1]``
  (consecutive windows never share a second).
* :func:`schedule_windows` for the schedule listings, whose ``schedule_from`` is inclusive and
  ``schedule_to`` **exclusive**. PortOne documents "at most 3 months"; whether that means 90 days, 92 days
  or calendar months is settled by no source, so windows are at most 90 days: safe under every reading.
"""

from __future__ import annotations

import math
from datetime import date, datetime

from portone_recon._time import KST, parse_instant

PAYMENT_WINDOW_SECONDS = 90 * 86400
SCHEDULE_WINDOW_SECONDS = 90 * 86400

Instant = datetime | date | int | str


def unix_floor(value: Instant) -> int:
    """Unix seconds at or before ``value``.

    A date means 00:00 KST; ISO 8601 text is read by ``parse_instant`` (no offset means KST);
    naive datetimes are refused.
    """
    if isinstance(value, str):
        value = parse_instant(value)
    if isinstance(value, bool):
        raise TypeError(f"expected a datetime, date or unix seconds, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: give a timezone (PortOne instants are absolute)")
        return math.floor(value.timestamp())
    if isinstance(value, date):
        return int(datetime(value.year, value.month, value.day, tzinfo=KST).timestamp())
    raise TypeError(f"expected a datetime, date or unix seconds, got {type(value).__name__}")


def unix_ceil(value: Instant) -> int:
    """Unix seconds at or after ``value``."""
    if isinstance(value, str):
        value = parse_instant(value)
    if isinstance(value, datetime) and value.tzinfo is not None:
        return math.ceil(value.timestamp())
    return unix_floor(value)


def payment_windows(since: Instant, until: Instant) -> list[tuple[int, int]]:
    """Windows of at most 90 days with inclusive ``(from, to)`` bounds covering ``[since, until)``."""
    start, end = unix_floor(since), unix_ceil(until)
    windows: list[tuple[int, int]] = []
    cur = start
    while cur < end:
        nxt = min(cur + PAYMENT_WINDOW_SECONDS, end)
        windows.append((cur, nxt - 1))
        cur = nxt
    return windows


def schedule_windows(since: Instant, until: Instant) -> list[tuple[int, int]]:
    """Windows of at most 90 days, ``(from incl., to excl.)``, covering ``[since, until)``."""
    start, end = unix_floor(since), unix_ceil(until)
    windows: list[tuple[int, int]] = []
    cur = start
    while cur < end:
        nxt = min(cur + SCHEDULE_WINDOW_SECONDS, end)
        windows.append((cur, nxt))
        cur = nxt
    return windows
