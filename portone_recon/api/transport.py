"""One logical request to PortOne: the HTTP connection pool, the retry loop, the token, call counting.

Retries follow :mod:`portone_recon.api.retry`: reads are retried on network errors, 429 and 5xx; a write
is re-sent only when it provably never left this machine, and a write whose outcome is unknown (timeout
after sending, dropped connection, 5xx) raises :class:`~portone_recon.errors.OutcomeUnknownError` carrying
the request (credentials and card data redacted) so the caller can resolve it by reading. A 401 refreshes
the token once. The secret and the token never appear in a repr, log or error.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

import httpx

from portone_recon._time import from_unix
from portone_recon.api.counting import CallCounter, count_call, counting_calls
from portone_recon.api.envelope import decode_envelope
from portone_recon.api.models import Token
from portone_recon.api.retry import outcome_unknown, parse_retry_after, retry_decision
from portone_recon.api.token import TokenCache
from portone_recon.config import Settings
from portone_recon.errors import (
    APIError,
    MalformedResponseError,
    OutcomeUnknownError,
    PortOneHTTPError,
    RequestInfo,
    TransportError,
)

log = logging.getLogger("portone_recon.api")

Params = Sequence[tuple[str, str]]

_TOKEN_PATH = "/users/getToken"

# Body fields never copied into an error's RequestInfo.
_REDACTED_FIELDS = frozenset(
    {"imp_secret", "card_number", "expiry", "birth", "pwd_2digit", "cvc", "refund_account"}
)


def _headers(settings: Settings) -> dict[str, str]:
    """Headers of every request; ``Tier`` (an agency's sub-merchant code) when the setting is given."""
    headers = {"Accept": "application/json", "User-Agent": "portone-recon"}
    if settings.tier:
        headers["Tier"] = settings.tier
    return headers


def _param(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def norm_params(params: Mapping[str, Any] | Params | None) -> tuple[tuple[str, str], ...]:
    if params is None:
        return ()
    items = params.items() if isinstance(params, Mapping) else params
    out: list[tuple[str, str]] = []
    for key, value in items:
        if value is None:
            continue
        if isinstance(value, list | tuple):
            out.extend((key, _param(v)) for v in value)
        else:
            out.append((key, _param(value)))
    return tuple(out)


def _redact(body: Any) -> Any:
    if isinstance(body, Mapping):
        return {k: ("***" if k in _REDACTED_FIELDS else _redact(v)) for k, v in body.items()}
    if isinstance(body, list):
        return [_redact(v) for v in body]
    return body


class Transport:
    """Sends requests to PortOne with retries, the shared token and call counting (thread-safe).

    Args:
        settings: api_base, timeouts, ``max_retries``, ``concurrency`` (sizes the connection pool), tier.
        transport: an httpx transport (tests, the in-process sandbox).
        sleep: called with seconds to wait between retries.
        rng: jitter source for backoff.
        clock: monotonic clock used for the token cache.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._max_retries = settings.max_retries
        self._tokens = TokenCache(self._fetch_token, clock)
        self._count_lock = threading.Lock()
        self._api_calls = 0
        self.closed = False
        concurrency = settings.concurrency
        timeout = httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout)
        limits = httpx.Limits(
            max_connections=max(10, 2 * concurrency), max_keepalive_connections=max(10, 2 * concurrency)
        )
        self._http = httpx.Client(
            base_url=settings.api_base,
            transport=transport,
            timeout=timeout,
            limits=limits,
            headers=_headers(settings),
        )

    def __repr__(self) -> str:
        return f"Transport(api_base={self.settings.api_base!r}, api_calls={self._api_calls})"

    def close(self) -> None:
        """Close the HTTP connections; later requests raise APIError."""
        self.closed = True
        self._http.close()

    @property
    def api_calls(self) -> int:
        """HTTP requests sent so far (getToken and retries included)."""
        return self._api_calls

    def reset_api_calls(self) -> None:
        """Set :attr:`api_calls` back to 0."""
        with self._count_lock:
            self._api_calls = 0

    def server_now(self) -> datetime:
        """PortOne's clock now (``getToken``'s ``now``): one token request, whose token is kept."""
        token = self._tokens.refresh()
        moment = from_unix(token.now)
        if moment is None:
            raise MalformedResponseError(
                "expected unix seconds > 0", method="POST", endpoint=_TOKEN_PATH, field="response.now"
            )
        return moment

    def _fetch_token(self) -> Token:
        body = {"imp_key": self.settings.imp_key, "imp_secret": self.settings.imp_secret.reveal()}
        resp = self.send("POST", _TOKEN_PATH, (), body, _TOKEN_PATH, auth=False, idempotent=True)
        response = self.decode(resp, "POST", _TOKEN_PATH)
        return Token.from_json(response, endpoint=_TOKEN_PATH, method="POST")

    def _count(self) -> None:
        with self._count_lock:
            self._api_calls += 1
            count_call()

    def counting_calls(self) -> AbstractContextManager[CallCounter]:
        """Count the HTTP requests made for the code inside (in this thread and the pool it uses).

        Unlike a difference of :attr:`api_calls`, this stays exact when other threads use the client at
        the same time.
        """
        return counting_calls()

    def _request_info(self, method: str, endpoint: str, params: Params, body: Any) -> RequestInfo:
        return RequestInfo(method=method, endpoint=endpoint, params=tuple(params), json=_redact(body))

    def send(
        self,
        method: str,
        path: str,
        params: Params,
        body: Any,
        endpoint: str,
        *,
        auth: bool = True,
        idempotent: bool | None = None,
    ) -> httpx.Response:
        """Send one logical request with retries and the 401 refresh; return the final response."""
        if self.closed:
            raise APIError("the client is closed", method=method, endpoint=endpoint)
        attempt = 0
        refreshed = False
        token: str | None = None
        while True:
            headers: dict[str, str] = {}
            if auth:
                token = self._tokens.get()
                headers["Authorization"] = f"Bearer {token}"
            self._count()
            started = time.perf_counter()
            try:
                resp = self._http.request(method, path, params=list(params), json=body, headers=headers)
            except httpx.TransportError as exc:
                wait = retry_decision(
                    method,
                    None,
                    exc,
                    attempt,
                    None,
                    max_retries=self._max_retries,
                    idempotent=idempotent,
                    rng=self._rng,
                )
                kind = type(exc).__name__
                if wait is None:
                    if outcome_unknown(method, None, exc, idempotent=idempotent):
                        raise OutcomeUnknownError(
                            f"{kind} after the request was sent: it may or may not have been applied; "
                            "resolve it by reading before re-sending",
                            request=self._request_info(method, endpoint, params, body),
                        ) from exc
                    raise TransportError(
                        f"{kind} after {attempt + 1} attempt(s): {exc}", method=method, endpoint=endpoint
                    ) from exc
                log.info("%s %s: %s, retry %d in %.2fs", method, endpoint, kind, attempt + 1, wait)
                self._sleep(wait)
                attempt += 1
                continue
            status = resp.status_code
            log.debug("%s %s -> %d (%.3fs)", method, endpoint, status, time.perf_counter() - started)
            if status == 401 and auth and not refreshed:
                # The token may have expired between our check and PortOne's: fetch once, retry once.
                refreshed = True
                log.info("%s %s: 401, refreshing the token and retrying once", method, endpoint)
                self._tokens.get(stale=token)
                continue
            if status == 429 or status >= 500:
                retry_after = parse_retry_after(resp.headers.get("Retry-After"))
                wait = retry_decision(
                    method,
                    status,
                    None,
                    attempt,
                    retry_after,
                    max_retries=self._max_retries,
                    idempotent=idempotent,
                    rng=self._rng,
                )
                if wait is not None:
                    log.info("%s %s: HTTP %d, retry %d in %.2fs", method, endpoint, status, attempt + 1, wait)
                    self._sleep(wait)
                    attempt += 1
                    continue
                if outcome_unknown(method, status, None, idempotent=idempotent):
                    try:
                        self.decode(resp, method, endpoint)
                    except PortOneHTTPError as answer:
                        raise OutcomeUnknownError(
                            f"HTTP {status} to a write: PortOne may have applied it before failing "
                            f"(code {answer.code}: {answer.message}); resolve it by reading before "
                            "re-sending",
                            request=self._request_info(method, endpoint, params, body),
                        ) from answer
            return resp

    def decode(self, resp: httpx.Response, method: str, endpoint: str) -> Any:
        retry_after = parse_retry_after(resp.headers.get("Retry-After")) if resp.status_code == 429 else None
        return decode_envelope(
            resp.status_code, resp.content, method=method, endpoint=endpoint, retry_after=retry_after
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | Params | None = None,
        json: Any = None,
        endpoint: str | None = None,
    ) -> Any:
        """Call any endpoint and return the envelope's ``response``.

        Args:
            method: HTTP method.
            path: the path to call (ids already in it).
            params: query parameters; list values become repeated keys (``imp_uid[]=a&imp_uid[]=b``).
            json: JSON body.
            endpoint: path template used in errors (defaults to ``path``).

        Raises:
            BusinessError, BadRequestError, UnauthorizedError, NotFoundError, RateLimitError,
            ServerError, MalformedResponseError, TransportError, OutcomeUnknownError.
        """
        method = method.upper()
        where = endpoint or path
        resp = self.send(method, path, norm_params(params), json, where)
        return self.decode(resp, method, where)
