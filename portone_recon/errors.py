"""Every exception portone_recon raises, under one root.

The CLI catches only :class:`PortOneReconError`; foreign exceptions (httpx, duckdb, pandas) are
converted once, at the boundary that met them, with ``raise ... from exc``. No message, repr or
attribute of any of these ever holds the API secret or an access token.

::

    PortOneReconError
    ├── ConfigError                      settings missing or invalid (names the variable)
    ├── UsageError                       an argument's value is invalid (names it; also a ValueError)
    ├── APIError                         anything about a PortOne call (method, endpoint)
    │   ├── TransportError               no usable answer: connect error, timeout, retries exhausted
    │   │   └── OutcomeUnknownError      a write may or may not have been applied (carries the request)
    │   ├── MalformedResponseError       the body is not what the reference says (names the field)
    │   └── PortOneHTTPError             PortOne answered (http_status, code, message verbatim)
    │       ├── BusinessError            HTTP 2xx with code != 0 (a refusal: never retried blindly)
    │       │   └── ConflictError        V2 HTTP 409: a state conflict (ALREADY_PAID, ..._ALREADY_REVOKED)
    │       ├── BadRequestError          400
    │       ├── UnauthorizedError        401
    │       ├── NotFoundError            404
    │       ├── RateLimitError           429 (retry_after)
    │       └── ServerError              5xx
    ├── StoreError                       the DuckDB file
    │   ├── StoreLockedError             another process holds the file (path, holder PID)
    │   └── MigrationError               schema newer than this code, or a migration failed
    ├── SourceError                      an orders/subscriptions source cannot be read
    │   └── ValidationError              rows that break the canonical format (row, column)
    ├── SyncError                        a sync stream failed (stream; the cause is chained)
    ├── ReconcileError                   a rule failed or the store lacks what reconcile needs
    ├── ActionError                      planning or applying a fix-up
    │   ├── ApplyInProgressError         another apply holds this store (names the holder)
    │   ├── PlanRefusedError             a plan that is not the store's record, stale, or malformed
    │   └── CapExceededError             an apply would move more than its caps allow (names the cap)
    ├── ReportError                      a report notebook failed (names the cell)
    └── SandboxError                     misuse of the simulator (bad scenario, unknown control)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


class PortOneReconError(Exception):
    """Root of every error this package raises on purpose."""


class ConfigError(PortOneReconError):
    """A setting is missing or invalid."""


class UsageError(PortOneReconError, ValueError):
    """An argument's value is invalid: the message names the argument and shows a valid example.

    Also a :class:`ValueError`, which is what a Python caller passing a bad value expects to catch.
    """


class APIError(PortOneReconError):
    """A PortOne API call failed.

    Attributes:
        method: HTTP method of the call.
        endpoint: the path template or path called, e.g. ``/payments/{imp_uid}``.
    """

    def __init__(self, message: str, *, method: str = "", endpoint: str = "") -> None:
        self.method = method
        self.endpoint = endpoint
        where = f"{method} {endpoint}".strip()
        super().__init__(f"{where}: {message}" if where else message)
        self.detail = message


class TransportError(APIError):
    """No usable answer arrived (network error, timeout, or retries exhausted)."""


@dataclass(frozen=True)
class RequestInfo:
    """What was sent, minus credentials: enough for a caller to resolve an unknown outcome."""

    method: str
    endpoint: str
    params: Sequence[tuple[str, str]] = ()
    json: Any = None


class OutcomeUnknownError(TransportError):
    """A write request may have reached PortOne, but no answer came back.

    Never re-send it blindly: resolve it by reading (e.g. ``GET /payments/find/{merchant_uid}`` or
    ``GET /subscribe/payments/schedule/{merchant_uid}``).
    """

    def __init__(self, message: str, *, request: RequestInfo) -> None:
        super().__init__(message, method=request.method, endpoint=request.endpoint)
        self.request = request


class MalformedResponseError(APIError):
    """The response body does not have the documented shape.

    Attributes:
        field: dotted path of the offending field, e.g. ``response.list[3].amount``.
    """

    def __init__(self, message: str, *, method: str = "", endpoint: str = "", field: str = "") -> None:
        self.field = field
        text = f"{message} (field {field!r})" if field else message
        super().__init__(text, method=method, endpoint=endpoint)


class PortOneHTTPError(APIError):
    """PortOne answered with an error.

    Attributes:
        http_status: the HTTP status code.
        code: PortOne's ``code`` from the envelope (None if the body had none).
        message: PortOne's ``message``, verbatim (often Korean).
        error_type: the V2 error's ``type`` (``PAYMENT_NOT_FOUND``, ``PG_PROVIDER``, ...); None for V1.
    """

    def __init__(
        self,
        *,
        http_status: int,
        code: int | None,
        message: str | None,
        method: str = "",
        endpoint: str = "",
        error_type: str | None = None,
    ) -> None:
        self.http_status = http_status
        self.code = code
        self.message = message
        self.error_type = error_type
        label = error_type if error_type is not None else f"code {code}"
        text = f"HTTP {http_status}, {label}: {message}"
        super().__init__(text, method=method, endpoint=endpoint)


class BusinessError(PortOneHTTPError):
    """HTTP 2xx with ``code != 0``: PortOne refused the request (message kept verbatim)."""


class ConflictError(BusinessError):
    """V2 HTTP 409: the request conflicts with PortOne's state (already paid, already revoked, ...)."""


