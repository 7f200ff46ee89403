"""The PortOne V1 response envelope ``{code, message, response}`` and the HTTP status -> error mapping."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from portone_recon.errors import (
    BadRequestError,
    BusinessError,
    MalformedResponseError,
    NotFoundError,
    PortOneHTTPError,
    RateLimitError,
    ServerError,
    UnauthorizedError,
)

_BY_STATUS: dict[int, type[PortOneHTTPError]] = {
    400: BadRequestError,
    401: UnauthorizedError,
    404: NotFoundError,
    429: RateLimitError,
}


def error_class_for_status(status: int) -> type[PortOneHTTPError]:
    """The exception class for an HTTP status (2xx means a ``code != 0`` refusal: BusinessError)."""
    if 200 <= status < 300:
        return BusinessError
    if status >= 500:
        return ServerError
    return _BY_STATUS.get(status, PortOneHTTPError)


def make_http_error(
    status: int,
    code: int | None,
    message: str | None,
    *,
    method: str,
    endpoint: str,
    retry_after: float | None = None,
) -> PortOneHTTPError:
    """Build the mapped error for one answer."""
    cls = error_class_for_status(status)
    if cls is RateLimitError:
        return RateLimitError(
            retry_after=retry_after,
            http_status=status,
            code=code,
            message=message,
            method=method,
            endpoint=endpoint,
        )
    return cls(http_status=status, code=code, message=message, method=method, endpoint=endpoint)


def decode_envelope(
    status: int,
    body: bytes,
    *,
    method: str,
    endpoint: str,
    retry_after: float | None = None,
) -> Any:
    """The envelope's ``response`` for a 2xx answer with ``code == 0``; else raise the mapped error.

    Raises:
        MalformedResponseError: a 2xx body that is not JSON, not an object, or lacks an integer ``code``.
        BusinessError: HTTP 2xx with ``code != 0`` (``message`` kept verbatim).
        PortOneHTTPError: the subclass for a non-2xx status (the body's ``code``/``message`` when readable).
    """
    ok = 200 <= status < 300
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        if ok:
            raise MalformedResponseError(
                f"HTTP {status} body is not JSON ({len(body)} bytes)",
                method=method,
                endpoint=endpoint,
                field="<body>",
            ) from None
        raise make_http_error(
            status, None, None, method=method, endpoint=endpoint, retry_after=retry_after
        ) from None
    code: Any = data.get("code") if isinstance(data, dict) else None
    message: Any = data.get("message") if isinstance(data, dict) else None
    if not ok:
        code = code if isinstance(code, int) and not isinstance(code, bool) else None
        message = message if isinstance(message, str) else None
        raise make_http_error(
            status, code, message, method=method, endpoint=endpoint, retry_after=retry_after
        )
    if not isinstance(data, dict):
        raise MalformedResponseError(
            f"expected a JSON object envelope, got {type(data).__name__}",
            method=method,
            endpoint=endpoint,
            field="<body>",
        )
    if "code" not in data:
        raise MalformedResponseError("envelope has no 'code'", method=method, endpoint=endpoint, field="code")
    if isinstance(code, bool) or not isinstance(code, int):
        raise MalformedResponseError(
            f"expected an integer, got {type(code).__name__} {code!r:.40}",
            method=method,
            endpoint=endpoint,
            field="code",
        )
    if message is not None and not isinstance(message, str):
        raise MalformedResponseError(
            f"expected a string or null, got {type(message).__name__}",
            method=method,
            endpoint=endpoint,
            field="message",
        )
    if code != 0:
        raise BusinessError(http_status=status, code=code, message=message, method=method, endpoint=endpoint)
    return data.get("response")


@dataclass(frozen=True, slots=True)
class RawPage:
    """One page of a listing, envelope validated but items not parsed (the sync's fast ingest path).

    Attributes:
        endpoint: path template, e.g. ``/payments/status/{payment_status}``.
        params: the query sent, as ``(name, value)`` pairs (``page`` included).
        total: PortOne's ``total`` for the whole query (one window).
        next: next page number, 0 on the last page.
        items: the ``list`` objects as decoded JSON dicts.
        body: the raw response body, byte for byte.
        page: this page's number (from 1).
        previous: PortOne's ``previous``.
    """

    endpoint: str
    params: tuple[tuple[str, str], ...]
    total: int
    next: int
    items: list[dict[str, Any]] = field(repr=False)
    body: bytes = field(repr=False)
    page: int = 1
    previous: int = 0

    def __repr__(self) -> str:
        return (
            f"RawPage(endpoint={self.endpoint!r}, page={self.page}, items={len(self.items)}, "
            f"total={self.total}, next={self.next})"
        )
