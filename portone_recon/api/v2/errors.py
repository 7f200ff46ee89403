"""V2 error answers: HTTP 4xx/5xx with a JSON ``{type, message}`` body, mapped to the project's errors."""

from __future__ import annotations

from typing import Any

import orjson

from portone_recon.errors import (
    BadRequestError,
    BusinessError,
    ConflictError,
    NotFoundError,
    PortOneHTTPError,
    RateLimitError,
    ServerError,
    UnauthorizedError,
)

#: Error types that are a refusal whatever their HTTP status: the outcome is known, nothing to resolve.
#: ``PG_PROVIDER`` (502) is how the schema reports a declined card on a billing-key payment.
REFUSAL_TYPES = frozenset({"PG_PROVIDER"})

_BY_STATUS: dict[int, type[PortOneHTTPError]] = {
    400: BadRequestError,
    401: UnauthorizedError,
    403: UnauthorizedError,
    404: NotFoundError,
    409: ConflictError,
    429: RateLimitError,
}


def error_body(body: bytes) -> tuple[str | None, str | None]:
    """The ``(type, message)`` of an error body; ``(None, text)`` when it is not a V2 error object."""
    try:
        data: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        text = body[:200].decode("utf-8", "replace").strip()
        return None, text or None
    if not isinstance(data, dict):
        return None, None
    kind = data.get("type")
    message = data.get("message")
    return (
        kind if isinstance(kind, str) else None,
        message if isinstance(message, str) else None,
    )


def v2_error(
    status: int,
    body: bytes,
    *,
    method: str,
    endpoint: str,
    retry_after: float | None = None,
) -> PortOneHTTPError:
    """The mapped error for a non-200 V2 answer (an unknown ``type`` keeps its status's class)."""
    kind, message = error_body(body)
    if kind in REFUSAL_TYPES:
        cls: type[PortOneHTTPError] = BusinessError
    elif status >= 500:
        cls = ServerError
    elif 200 <= status < 300:
        # Only 200 is success in V2; another 2xx is an answer this client does not understand.
        cls = PortOneHTTPError
    else:
        cls = _BY_STATUS.get(status, PortOneHTTPError)
    common: dict[str, Any] = {
        "http_status": status,
        "code": None,
        "message": message,
        "method": method,
        "endpoint": endpoint,
        "error_type": kind,
    }
    if cls is RateLimitError:
        return RateLimitError(retry_after=retry_after, **common)
    return cls(**common)
