"""Window splitting: payments (inclusive bounds, 90 days) and schedules (exclusive end, 3 KST months)."""

from __future__ import annotations

import itertools
from datetime import date, datetime, timedelta

import pytest

from portone_recon._time import KST
from portone_recon.api.windows import payment_windows, schedule_windows

DAY = 86400


def _u(*args: int) -> int:
    return int(datetime(*args, tzinfo=KST).timestamp())


def test_200_day_payment_range_becomes_three_inclusive_windows() -> None:
    a = _u(2026, 1, 1)
    until = a + 200 * DAY
    assert payment_windows(a, until) == [
        (a, a + 90 * DAY - 1),
        (a + 90 * DAY, a + 180 * DAY - 1),
        (a + 180 * DAY, until - 1),
    ]


def test_payment_windows_cover_every_second_once_and_stay_within_90_days() -> None:
    a = _u(2025, 3, 5, 13, 7, 11)
    until = a + 365 * DAY + 17
    windows = payment_windows(a, until)
    assert windows[0][0] == a and windows[-1][1] == until - 1
    for (_, hi), (nlo, _) in itertools.pairwise(windows):
        assert nlo == hi + 1  # contiguous, no overlap by a second
    assert all(hi - lo + 1 <= 90 * DAY for lo, hi in windows)


def test_payment_windows_exact_90_days_is_one_window_and_empty_range_is_none() -> None:
    a = _u(2026, 1, 1)
    assert payment_windows(a, a + 90 * DAY) == [(a, a + 90 * DAY - 1)]
    assert payment_windows(a, a) == []
    assert payment_windows(a + 5, a) == []


def test_payment_windows_accept_datetimes_and_dates() -> None:
    since = datetime(2026, 1, 1, tzinfo=KST)
    assert payment_windows(since, since + timedelta(days=1)) == [(_u(2026, 1, 1), _u(2026, 1, 2) - 1)]
    assert payment_windows(date(2026, 1, 1), date(2026, 1, 2)) == [(_u(2026, 1, 1), _u(2026, 1, 2) - 1)]
    # a fractional end second is still covered
    end = datetime(2026, 1, 2, 0, 0, 0, 500000, tzinfo=KST)
    assert payment_windows(since, end)[-1][1] == _u(2026, 1, 2)


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        payment_windows(datetime(2026, 1, 1), datetime(2026, 2, 1))


def test_seven_month_schedule_range_becomes_90_day_windows_with_exclusive_ends() -> None:
    # "at most 3 months" may mean 90 or 92 days or calendar months: 90 days is safe under every reading
    since = datetime(2026, 1, 1, tzinfo=KST)
    until = datetime(2026, 8, 1, tzinfo=KST)
    day = 86400
    assert schedule_windows(since, until) == [
        (_u(2026, 1, 1), _u(2026, 1, 1) + 90 * day),
        (_u(2026, 1, 1) + 90 * day, _u(2026, 1, 1) + 180 * day),
        (_u(2026, 1, 1) + 180 * day, _u(2026, 8, 1)),
    ]


def test_schedule_windows_never_exceed_90_days_and_tile_the_range() -> None:
    since = datetime(2026, 1, 31, 9, 30, tzinfo=KST)
    until = datetime(2026, 12, 31, tzinfo=KST)
    windows = schedule_windows(since, until)
    assert windows[0][0] == _u(2026, 1, 31) + 9 * 3600 + 1800
    assert all(0 < hi - lo <= 90 * 86400 for lo, hi in windows)
    for (_, hi), (nlo, _) in itertools.pairwise(windows):
        assert hi == nlo  # exclusive end = next start: no gap, no overlap
    assert windows[-1][1] == _u(2026, 12, 31)


def test_schedule_window_boundaries_are_kst_midnight_not_utc() -> None:
    windows = schedule_windows(date(2026, 1, 1), date(2026, 5, 1))
    assert windows[0] == (_u(2026, 1, 1), _u(2026, 1, 1) + 90 * 86400)
    assert datetime.fromtimestamp(windows[0][1], tz=KST).hour == 0


def test_iso_text_is_read_as_kst() -> None:
    assert payment_windows("2026-01-01", "2026-01-02T00:00:00+09:00") == [
        (_u(2026, 1, 1), _u(2026, 1, 2) - 1)
    ]
    assert schedule_windows("2026-01-01T00:00:00Z", "2026-01-02") == [
        (_u(2026, 1, 1, 9), _u(2026, 1, 2)),
    ]
