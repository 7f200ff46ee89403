from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from portone_recon._time import (
    KST,
    anchored_date,
    from_unix,
    parse_duration,
    parse_instant,
    period_start,
    to_unix,
)


def test_zero_means_not_yet() -> None:
    assert from_unix(0) is None
    assert from_unix(None) is None
    t = from_unix(1714521602)
    assert t is not None and t.tzinfo is not None
    assert to_unix(t) == 1714521602


def test_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        to_unix(datetime(2026, 1, 1))


def test_date_means_midnight_kst() -> None:
    assert to_unix(date(2026, 11, 1)) == to_unix(datetime(2026, 11, 1, tzinfo=KST))
    assert parse_instant("2026-11-01") == datetime(2026, 11, 1, tzinfo=KST)
    assert parse_instant("2026-11-01T00:30:00+09:00").day == 1
    assert parse_instant("2026-10-31T15:30:00Z") == datetime(2026, 11, 1, 0, 30, tzinfo=KST)
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_instant("yesterday")


@pytest.mark.parametrize(
    ("text", "seconds"), [("15min", 900), ("15m", 900), ("2h", 7200), ("1d", 86400), ("90", 90), ("30s", 30)]
)
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


def test_anchor_clamps_from_the_anchor_each_time() -> None:
    assert [anchored_date(2027, m, 31) for m in (1, 2, 3, 4)] == [
        date(2027, 1, 31),
        date(2027, 2, 28),
        date(2027, 3, 31),
        date(2027, 4, 30),
    ]
    assert anchored_date(2028, 2, 30) == date(2028, 2, 29)


def test_period_start_uses_kst_days() -> None:
    # 00:30 KST on the 1st is still the 1st in Seoul (it is the 31st in UTC)
    t = datetime(2026, 11, 1, 0, 30, tzinfo=KST)
    assert period_start(t, 1) == date(2026, 11, 1)
    assert period_start(t, 31) == date(2026, 10, 31)
    assert period_start(datetime(2027, 3, 1, 10, tzinfo=KST), 31) == date(2027, 2, 28)
