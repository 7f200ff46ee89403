"""Retry policy for PortOne calls: pure functions of (method, status, exception, attempt).

Rules (see ``portone-v1-api.md`` and the client's docstring):

* Idempotent requests (GET, and ``POST /users/getToken``, which returns the same token when called twice)
  are retried on network errors and timeouts, on 429 and on 5xx, with capped exponential backoff and
  jitter. A ``Retry-After`` is honoured, but never below the backoff (``Retry-After: 0`` does not mean
  "hammer"), and a wait longer than :data:`MAX_RETRY_AFTER` is not slept: the 429 is raised instead.
* Writes (POST, PUT, DELETE) are retried only when the request provably never left this machine
  (``httpx.ConnectError``, ``httpx.ConnectTimeout``, ``httpx.PoolTimeout``). A write whose outcome is
  unknown (read/write timeout, dropped connection, or a 5xx answer, since PortOne may have applied it
  before failing) is never retried: :func:`outcome_unknown` tells the client to raise
  ``OutcomeUnknownError``. A 429 on a write is not retried either; it is raised as ``RateLimitError``
  (a 429 means the request was refused, so the outcome is known).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

#: Methods that may be repeated without changing anything at PortOne.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

#: Exceptions raised before any byte of the request reached the server.
NEVER_SENT_ERRORS: tuple[type[httpx.TransportError], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
)

#: Transient failures worth retrying for an idempotent request.
TRANSIENT_ERRORS: tuple[type[httpx.TransportError], ...] = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
)

#: Longest ``Retry-After`` (seconds) the client is willing to sleep through before giving up.
MAX_RETRY_AFTER = 120.0

BACKOFF_BASE = 0.5
BACKOFF_CAP = 20.0

_default_rng = random.Random()


def is_idempotent(method: str, idempotent: bool | None = None) -> bool:
    """Whether a request may be repeated: ``idempotent`` when given, else by HTTP method."""
    if idempotent is not None:
        return idempotent
    return method.upper() in IDEMPOTENT_METHODS


def backoff_seconds(
    attempt: int,
    rng: random.Random | None = None,
    *,
    base: float = BACKOFF_BASE,
    cap: float = BACKOFF_CAP,
) -> float:
    """Capped exponential backoff with "equal jitter" before retry number ``attempt + 1``.

    The wait lies in ``[c/2, c]`` with ``c = min(cap, base * 2**attempt)``, so it is never zero.

    Args:
        attempt: 0 for the first retry, 1 for the second, ...
        rng: source of jitter (pass a seeded ``random.Random`` in tests).
        base: the ceiling of the first wait, in seconds.
        cap: the largest ceiling, in seconds.
    """
    if attempt < 0:
        raise ValueError(f"attempt must be >= 0, got {attempt}")
    ceiling = min(cap, base * (2.0 ** min(attempt, 62)))
    r = (rng or _default_rng).random()
    return ceiling / 2.0 + r * ceiling / 2.0


def retry_decision(
    method: str,
    status: int | None,
    exc: BaseException | None,
    attempt: int,
    retry_after: float | None,
    *,
    max_retries: int = 4,
    idempotent: bool | None = None,
    rng: random.Random | None = None,
) -> float | None:
    """Seconds to wait before retrying, or None to stop.

    Args:
        method: HTTP method of the request.
        status: HTTP status received (None when ``exc`` is set).
        exc: the transport exception raised (None when a response arrived).
        attempt: retries already made (0 after the first try).
        retry_after: seconds from a ``Retry-After`` header, if any.
        max_retries: retries allowed in total.
        idempotent: overrides the method-based rule (getToken is a POST but idempotent).
        rng: jitter source.
    """
    if attempt >= max_retries:
        return None
    idem = is_idempotent(method, idempotent)
    if exc is not None:
        if isinstance(exc, NEVER_SENT_ERRORS) or (idem and isinstance(exc, TRANSIENT_ERRORS)):
            return backoff_seconds(attempt, rng)
        return None
    if status is None or not idem:
        return None
    if status == 429 or status >= 500:
        wait = backoff_seconds(attempt, rng)
        if retry_after is not None:
            if retry_after > MAX_RETRY_AFTER:
                return None
            wait = max(wait, retry_after)
        return wait
    return None


def outcome_unknown(
    method: str, status: int | None, exc: BaseException | None, *, idempotent: bool | None = None
) -> bool:
    """True when a write may or may not have been applied by PortOne (never re-send it blindly)."""
    if is_idempotent(method, idempotent):
        return False
    if exc is not None:
        return not isinstance(exc, NEVER_SENT_ERRORS)
    return status is not None and status >= 500


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """``Retry-After`` (delta-seconds or an HTTP date) to seconds >= 0; None when absent or unreadable."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now or datetime.now(tz=UTC)
    return max(0.0, (when - current).total_seconds())
