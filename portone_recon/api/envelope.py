"""The PortOne V1 response envelope ``{code, message, response}`` and the HTTP status -> error mapping."""

from __future__ import annotations

import re
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


#: The envelope of a listing page as PortOne and the sandbox write it, up to the opening of ``list``:
#: ``{"code":0,"message":null|"...","response":{"total":T,"previous":P,"next":N,"list":[``.
_FAST_HEAD = re.compile(
    rb'\s*\{\s*"code"\s*:\s*0\s*,\s*"message"\s*:\s*(?:null|"(?:[^"\\]|\\.)*")\s*,\s*"response"\s*:\s*\{\s*'
    rb'"total"\s*:\s*(\d+)\s*,\s*"previous"\s*:\s*(\d+)\s*,\s*"next"\s*:\s*(\d+)\s*,\s*"list"\s*:\s*\['
)
_FAST_TAIL = re.compile(rb"\]\s*\}\s*\}\s*$")


def fast_page_header(body: bytes, key: bytes) -> tuple[int, int, int, tuple[str, ...]] | None:
    """``(total, previous, next, keys)`` of a listing body in PortOne's own layout, without decoding it.

    ``keys`` are the values of string field ``key`` (``imp_uid`` of payments, ``merchant_uid`` of
    schedules), one per item: a JSON string cannot hold an unescaped ``"``, so ``"imp_uid":"…"`` only
    matches real keys. Returns None for any other layout (keys in another order, whitespace inside a
    key value, ``code`` not 0, ...): the caller then decodes the whole body as usual. The items
    themselves are checked where they are read (the sync's DuckDB staging, or :attr:`RawPage.items`).
    """
    head = _FAST_HEAD.match(body)
    if head is None or _FAST_TAIL.search(body, max(0, len(body) - 64)) is None:
        return None
    pattern = re.compile(rb'"' + re.escape(key) + rb'"\s*:\s*"([^"\\]*)"')  # re caches the compile
    keys = tuple(v.decode() for v in pattern.findall(body, head.end()))
    return int(head[1]), int(head[2]), int(head[3]), keys


class RawPage:
    """One page of a listing, envelope validated; items decoded only when asked for.

    The sync never asks: it spools :attr:`body` for DuckDB and uses :attr:`count` and :attr:`keys`, so a
    page of 1000 payments is never turned into Python objects (that decode was 40% of the
    client's CPU). Records (``iter_payments_by_status``) decode :attr:`items`, which validates the list.

    Attributes:
        endpoint: path template, e.g. ``/payments/status/{payment_status}``.
        params: the query sent, as ``(name, value)`` pairs (``page`` included).
        total: PortOne's ``total`` for the whole query (one window).
        next: next page number, 0 on the last page.
        items: the ``list`` objects as decoded JSON dicts (decoded on first access).
        body: the raw response body, byte for byte.
        page: this page's number (from 1).
        previous: PortOne's ``previous``.
        count: how many items the page holds.
        keys: the items' key values (``imp_uid``/``merchant_uid``) when read without decoding, else None.
    """

    __slots__ = ("_items", "body", "count", "endpoint", "keys", "next", "page", "params", "previous", "total")

    def __init__(
        self,
        *,
        endpoint: str,
        params: tuple[tuple[str, str], ...],
        total: int,
        next: int,
        items: list[dict[str, Any]] | None = None,
        body: bytes = b"",
        page: int = 1,
        previous: int = 0,
        keys: tuple[str, ...] | None = None,
    ) -> None:
        if items is None and keys is None:
            raise ValueError("a RawPage needs its decoded items or the keys read from its body")
        self.endpoint = endpoint
        self.params = params
        self.total = total
        self.next = next
        self._items = items
        self.body = body
        self.page = page
        self.previous = previous
        self.keys = keys
        self.count = len(items) if items is not None else len(keys or ())

    @property
    def items(self) -> list[dict[str, Any]]:
        if self._items is None:
            from portone_recon.api.models import parse_page_envelope  # models builds on this module

            response = decode_envelope(200, self.body, method="GET", endpoint=self.endpoint)
            self._items = parse_page_envelope(response, endpoint=self.endpoint)[3]
        return self._items

    def __repr__(self) -> str:
        return (
            f"RawPage(endpoint={self.endpoint!r}, page={self.page}, items={self.count}, "
            f"total={self.total}, next={self.next})"
        )
