"""The pure retry policy: which failures are retried, how long to wait."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import httpx
import pytest

from portone_recon.api.retry import (
    MAX_RETRY_AFTER,
    backoff_seconds,
    outcome_unknown,
    parse_retry_after,
    retry_decision,
)

REQ = httpx.Request("GET", "https://x.test/")


def test_backoff_grows_is_capped_and_never_zero() -> None:
    rng = random.Random(1)
    for attempt in range(12):
        ceiling = min(20.0, 0.5 * 2**attempt)
        for _ in range(50):
            wait = backoff_seconds(attempt, rng)
            assert ceiling / 2 <= wait <= ceiling
    assert backoff_seconds(100, random.Random(0)) <= 20.0


def test_backoff_jitter_depends_on_rng() -> None:
    a = [backoff_seconds(3, random.Random(1)) for _ in range(1)]
    b = [backoff_seconds(3, random.Random(2)) for _ in range(1)]
    assert a != b
    assert backoff_seconds(3, random.Random(5)) == backoff_seconds(3, random.Random(5))


def test_backoff_rejects_negative_attempt() -> None:
    with pytest.raises(ValueError):
        backoff_seconds(-1)


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429])
def test_get_retries_5xx_and_429(status: int) -> None:
    assert retry_decision("GET", status, None, 0, None, rng=random.Random(0)) is not None


@pytest.mark.parametrize("status", [400, 401, 404, 200, 207])
def test_get_does_not_retry_answers(status: int) -> None:
    assert retry_decision("GET", status, None, 0, None) is None


def test_stops_after_max_retries() -> None:
    assert retry_decision("GET", 503, None, 3, None, max_retries=4) is not None
    assert retry_decision("GET", 503, None, 4, None, max_retries=4) is None
    assert retry_decision("GET", 503, None, 0, None, max_retries=0) is None


def test_retry_after_is_honoured_but_never_below_backoff() -> None:
    assert retry_decision("GET", 429, None, 0, 7.0, rng=random.Random(0)) == 7.0
    zero = retry_decision("GET", 429, None, 0, 0.0, rng=random.Random(0))
    assert zero is not None and zero >= 0.25  # Retry-After: 0 is not a licence to hammer
    assert retry_decision("GET", 429, None, 0, MAX_RETRY_AFTER + 1) is None


@pytest.mark.parametrize(
    "exc",
    [httpx.ConnectError("x", request=REQ), httpx.ConnectTimeout("x", request=REQ)],
)
@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE"])
def test_never_sent_errors_are_retried_for_any_method(method: str, exc: Exception) -> None:
    assert retry_decision(method, None, exc, 0, None) is not None
    assert not outcome_unknown(method, None, exc)


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ReadTimeout("x", request=REQ),
        httpx.WriteTimeout("x", request=REQ),
        httpx.ReadError("x", request=REQ),
        httpx.RemoteProtocolError("x", request=REQ),
    ],
)
def test_ambiguous_errors_retried_for_get_not_for_writes(exc: Exception) -> None:
    assert retry_decision("GET", None, exc, 0, None) is not None
    for method in ("POST", "PUT", "DELETE"):
        assert retry_decision(method, None, exc, 0, None) is None
        assert outcome_unknown(method, None, exc)
    assert not outcome_unknown("GET", None, exc)


def test_writes_are_not_retried_on_answers_and_5xx_is_unknown() -> None:
    assert retry_decision("POST", 503, None, 0, None) is None
    assert retry_decision("POST", 429, None, 0, 1.0) is None
    assert outcome_unknown("POST", 500, None)
    assert not outcome_unknown("POST", 429, None)
    assert not outcome_unknown("POST", 400, None)


def test_idempotent_override_for_get_token() -> None:
    exc = httpx.ReadTimeout("x", request=REQ)
    assert retry_decision("POST", None, exc, 0, None, idempotent=True) is not None
    assert retry_decision("POST", 503, None, 0, None, idempotent=True) is not None
    assert not outcome_unknown("POST", 503, None, idempotent=True)


def test_parse_retry_after() -> None:
    assert parse_retry_after(None) is None
    assert parse_retry_after("") is None
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("-5") == 0.0
    assert parse_retry_after("soon") is None
    now = datetime(2026, 11, 27, 0, 0, 0, tzinfo=UTC)
    assert parse_retry_after("Fri, 27 Nov 2026 00:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Fri, 26 Nov 2026 00:00:30 GMT", now=now) == 0.0
