"""One V2 request: ``Authorization: PortOne <secret>``, ``requestBody`` query JSON, retries, decoding.

Retries follow :mod:`portone_recon.api.retry`. A write carrying an ``Idempotency-Key`` is retried like a
read (PortOne replays the stored answer of a finished request for 3 hours; an in-flight duplicate gets
409 ``IDEMPOTENCY_OUTSTANDING_REQUEST``); a write without one is never re-sent once it may have left this
machine, and an unknown outcome raises :class:`~portone_recon.errors.OutcomeUnknownError`. Only HTTP 200
is success. The secret never appears in a repr, log or error.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx
import orjson

from portone_recon.api.counting import count_call
from portone_recon.api.retry import outcome_unknown, parse_retry_after, retry_decision
from portone_recon.api.v2.errors import REFUSAL_TYPES, error_body, v2_error
from portone_recon.config import Settings
from portone_recon.errors import (
    APIError,
    MalformedResponseError,
    OutcomeUnknownError,
    RequestInfo,
    TransportError,
)

log = logging.getLogger("portone_recon.api.v2")

Params = Sequence[tuple[str, str]]


def query_body(body: Mapping[str, Any]) -> str:
    """The compact JSON sent in the ``requestBody`` query parameter (what the official SDK sends)."""
    return orjson.dumps(body).decode()


class V2Transport:
    """Sends V2 requests with retries and call counting (thread-safe).

    Args:
        settings: ``v2_api_base``, ``api_secret``, timeouts, ``max_retries``, ``concurrency``.
        transport: an httpx transport (tests, the in-process sandbox).
        sleep: called with seconds to wait between retries.
        rng: jitter source for backoff.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        settings.require_v2_credentials()
        self.settings = settings
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._api_calls = 0
        self.closed = False
        n = max(10, 2 * settings.concurrency)
        self._http = httpx.Client(
            base_url=settings.v2_api_base,
            transport=transport,
            timeout=httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout),
            limits=httpx.Limits(max_connections=n, max_keepalive_connections=n),
            headers={"Accept": "application/json", "User-Agent": "portone-recon"},
        )

    def __repr__(self) -> str:
        return f"V2Transport(v2_api_base={self.settings.v2_api_base!r}, api_calls={self._api_calls})"

    @property
    def api_calls(self) -> int:
        """HTTP requests sent so far (retries included)."""
        return self._api_calls

    def close(self) -> None:
        self.closed = True
        self._http.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Params = (),
        body_query: Mapping[str, Any] | None = None,
        json: Any = None,
        endpoint: str | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Send one logical request and return the 200 body decoded (a JSON object); see
        :meth:`request_bytes` for the arguments and errors."""
        body = self.request_bytes(
            method,
            path,
            params=params,
            body_query=body_query,
            json=json,
            endpoint=endpoint,
            idempotency_key=idempotency_key,
        )
        return decode_object(body, method.upper(), endpoint or path)

    def request_bytes(
        self,
        method: str,
        path: str,
        *,
        params: Params = (),
        body_query: Mapping[str, Any] | None = None,
        json: Any = None,
        endpoint: str | None = None,
        idempotency_key: str | None = None,
    ) -> bytes:
        """Send one logical request and return the 200 body as received (not decoded).

        Args:
            method: HTTP method.
            path: the path (ids already percent-escaped).
            params: plain query parameters.
            body_query: JSON sent URL-encoded in the ``requestBody`` query parameter.
            json: JSON body.
            endpoint: path template named in errors (defaults to ``path``).
            idempotency_key: sent as ``Idempotency-Key: "<key>"``; makes a write safe to re-send.

        Raises:
            ConflictError (409), NotFoundError, BadRequestError, UnauthorizedError (401/403),
            BusinessError (a ``PG_PROVIDER`` refusal), RateLimitError, ServerError,
            MalformedResponseError, TransportError, OutcomeUnknownError.
        """
        method = method.upper()
        where = endpoint or path
        if self.closed:
            raise APIError("the client is closed", method=method, endpoint=where)
        query: list[tuple[str, str | int | float | bool | None]] = list(params)
        if body_query is not None:
            query.append(("requestBody", query_body(body_query)))
        headers = {"Authorization": f"PortOne {self.settings.api_secret.reveal()}"}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = f'"{idempotency_key}"'
        idempotent = True if idempotency_key is not None else None
        attempt = 0
        while True:
            with self._lock:
                self._api_calls += 1
                count_call()
            try:
                resp = self._http.request(method, path, params=query, json=json, headers=headers)
            except httpx.TransportError as exc:
                wait = retry_decision(
                    method, None, exc, attempt, None,
                    max_retries=self.settings.max_retries, idempotent=idempotent, rng=self._rng,
                )  # fmt: skip
                kind = type(exc).__name__
                if wait is None:
                    if outcome_unknown(method, None, exc, idempotent=idempotent):
                        raise OutcomeUnknownError(
                            f"{kind} after the request was sent: it may or may not have been applied; "
                            "resolve it by reading before re-sending",
                            request=RequestInfo(
                                method=method, endpoint=where, params=tuple(params), json=json
                            ),
                        ) from exc
                    raise TransportError(
                        f"{kind} after {attempt + 1} attempt(s): {exc}", method=method, endpoint=where
                    ) from exc
                self._sleep(wait)
                attempt += 1
                continue
            status = resp.status_code
            if status == 200:
                return resp.content
            kind_of_error, _ = error_body(resp.content)
            refusal = kind_of_error in REFUSAL_TYPES
            retry_after = parse_retry_after(resp.headers.get("Retry-After"))
            if (status == 429 or status >= 500) and not refusal:
                wait = retry_decision(
                    method, status, None, attempt, retry_after,
                    max_retries=self.settings.max_retries, idempotent=idempotent, rng=self._rng,
                )  # fmt: skip
                if wait is not None:
                    log.info("%s %s: HTTP %d, retry %d in %.2fs", method, where, status, attempt + 1, wait)
                    self._sleep(wait)
                    attempt += 1
                    continue
                if outcome_unknown(method, status, None, idempotent=idempotent):
                    answer = v2_error(status, resp.content, method=method, endpoint=where)
                    raise OutcomeUnknownError(
                        f"HTTP {status} to a write: PortOne may have applied it before failing "
                        f"({answer.error_type}: {answer.message}); resolve it by reading before re-sending",
                        request=RequestInfo(method=method, endpoint=where, params=tuple(params), json=json),
                    ) from answer
            raise v2_error(status, resp.content, method=method, endpoint=where, retry_after=retry_after)


def decode_object(content: bytes, method: str, endpoint: str) -> dict[str, Any]:
    """A 200 body decoded: a JSON object, else :class:`MalformedResponseError` naming the endpoint."""
    try:
        data = orjson.loads(content)
    except orjson.JSONDecodeError:
        raise MalformedResponseError(
            "HTTP 200 with a body that is not JSON", method=method, endpoint=endpoint
        ) from None
    if not isinstance(data, dict):
        raise MalformedResponseError(
            f"expected a JSON object, got {type(data).__name__}", method=method, endpoint=endpoint
        )
    return data
