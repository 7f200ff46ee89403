"""``PortOneClient``: a synchronous PortOne V1 client safe to call from a Jupyter cell.

The endpoint methods live here; the concerns under them have their own modules: the token cache
(:mod:`~portone_recon.api.token`), the request/retry loop and call counting
(:mod:`~portone_recon.api.transport`), concurrent paging and window refusals
(:mod:`~portone_recon.api.paging`), the windows PortOne accepts (:mod:`~portone_recon.api.windows`).
No asyncio: concurrency uses a small thread pool.

Time ranges are half-open ``[since, until)``; records come window by window from ``since`` to ``until``,
and within a window in PortOne's ``sorting`` order. Typed records (``Payment``, ``Schedule``,
``BillingKey``) are parsed strictly; bulk readers that check and store the raw JSON themselves (the sync)
use the ``*_pages`` / ``*_items`` methods. The secret and the token never appear in a repr, log or error.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from portone_recon.api._pool import background
from portone_recon.api.counting import CallCounter
from portone_recon.api.envelope import RawPage
from portone_recon.api.models import (
    PAYMENT_STATUSES,
    SCHEDULE_STATUSES,
    SORTINGS,
    BillingKey,
    MultiResult,
    Payment,
    Schedule,
)
from portone_recon.api.paging import Pager
from portone_recon.api.transport import Params, Transport, norm_params
from portone_recon.api.windows import (
    PAYMENT_WINDOW_SECONDS,
    Instant,
    payment_windows,
    schedule_windows,
    unix_floor,
)
from portone_recon.config import Secret, Settings
from portone_recon.errors import ConfigError, MalformedResponseError, NotFoundError

__all__ = ["LISTING_STATUSES", "MAX_IDS_PER_CALL", "MAX_LIMIT", "PortOneClient"]

R = TypeVar("R")

#: ``GET /payments/status/{payment_status}`` accepts these.
LISTING_STATUSES = ("all", *PAYMENT_STATUSES)
#: Multi-lookups take at most this many ids per call.
MAX_IDS_PER_CALL = 100
#: Largest ``limit`` of a paged listing.
MAX_LIMIT = 1000


def _seg(value: str, what: str) -> str:
    """A URL path segment (percent-encoded; '/' included), refusing empty ids."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty string, got {value!r}")
    return quote(value, safe="")


