"""Time helpers: PortOne unix seconds, Asia/Seoul business time, monthly billing periods."""

from __future__ import annotations

import calendar
import math
import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from portone_recon.errors import UsageError

KST = ZoneInfo("Asia/Seoul")

#: What an instant argument looks like, for messages.
INSTANT_EXAMPLE = "e.g. 2026-11-27, 2026-11-27T06:00 (Asia/Seoul) or 2026-11-27T06:00:00+09:00"
#: How far past the wall clock an ``as_of`` may lie (clock skew, a run just before midnight KST).
FUTURE_SLACK = timedelta(days=1)


def from_unix(value: int | None) -> datetime | None:
    """PortOne unix seconds to an aware datetime in Asia/Seoul; ``0``/None mean "not yet" -> None."""
    if not value:
        return None
    return datetime.fromtimestamp(value, tz=KST)


def to_unix(value: datetime | date | int) -> int:
    """An aware datetime (or a KST calendar date, meaning its 00:00 KST) to unix seconds."""
    if isinstance(value, int):
        return value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: give a timezone (PortOne instants are absolute)")
        return int(value.timestamp())
    return int(datetime(value.year, value.month, value.day, tzinfo=KST).timestamp())


def now_kst() -> datetime:
    return datetime.now(tz=KST)


def ensure_aware(value: datetime, *, assume: ZoneInfo = KST) -> datetime:
    """Attach ``assume`` (Asia/Seoul) to a naive datetime; convert aware ones to it."""
    if value.tzinfo is None:
        return value.replace(tzinfo=assume)
    return value.astimezone(assume)


def parse_instant(text: str | datetime | date) -> datetime:
    """Parse ISO 8601 text (a date alone means 00:00 Asia/Seoul; no offset means Asia/Seoul)."""
    if isinstance(text, datetime):
        return ensure_aware(text)
    if isinstance(text, date):
        return datetime(text.year, text.month, text.day, tzinfo=KST)
    if not isinstance(text, str):
        raise ValueError(f"not an ISO 8601 date or instant: {text!r} ({INSTANT_EXAMPLE})")
    s = text.strip()
    if s.endswith("Z"):
        s = s[:-1] + "+00:00"
    try:
        if len(s) == 10:
            d = date.fromisoformat(s)
            return datetime(d.year, d.month, d.day, tzinfo=KST)
        return ensure_aware(datetime.fromisoformat(s))
    except (ValueError, OverflowError):
        raise ValueError(f"not an ISO 8601 date or instant: {text!r} ({INSTANT_EXAMPLE})") from None


def instant_arg(value: str | datetime | date, name: str) -> datetime:
    """:func:`parse_instant` of the argument ``name`` (e.g. ``--as-of``): a :class:`UsageError` naming
    the argument and showing an example when it does not parse."""
    try:
        return parse_instant(value)
    except ValueError as exc:
        raise UsageError(f"{name}: {exc}") from None


def refuse_far_future(
    at: datetime, name: str, *, now: datetime | None = None, slack: timedelta = FUTURE_SLACK
) -> datetime:
    """``at``, unless it lies more than ``slack`` (a day) after the wall clock: then a :class:`UsageError`.

    An ``as_of`` in the future becomes the latest run and makes every renewal due until then look
    unpaid; a day of slack covers clock skew and the KST date line.
    """
    current = now if now is not None else datetime.now(tz=UTC)
    if at - current > slack:
        raise UsageError(
            f"{name}: {at.astimezone(KST).isoformat()} is more than {_days(slack)} ahead of now "
            f"({current.astimezone(KST):%Y-%m-%d %H:%M} KST); give a past or present instant "
            f"({INSTANT_EXAMPLE})"
        )
    return at


def _days(span: timedelta) -> str:
    days = span / timedelta(days=1)
    return f"{days:g} day" + ("" if days == 1 else "s")


_MAX_DURATION_S = 100 * 366 * 86400
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d)?\s*$")


def parse_duration(text: str | timedelta | float) -> timedelta:
    """'15min', '15m', '2h', '1d', '900s' or a number of seconds -> timedelta."""
    if isinstance(text, timedelta):
        return text
    if isinstance(text, int | float):
        n, unit = float(text), "s"
    else:
        m = _DURATION.match(text)
        if not m:
            raise ValueError(f"not a duration: {text!r} (use e.g. 15min, 2h, 1d, 900s)")
        n, unit = float(m.group(1)), m.group(2) or "s"
    seconds = n * {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}[unit]
    if not math.isfinite(seconds) or abs(seconds) > _MAX_DURATION_S:
        raise ValueError(f"not a usable duration: {text!r} (use e.g. 15min, 2h, 1d, 900s; at most 100 years)")
    return timedelta(seconds=seconds)


def add_months(year: int, month: int, n: int) -> tuple[int, int]:
    idx = year * 12 + (month - 1) + n
    return idx // 12, idx % 12 + 1


def anchored_date(year: int, month: int, anchor_day: int) -> date:
    """The billing date of (year, month) for an anchor day, clamped at month end.

    Always computed from the anchor, never by stepping from a previous clamped date:
    anchor 31 gives 31 Jan, 28/29 Feb, 31 Mar.
    """
    last = calendar.monthrange(year, month)[1]
    return date(year, month, min(anchor_day, last))


def period_start(instant: datetime, anchor_day: int) -> date:
    """Start date (KST) of the monthly billing period containing ``instant``."""
    local = instant.astimezone(KST).date()
    y, m = local.year, local.month
    start = anchored_date(y, m, anchor_day)
    if local < start:
        y, m = add_months(y, m, -1)
        start = anchored_date(y, m, anchor_day)
    return start


def utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def month_index(d: date) -> int:
    """The month index of a date: ``year * 12 + month - 1`` (the reconcile rules' numbering)."""
    return d.year * 12 + d.month - 1


def anchored_date_at(mi: int, anchor_day: int) -> date:
    """The billing date of month index ``mi`` for an anchor day, clamped at month end."""
    return anchored_date(mi // 12, mi % 12 + 1, anchor_day)


def billing_period(instant: datetime, anchor_day: int, interval_months: int = 1, base_mi: int = 0) -> int:
    """The number of the billing period containing ``instant`` (Asia/Seoul).

    Periods of ``interval_months`` months start on the anchor day (clamped at month end) and are counted
    in blocks from month index ``base_mi`` (the month the subscription started in; 0 when unknown). The
    same arithmetic as the reconcile rules' ``recon_period`` macro, so an action books exactly the period
    a finding names.
    """
    if interval_months < 1:
        raise ValueError(f"interval_months must be >= 1, got {interval_months}")
    local = instant.astimezone(KST).date()
    start = anchored_date(local.year, local.month, anchor_day)
    pm = month_index(local) - (1 if local < start else 0)
    return (pm - base_mi) // interval_months


def billing_period_bounds(
    number: int, anchor_day: int, interval_months: int = 1, base_mi: int = 0
) -> tuple[date, date]:
    """First KST day of billing period ``number`` (inclusive) and of the next one (exclusive end)."""
    first = base_mi + number * interval_months
    return anchored_date_at(first, anchor_day), anchored_date_at(first + interval_months, anchor_day)