class BadRequestError(PortOneHTTPError):
    """HTTP 400: bad parameters (window too long, schedule already executed, ...)."""


class UnauthorizedError(PortOneHTTPError):
    """HTTP 401: bad credentials or an invalid/expired access token."""


class NotFoundError(PortOneHTTPError):
    """HTTP 404: unknown imp_uid / merchant_uid / customer_uid / schedule."""


class RateLimitError(PortOneHTTPError):
    """HTTP 429: too many requests.

    Attributes:
        retry_after: seconds PortOne asked to wait, if it said.
    """

    def __init__(self, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.retry_after = retry_after


class ServerError(PortOneHTTPError):
    """HTTP 5xx."""


class StoreError(PortOneReconError):
    """The DuckDB store cannot be opened, read or written."""


class StoreLockedError(StoreError):
    """Another process holds the DuckDB file.

    Attributes:
        path: the file.
        pid: the holder's process id, when DuckDB reported it.
    """

    def __init__(self, message: str, *, path: str, pid: int | None) -> None:
        super().__init__(message)
        self.path = path
        self.pid = pid


class MigrationError(StoreError):
    """The schema cannot be brought to this code's version."""


class SourceError(PortOneReconError):
    """An orders or subscriptions source cannot be read."""


@dataclass(frozen=True)
class RowProblem:
    """One offending cell: ``row`` is 1-based as a person counts data rows (header excluded)."""

    row: int | None
    column: str | None
    problem: str
    value: Any = None

    def __str__(self) -> str:
        where = []
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column {self.column!r}")
        loc = ", ".join(where) or "source"
        shown = "" if self.value is None else f" (value {self.value!r})"
        return f"{loc}: {self.problem}{shown}"


class ValidationError(SourceError):
    """Rows of a source break the canonical format; nothing was written.

    Attributes:
        source: a description of the source (file path, table, query or "DataFrame").
        problems: every problem found (the message lists the first 10).
    """

    def __init__(self, source: str, problems: Sequence[RowProblem]) -> None:
        self.source = source
        self.problems = list(problems)
        shown = "\n".join(f"  - {p}" for p in self.problems[:10])
        more = len(self.problems) - 10
        tail = f"\n  ... and {more} more" if more > 0 else ""
        super().__init__(f"{source}: {len(self.problems)} problem(s), nothing loaded:\n{shown}{tail}")


class SyncError(PortOneReconError):
    """A sync stream failed; its rows and cursor were left as they were."""


class ReconcileError(PortOneReconError):
    """Reconciliation failed."""


class ActionError(PortOneReconError):
    """A fix-up could not be planned or applied."""


class ApplyInProgressError(ActionError):
    """Another apply holds this store's apply lock."""


class PlanRefusedError(ActionError):
    """A plan apply will not take: it differs from the store's record, is too old, or is malformed."""


class CapExceededError(ActionError):
    """An apply would send more money-moving requests, or more money, than its caps allow."""


class ReportError(PortOneReconError):
    """A report notebook failed.

    Attributes:
        notebook: path of the executed (partial) notebook that was written anyway.
        cell: index of the failing cell, when known.
    """

    def __init__(self, message: str, *, notebook: str | None = None, cell: int | None = None) -> None:
        super().__init__(message)
        self.notebook = notebook
        self.cell = cell


class SandboxError(PortOneReconError):
    """The simulator was misused (bad scenario parameters, unknown control)."""