def _positive_amount(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{what} must be a positive integer amount in won, got {value!r}")
    if value <= 0:
        raise ValueError(f"{what} must be > 0, got {value}")
    return value


def _unix_arg(value: datetime | int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, datetime | int):
        raise ValueError(f"{what} must be an aware datetime or unix seconds, got {value!r}")
    try:
        return unix_floor(value)
    except ValueError as exc:
        raise ValueError(f"{what}: {exc}") from None


def _unique(ids: Iterable[str], what: str) -> list[str]:
    seen: dict[str, None] = {}
    for i in ids:
        if not isinstance(i, str) or not i:
            raise ValueError(f"{what} must hold non-empty strings, got {i!r}")
        seen.setdefault(i, None)
    return list(seen)


def _as_object(item: Any, *, path: str, endpoint: str, method: str = "GET") -> dict[str, Any]:
    """An answer's object as received; MalformedResponseError when it is not an object."""
    if not isinstance(item, dict):
        raise MalformedResponseError(
            f"expected an object, got {type(item).__name__}", method=method, endpoint=endpoint, field=path
        )
    return item


def _chunks(ids: Sequence[str], size: int) -> list[list[str]]:
    return [list(ids[i : i + size]) for i in range(0, len(ids), size)]


class PortOneClient:
    """Synchronous PortOne V1 client: typed records, token cache, retries, windows and paging.

    Example:
        >>> client = PortOneClient.from_env()  # doctest: +SKIP
        >>> client.fetch_payment("imp_123456789012").status  # doctest: +SKIP
        'paid'

    Args:
        settings: base settings (``Settings()`` defaults when None; use :meth:`from_env` for the env).
        imp_key / imp_secret / api_base / concurrency / max_retries: override ``settings``.
        transport: an httpx transport (tests, the in-process sandbox).
        sleep: called with seconds to wait between retries (inject a fake in tests).
        rng: jitter source for backoff.
        clock: monotonic clock used for the token cache.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        imp_key: str | None = None,
        imp_secret: str | Secret | None = None,
        api_base: str | None = None,
        transport: httpx.BaseTransport | None = None,
        concurrency: int | None = None,
        max_retries: int | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        base = settings if settings is not None else Settings()
        changes: dict[str, Any] = {}
        if imp_key is not None:
            changes["imp_key"] = imp_key
        if imp_secret is not None:
            changes["imp_secret"] = imp_secret
        if api_base is not None:
            changes["api_base"] = api_base.rstrip("/")
        if concurrency is not None:
            changes["concurrency"] = concurrency
        if max_retries is not None:
            changes["max_retries"] = max_retries
        self.settings = base.with_(**changes) if changes else base
        try:
            self.settings.require_credentials()
        except ConfigError as exc:
            raise ConfigError(
                f"{exc} (PortOneClient.from_env() reads the environment; or pass imp_key=/imp_secret=)"
            ) from None
        self._transport = Transport(self.settings, transport=transport, sleep=sleep, rng=rng, clock=clock)
        self._pager = Pager(self._transport, self.settings.concurrency)

    @classmethod
    def from_env(cls, **kwargs: Any) -> PortOneClient:
        """A client from ``Settings.from_env()``; keyword arguments are passed to the constructor.

        Raises:
            ConfigError: ``PORTONE_IMP_KEY`` / ``PORTONE_IMP_SECRET`` missing (named), or a bad setting.
        """
        settings = Settings.from_env()
        settings.require_credentials()
        return cls(settings, **kwargs)

    # -- lifecycle -------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the HTTP connections and the page-fetching threads."""
        self._transport.closed = True
        self._pager.close()
        self._transport.close()

    def __enter__(self) -> PortOneClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"PortOneClient(api_base={self.settings.api_base!r}, imp_key={self.settings.imp_key!r}, "
            f"api_calls={self.api_calls})"
        )

    @property
    def api_calls(self) -> int:
        """HTTP requests sent so far (getToken and retries included)."""
        return self._transport.api_calls

    def reset_api_calls(self) -> None:
        """Set :attr:`api_calls` back to 0."""
        self._transport.reset_api_calls()

    def counting_calls(self) -> AbstractContextManager[CallCounter]:
        """Count the HTTP requests made for the code inside (in this thread and the pool it uses).

        Unlike a difference of :attr:`api_calls`, this stays exact when other threads use the client at
        the same time.
        """
        return self._transport.counting_calls()

    def background(self) -> AbstractContextManager[None]:
        """Requests the code inside sends through the pool yield to other threads' requests.

        For work fetched ahead of its turn (a sync's schedule listing and billing-key lookups beside its
        payment listing): it uses the pool's idle slots and never delays the foreground listing. The
        pool's ``concurrency`` bounds both together.
        """
        return background()

    def server_now(self) -> datetime:
        """PortOne's clock now (``getToken``'s ``now``): one token request, whose token is kept.

        Used to bound a sync by PortOne's time rather than this machine's (the sandbox's clock is
        not the wall clock).
        """
        return self._transport.server_now()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | Params | None = None,
        json: Any = None,
        endpoint: str | None = None,
    ) -> Any:
        """Call any endpoint and return the envelope's ``response`` (arguments, retries and errors as in
        :meth:`portone_recon.api.transport.Transport.request`)."""
        return self._transport.request(method, path, params=params, json=json, endpoint=endpoint)

    @staticmethod
    def _check_limit(limit: int) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
            raise ValueError(f"limit must be an integer from 1 to {MAX_LIMIT}, got {limit!r}")

    @staticmethod
    def _check_sorting(sorting: str | None) -> None:
        if sorting is not None and sorting not in SORTINGS:
            raise ValueError(f"sorting must be one of {list(SORTINGS)}, got {sorting!r}")

    @staticmethod
    def _check_schedule_status(status: str | None) -> None:
        if status is not None and status not in SCHEDULE_STATUSES:
            raise ValueError(f"schedule status must be one of {list(SCHEDULE_STATUSES)}, got {status!r}")

    @staticmethod
    def _payment_status_path(merchant_uid: str, status: str | None) -> tuple[str, str]:
        if status is None:
            return f"/{_seg(merchant_uid, 'merchant_uid')}", ""
        if status not in PAYMENT_STATUSES:
            raise ValueError(f"payment status must be one of {list(PAYMENT_STATUSES)}, got {status!r}")
        return f"/{_seg(merchant_uid, 'merchant_uid')}/{status}", "/{payment_status}"

    # -- payments ----------------------------------------------------------------------------------

    def fetch_payment(self, imp_uid: str, *, include_sandbox: bool = False) -> Payment:
        """``GET /payments/{imp_uid}``: one payment (test-channel payments only with ``include_sandbox``)."""
        endpoint = "/payments/{imp_uid}"
        params = {"include_sandbox": True} if include_sandbox else None
        response = self.request(
            "GET", f"/payments/{_seg(imp_uid, 'imp_uid')}", params=params, endpoint=endpoint
        )
        return Payment.from_json(response, endpoint=endpoint)

    def fetch_payments(
        self, *, imp_uids: Sequence[str] = (), merchant_uids: Sequence[str] = ()
    ) -> MultiResult[Payment]:
        """``GET /payments?imp_uid[]=..&merchant_uid[]=..``, 100 ids per call, chunks fetched concurrently.

        Returns every payment found (each ``imp_uid`` once, in request order) and, in ``missing``, the
        requested ids PortOne did not return (HTTP 207 partial, or 404 none).
        """
        imp = _unique(imp_uids, "imp_uids")
        mer = _unique(merchant_uids, "merchant_uids")
        jobs = [("imp_uid[]", c) for c in _chunks(imp, MAX_IDS_PER_CALL)]
        jobs += [("merchant_uid[]", c) for c in _chunks(mer, MAX_IDS_PER_CALL)]
        endpoint = "/payments"

        def one(job: tuple[str, list[str]]) -> list[Payment]:
            return self._lookup_many(endpoint, job[0], job[1], Payment.from_json)

        found: dict[str, Payment] = {}
        for batch in self._pager.ordered_map(one, jobs):
            for p in batch:
                found.setdefault(p.imp_uid, p)
        got_imp = set(found)
        got_mer = {p.merchant_uid for p in found.values()}
        missing = [i for i in imp if i not in got_imp] + [m for m in mer if m not in got_mer]
        return MultiResult(found=list(found.values()), missing=missing)

    def find_payment(
        self, merchant_uid: str, status: str | None = None, *, sorting: str | None = None
    ) -> Payment:
        """``GET /payments/find/{merchant_uid}[/{status}]``: the first payment of an order by ``sorting``.

        Several attempts may share a merchant_uid; use :meth:`iter_payments_by_merchant_uid` for all.
        """
        self._check_sorting(sorting)
        tail, tmpl = self._payment_status_path(merchant_uid, status)
        endpoint = "/payments/find/{merchant_uid}" + tmpl
        response = self.request(
            "GET", f"/payments/find{tail}", params={"sorting": sorting}, endpoint=endpoint
        )
        return Payment.from_json(response, endpoint=endpoint)

    def iter_payments_by_merchant_uid(
        self,
        merchant_uid: str,
        status: str | None = None,
        *,
        sorting: str | None = None,
        limit: int = MAX_LIMIT,
    ) -> Iterator[Payment]:
        """``GET /payments/findAll/{merchant_uid}[/{status}]``: every attempt of an order (paged)."""
        self._check_sorting(sorting)
        self._check_limit(limit)
        tail, tmpl = self._payment_status_path(merchant_uid, status)
        endpoint = "/payments/findAll/{merchant_uid}" + tmpl
        base = norm_params({"limit": limit, "sorting": sorting})
        pages = self._pager.pages(f"/payments/findAll{tail}", endpoint, base, concurrent=True)
        return self._pager.items(pages, Payment.from_json)

    def iter_payment_pages(
        self,
        status: str,
        since: Instant,
        until: Instant,
        *,
        limit: int = MAX_LIMIT,
        sorting: str | None = None,
    ) -> Iterator[RawPage]:
        """``GET /payments/status/{status}`` pages over ``[since, until)``, in windows of at most 90 days.

        PortOne filters each payment by the timestamp of its *current* status (ready: started_at,
        paid: paid_at, failed: failed_at, cancelled: cancelled_at). Windows are walked from ``since``
        to ``until``; inside a window, pages 2.. are fetched ``concurrency`` at a time and yielded in
        order. Items are not parsed (see :meth:`iter_payments_by_status` for records).
        """
        if status not in LISTING_STATUSES:
            raise ValueError(f"status must be one of {list(LISTING_STATUSES)}, got {status!r}")
        self._check_limit(limit)
        self._check_sorting(sorting)
        bases = [
            norm_params({"from": lo, "to": hi, "limit": limit, "sorting": sorting})
            for lo, hi in payment_windows(since, until)
        ]
        path = f"/payments/status/{status}"
        return self._pager.window_pages(path, "/payments/status/{payment_status}", bases, concurrent=True)

    def fetch_payment_page(
        self,
        status: str,
        window: tuple[int, int],
        page: int,
        *,
        limit: int = MAX_LIMIT,
        sorting: str | None = None,
    ) -> RawPage:
        """One page of ``GET /payments/status/{status}`` for one window (``from``, ``to``: unix seconds,
        both inclusive, as :func:`~portone_recon.api.windows.payment_windows` gives them).

        For readers that decide page by page whether to go on (a ``-updated`` scan stops early).
        """
        if status not in LISTING_STATUSES:
            raise ValueError(f"status must be one of {list(LISTING_STATUSES)}, got {status!r}")
        self._check_limit(limit)
        self._check_sorting(sorting)
        lo, hi = window
        if not 0 <= hi - lo < PAYMENT_WINDOW_SECONDS:
            raise ValueError(f"window must span at most 90 days, got ({lo}, {hi})")
        base = norm_params({"from": lo, "to": hi, "limit": limit, "sorting": sorting})
        endpoint = "/payments/status/{payment_status}"
        result = self._pager.fetch_page(f"/payments/status/{status}", endpoint, base, page)
        self._pager.check_next(result, endpoint)
        return result

    def iter_payments_by_status(
        self,
        status: str,
        since: Instant,
        until: Instant,
        *,
        limit: int = MAX_LIMIT,
        sorting: str | None = None,
    ) -> Iterator[Payment]:
        """Payments in ``status`` (all/ready/paid/failed/cancelled) over ``[since, until)``, as records."""
        return self._pager.items(
            self.iter_payment_pages(status, since, until, limit=limit, sorting=sorting), Payment.from_json
        )

    def cancel_payment(
        self,
        *,
        imp_uid: str | None = None,
        merchant_uid: str | None = None,
        amount: int | None = None,
        full: bool = False,
        reason: str | None = None,
        checksum: int | None = None,
        enable_webhook: bool = False,
        **extra: Any,
    ) -> Payment:
        """``POST /payments/cancel``: refund ``amount`` won, or everything left when ``full=True``.

        Exactly one of ``imp_uid``/``merchant_uid`` and exactly one of ``amount``/``full`` must be given:
        an omitted amount means "cancel the full remaining amount" to PortOne, so it is never sent by
        accident. ``checksum`` is the refundable balance you believe remains (PortOne refuses the cancel
        when it differs). ``extra`` passes other documented fields (``tax_free``, ``vat_amount``, ...).

        Raises:
            ValueError: bad arguments (nothing sent).
            BusinessError: PortOne refused (e.g. code 1 "이미 전액취소된 주문입니다.").
            OutcomeUnknownError: no answer after sending; read the payment before trying again.
        """
        if (imp_uid is None) == (merchant_uid is None):
            raise ValueError("give exactly one of imp_uid= or merchant_uid=")
        if full and amount is not None:
            raise ValueError("give either amount= (partial) or full=True, not both")
        if not full and amount is None:
            raise ValueError(
                "give amount= (a positive number of won), or full=True to cancel everything left"
            )
        body: dict[str, Any] = {}
        if imp_uid is not None:
            body["imp_uid"] = imp_uid
        else:
            body["merchant_uid"] = merchant_uid
        if amount is not None:
            body["amount"] = _positive_amount(amount, "amount")
        if checksum is not None:
            if isinstance(checksum, bool) or not isinstance(checksum, int) or checksum < 0:
                raise ValueError(f"checksum must be an integer >= 0 (won), got {checksum!r}")
            body["checksum"] = checksum
        if reason is not None:
            body["reason"] = reason
        body["enable_webhook"] = bool(enable_webhook)
        body.update(extra)
        endpoint = "/payments/cancel"
        response = self.request("POST", endpoint, json=body)
        return Payment.from_json(response, endpoint=endpoint, method="POST")

    # -- billing keys --------------------------------------------------------------------------------

    def fetch_billing_key(self, customer_uid: str) -> BillingKey:
        """``GET /subscribe/customers/{customer_uid}``."""
        endpoint = "/subscribe/customers/{customer_uid}"
        response = self.request(
            "GET", f"/subscribe/customers/{_seg(customer_uid, 'customer_uid')}", endpoint=endpoint
        )
        return BillingKey.from_json(response, endpoint=endpoint)

    def _lookup_many(self, endpoint: str, key: str, ids: list[str], parse: Callable[..., R]) -> list[R]:
        """Multi-lookup of ``ids`` (``key`` is e.g. ``imp_uid[]``) in one call, more when PortOne says 404.

        Whether a 404 means "none of these exists" or "one of these does not" is not settled by any
        source: a 404 for several ids is split in halves and each half asked again, so the ids found
        are returned either way (k unknown ids among n cost about 2k log2(n) extra calls).
        """
        try:
            response = self.request("GET", endpoint, params=[(key, i) for i in ids], endpoint=endpoint)
        except NotFoundError:
            if len(ids) <= 1:
                return []
            half = len(ids) // 2
            return self._lookup_many(endpoint, key, ids[:half], parse) + self._lookup_many(
                endpoint, key, ids[half:], parse
            )
        if not isinstance(response, list):
            raise MalformedResponseError(
                f"expected an array, got {type(response).__name__}",
                method="GET",
                endpoint=endpoint,
                field="response",
            )
        return [parse(item, path=f"response[{i}]", endpoint=endpoint) for i, item in enumerate(response)]

    def _lookup_items(
        self, endpoint: str, key: str, field: str, ids: Sequence[str], what: str
    ) -> MultiResult[dict[str, Any]]:
        """Multi-lookup returning each object as received (not parsed), 100 ids per call, concurrent."""
        wanted = _unique(ids, what)

        def one(chunk: list[str]) -> list[dict[str, Any]]:
            return self._lookup_many(endpoint, key, chunk, _as_object)

        found: dict[str, dict[str, Any]] = {}
        odd: list[dict[str, Any]] = []
        for batch in self._pager.ordered_map(one, _chunks(wanted, MAX_IDS_PER_CALL)):
            for item in batch:
                value = item.get(field)
                if isinstance(value, str):
                    found.setdefault(value, item)
                else:
                    odd.append(item)  # no readable id: the caller's reader quarantines it
        return MultiResult(found=[*found.values(), *odd], missing=[i for i in wanted if i not in found])

    def fetch_payment_items(self, imp_uids: Sequence[str]) -> MultiResult[dict[str, Any]]:
        """``GET /payments?imp_uid[]=..`` (100 per call, concurrent): payments as received, unparsed.

        For bulk readers that store the raw JSON and check it themselves (the sync).
        """
        return self._lookup_items("/payments", "imp_uid[]", "imp_uid", imp_uids, "imp_uids")

    def fetch_billing_key_items(self, customer_uids: Sequence[str]) -> MultiResult[dict[str, Any]]:
        """``GET /subscribe/customers?customer_uid[]=..`` (100 per call): keys as received, unparsed.

        ``missing`` is what the lookup did not return; confirm a deletion with
        :meth:`fetch_billing_key_item` before acting on it.
        """
        return self._lookup_items(
            "/subscribe/customers", "customer_uid[]", "customer_uid", customer_uids, "customer_uids"
        )

    def probe_billing_keys(self, customer_uids: Sequence[str]) -> MultiResult[dict[str, Any]]:
        """One :meth:`fetch_billing_key_item` per key (concurrent): ``missing`` holds only keys PortOne
        answered 404 for on their own GET (deleted or never issued); any other error is raised."""
        ids = _unique(customer_uids, "customer_uids")

        def one(customer_uid: str) -> dict[str, Any] | None:
            try:
                return self.fetch_billing_key_item(customer_uid)
            except NotFoundError:
                return None

        found: list[dict[str, Any]] = []
        missing: list[str] = []
        for customer_uid, item in zip(ids, self._pager.ordered_map(one, ids), strict=True):
            if item is None:
                missing.append(customer_uid)
            else:
                found.append(item)
        return MultiResult(found=found, missing=missing)

    def fetch_billing_key_item(self, customer_uid: str) -> dict[str, Any]:
        """``GET /subscribe/customers/{customer_uid}``: the key as received (plain or super-billing-key).

        Raises:
            NotFoundError: PortOne has no such key (deleted or never issued), and only then.
            APIError: any other failure (nothing can be concluded about the key).
        """
        endpoint = "/subscribe/customers/{customer_uid}"
        response = self.request(
            "GET", f"/subscribe/customers/{_seg(customer_uid, 'customer_uid')}", endpoint=endpoint
        )
        return _as_object(response, path="response", endpoint=endpoint)

    def fetch_billing_keys(self, customer_uids: Sequence[str]) -> MultiResult[BillingKey]:
        """``GET /subscribe/customers?customer_uid[]=..``, 100 per call; ``missing`` from 207/404."""
        ids = _unique(customer_uids, "customer_uids")
        endpoint = "/subscribe/customers"

        def one(chunk: list[str]) -> list[BillingKey]:
            return self._lookup_many(endpoint, "customer_uid[]", chunk, BillingKey.from_json)

        found: dict[str, BillingKey] = {}
        for batch in self._pager.ordered_map(one, _chunks(ids, MAX_IDS_PER_CALL)):
            for key in batch:
                found.setdefault(key.customer_uid, key)
        return MultiResult(found=list(found.values()), missing=[c for c in ids if c not in found])

    def issue_billing_key(
        self,
        customer_uid: str,
        *,
        card_number: str,
        expiry: str,
        birth: str | None = None,
        pwd_2digit: str | None = None,
        pg: str | None = None,
        customer_name: str | None = None,
        customer_email: str | None = None,
        customer_tel: str | None = None,
        **extra: Any,
    ) -> BillingKey:
        """``POST /subscribe/customers/{customer_uid}``: issue (or replace) a billing key from card data.

        Card data is sent once and never kept in errors (``OutcomeUnknownError.request`` redacts it).
        """
        body: dict[str, Any] = {"card_number": card_number, "expiry": expiry}
        optional = {
            "birth": birth,
            "pwd_2digit": pwd_2digit,
            "pg": pg,
            "customer_name": customer_name,
            "customer_email": customer_email,
            "customer_tel": customer_tel,
        }
        body.update({k: v for k, v in optional.items() if v is not None})
        body.update(extra)
        endpoint = "/subscribe/customers/{customer_uid}"
        response = self.request(
            "POST", f"/subscribe/customers/{_seg(customer_uid, 'customer_uid')}", json=body, endpoint=endpoint
        )
        return BillingKey.from_json(response, endpoint=endpoint, method="POST")

    def delete_billing_key(self, customer_uid: str, *, reason: str | None = None) -> BillingKey:
        """``DELETE /subscribe/customers/{customer_uid}`` (irreversible; unschedule its schedules first)."""
        endpoint = "/subscribe/customers/{customer_uid}"
        response = self.request(
            "DELETE",
            f"/subscribe/customers/{_seg(customer_uid, 'customer_uid')}",
            params={"reason": reason},
            endpoint=endpoint,
        )
        return BillingKey.from_json(response, endpoint=endpoint, method="DELETE")

    def iter_billing_key_payments(self, customer_uid: str) -> Iterator[Payment]:
        """``GET /subscribe/customers/{customer_uid}/payments``: every payment made with the key (paged)."""
        endpoint = "/subscribe/customers/{customer_uid}/payments"
        path = f"/subscribe/customers/{_seg(customer_uid, 'customer_uid')}/payments"
        return self._pager.items(self._pager.pages(path, endpoint, (), concurrent=False), Payment.from_json)

    def _customer_schedules(
        self, path: str, endpoint: str, since: Instant, until: Instant, status: str | None
    ) -> Iterator[Schedule]:
        self._check_schedule_status(status)
        bases = [
            norm_params({"from": lo, "to": hi, "schedule-status": status})
            for lo, hi in schedule_windows(since, until)
        ]
        return self._pager.items(
            self._pager.window_pages(path, endpoint, bases, concurrent=False), Schedule.from_json
        )

    def iter_billing_key_schedules(
        self, customer_uid: str, since: Instant, until: Instant, *, status: str | None = None
    ) -> Iterator[Schedule]:
        """``GET /subscribe/customers/{customer_uid}/schedules`` over ``[since, until)`` (3-month windows)."""
        return self._customer_schedules(
            f"/subscribe/customers/{_seg(customer_uid, 'customer_uid')}/schedules",
            "/subscribe/customers/{customer_uid}/schedules",
            since,
            until,
            status,
        )

    def pay_again(
        self, *, customer_uid: str, merchant_uid: str, amount: int, name: str, **extra: Any
    ) -> Payment:
        """``POST /subscribe/payments/again``: charge a billing key now.

        ``code == 0`` is not success: check the returned payment's ``status == "paid"`` (a declined card
        comes back as ``status == "failed"`` with ``fail_reason``). On OutcomeUnknownError look the
        order up with :meth:`find_payment` before charging again.
        """
        body: dict[str, Any] = {
            "customer_uid": customer_uid,
            "merchant_uid": merchant_uid,
            "amount": _positive_amount(amount, "amount"),
            "name": name,
        }
        body.update(extra)
        endpoint = "/subscribe/payments/again"
        response = self.request("POST", endpoint, json=body)
        return Payment.from_json(response, endpoint=endpoint, method="POST")

    # -- schedules -------------------------------------------------------------------------------------

    def create_schedules(
        self, customer_uid: str, schedules: Sequence[Mapping[str, Any]], **extra: Any
    ) -> list[Schedule]:
        """``POST /subscribe/payments/schedule``: book charges on a billing key.

        Each entry needs ``merchant_uid`` (unique), ``schedule_at`` (aware datetime or unix seconds) and
        ``amount`` (won, > 0); ``name``, ``currency``, ``notice_url``, ``custom_data``, buyer_* ... pass
        through. ``extra`` adds top-level fields (``customer_id``, ``channel_key``, ...).
        Returns the created schedules in request order.
        """
        _seg(customer_uid, "customer_uid")
        if not schedules:
            raise ValueError("schedules is empty: nothing to book")
        entries: list[dict[str, Any]] = []
        for i, entry in enumerate(schedules):
            item = dict(entry)
            for key in ("merchant_uid", "schedule_at", "amount"):
                if key not in item:
                    raise ValueError(f"schedules[{i}]: missing {key!r}")
            _seg(item["merchant_uid"], f"schedules[{i}].merchant_uid")
            item["schedule_at"] = _unix_arg(item["schedule_at"], f"schedules[{i}].schedule_at")
            item["amount"] = _positive_amount(item["amount"], f"schedules[{i}].amount")
            entries.append(item)
        body: dict[str, Any] = {"customer_uid": customer_uid, **extra, "schedules": entries}
        endpoint = "/subscribe/payments/schedule"
        response = self.request("POST", endpoint, json=body)
        return self._schedule_list(response, endpoint, "POST")

    @staticmethod
    def _schedule_list(response: Any, endpoint: str, method: str) -> list[Schedule]:
        if not isinstance(response, list):
            raise MalformedResponseError(
                f"expected an array, got {type(response).__name__}",
                method=method,
                endpoint=endpoint,
                field="response",
            )
        return [
            Schedule.from_json(item, path=f"response[{i}]", endpoint=endpoint, method=method)
            for i, item in enumerate(response)
        ]

    def unschedule(
        self, *, customer_uid: str | None = None, merchant_uids: Sequence[str] | None = None
    ) -> list[Schedule]:
        """``POST /subscribe/payments/unschedule``: revoke pending schedules; returns those revoked.

        With only ``customer_uid``, PortOne revokes **every** pending schedule of that key.
        """
        if customer_uid is None and merchant_uids is None:
            raise ValueError("give customer_uid= and/or merchant_uids=")
        body: dict[str, Any] = {}
        if customer_uid is not None:
            _seg(customer_uid, "customer_uid")
            body["customer_uid"] = customer_uid
        if merchant_uids is not None:
            if isinstance(merchant_uids, str):
                raise ValueError("merchant_uids must be a list of merchant_uid strings, not one string")
            ids = _unique(merchant_uids, "merchant_uids")
            if not ids:
                raise ValueError(
                    "merchant_uids is empty (with a customer_uid that would revoke all its schedules)"
                )
            body["merchant_uid"] = ids
        endpoint = "/subscribe/payments/unschedule"
        response = self.request("POST", endpoint, json=body)
        return self._schedule_list(response, endpoint, "POST")

    def fetch_schedule(self, merchant_uid: str) -> Schedule:
        """``GET /subscribe/payments/schedule/{merchant_uid}``."""
        endpoint = "/subscribe/payments/schedule/{merchant_uid}"
        response = self.request(
            "GET", f"/subscribe/payments/schedule/{_seg(merchant_uid, 'merchant_uid')}", endpoint=endpoint
        )
        return Schedule.from_json(response, endpoint=endpoint)

    def fetch_schedule_items(self, merchant_uids: Sequence[str]) -> MultiResult[dict[str, Any]]:
        """``GET /subscribe/payments/schedule/{merchant_uid}`` for each id (concurrent), as received.

        ``missing`` holds the ids PortOne answered 404 for; any other error is raised. For readers that
        check and store the raw JSON themselves (the sync's re-fetch of past schedules).
        """
        ids = _unique(merchant_uids, "merchant_uids")
        endpoint = "/subscribe/payments/schedule/{merchant_uid}"

        def one(merchant_uid: str) -> dict[str, Any] | None:
            try:
                response = self.request(
                    "GET",
                    f"/subscribe/payments/schedule/{_seg(merchant_uid, 'merchant_uid')}",
                    endpoint=endpoint,
                )
            except NotFoundError:
                return None
            return _as_object(response, path="response", endpoint=endpoint)

        found: list[dict[str, Any]] = []
        missing: list[str] = []
        for merchant_uid, item in zip(ids, self._pager.ordered_map(one, ids), strict=True):
            if item is None:
                missing.append(merchant_uid)
            else:
                found.append(item)
        return MultiResult(found=found, missing=missing)

    def iter_schedule_pages(
        self,
        since: Instant,
        until: Instant,
        *,
        status: str | None = None,
        limit: int = MAX_LIMIT,
        sorting: str | None = None,
    ) -> Iterator[RawPage]:
        """``GET /subscribe/payments/schedule`` pages with ``schedule_at`` in ``[since, until)``.

        Windows of at most 3 calendar months (KST), walked from ``since`` to ``until``; pages of a
        window fetched ``concurrency`` at a time, yielded in order; items not parsed.
        """
        self._check_schedule_status(status)
        self._check_limit(limit)
        endpoint = "/subscribe/payments/schedule"
        bases = [
            norm_params(
                {
                    "schedule_from": lo,
                    "schedule_to": hi,
                    "schedule_status": status,
                    "limit": limit,
                    "sorting": sorting,
                }
            )
            for lo, hi in schedule_windows(since, until)
        ]
        return self._pager.window_pages(endpoint, endpoint, bases, concurrent=True)

    def iter_schedules(
        self,
        since: Instant,
        until: Instant,
        *,
        status: str | None = None,
        limit: int = MAX_LIMIT,
        sorting: str | None = None,
    ) -> Iterator[Schedule]:
        """Schedules with ``schedule_at`` in ``[since, until)`` (status: scheduled/executed/revoked)."""
        pages = self.iter_schedule_pages(since, until, status=status, limit=limit, sorting=sorting)
        return self._pager.items(pages, Schedule.from_json)

    def iter_customer_schedule_pages(
        self, customer_uid: str, since: Instant, until: Instant, *, status: str | None = None
    ) -> Iterator[RawPage]:
        """``GET /subscribe/payments/schedule/customers/{customer_uid}`` pages over ``[since, until)``."""
        self._check_schedule_status(status)
        bases = [
            norm_params({"from": lo, "to": hi, "schedule-status": status})
            for lo, hi in schedule_windows(since, until)
        ]
        return self._pager.window_pages(
            f"/subscribe/payments/schedule/customers/{_seg(customer_uid, 'customer_uid')}",
            "/subscribe/payments/schedule/customers/{customer_uid}",
            bases,
            concurrent=False,
        )

    def iter_customer_schedules(
        self, customer_uid: str, since: Instant, until: Instant, *, status: str | None = None
    ) -> Iterator[Schedule]:
        """``GET /subscribe/payments/schedule/customers/{customer_uid}`` over ``[since, until)``.

        Sends the spec's parameter names ``from``, ``to``, ``schedule-status`` and ``page``.
        """
        return self._customer_schedules(
            f"/subscribe/payments/schedule/customers/{_seg(customer_uid, 'customer_uid')}",
            "/subscribe/payments/schedule/customers/{customer_uid}",
            since,
            until,
            status,
        )

    def update_schedule(self, merchant_uid: str, schedule_at: datetime | int) -> Schedule:
        """``PUT /subscribe/payments/schedule/{merchant_uid}``: move a still-scheduled entry."""
        endpoint = "/subscribe/payments/schedule/{merchant_uid}"
        body = {"schedule_at": _unix_arg(schedule_at, "schedule_at")}
        response = self.request(
            "PUT",
            f"/subscribe/payments/schedule/{_seg(merchant_uid, 'merchant_uid')}",
            json=body,
            endpoint=endpoint,
        )
        return Schedule.from_json(response, endpoint=endpoint, method="PUT")

    def reschedule(self, merchant_uid: str, schedule_at: datetime | int) -> Schedule:
        """``POST /subscribe/payments/schedule/{merchant_uid}/reschedule``: re-arm a failed/revoked entry."""
        endpoint = "/subscribe/payments/schedule/{merchant_uid}/reschedule"
        body = {"schedule_at": _unix_arg(schedule_at, "schedule_at")}
        response = self.request(
            "POST",
            f"/subscribe/payments/schedule/{_seg(merchant_uid, 'merchant_uid')}/reschedule",
            json=body,
            endpoint=endpoint,
        )
        return Schedule.from_json(response, endpoint=endpoint, method="POST")

    def retry_schedule(self, merchant_uid: str) -> Payment:
        """``POST /subscribe/payments/schedule/{merchant_uid}/retry``: charge a failed/revoked entry now.

        Returns the payment attempt: check ``status == "paid"``.
        """
        endpoint = "/subscribe/payments/schedule/{merchant_uid}/retry"
        response = self.request(
            "POST",
            f"/subscribe/payments/schedule/{_seg(merchant_uid, 'merchant_uid')}/retry",
            endpoint=endpoint,
        )
        return Payment.from_json(response, endpoint=endpoint, method="POST")
