"""``PortOneV2Client``: the V2 endpoints the toolkit needs, synchronous and safe from a Jupyter cell.

Reads return raw JSON objects (checked with :mod:`~portone_recon.api.v2.records`), or for the bulk sync
the listings' pages as received (``*_pages``: :class:`~portone_recon.api.v2.paging.V2Page`, never decoded
in Python on PortOne's layout); writes return PortOne's answer. ``storeId`` is sent when the setting
is given, else PortOne uses the credential's store. Listings always send an explicit ``from``/``until``
(the schedule listing hides everything outside the last 90 days by default).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import datetime
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from portone_recon.api._pool import background
from portone_recon.api.counting import CallCounter, counting_calls
from portone_recon.api.v2.paging import PAGE_SIZE, BodyFor, V2Page, V2Pager, rfc3339
from portone_recon.api.v2.requests import (
    V2Request,
    billing_key_payment_request,
    get_payment_request,
    revoke_schedule_request,
    schedule_request,
)
from portone_recon.api.v2.transport import V2Transport
from portone_recon.config import Secret, Settings
from portone_recon.errors import ConflictError

#: Conflict types that mean "the revocation you asked for is already the state".
_ALREADY_REVOKED = frozenset({"PAYMENT_SCHEDULE_ALREADY_REVOKED"})


def _seg(value: str, what: str) -> str:
    """A percent-escaped path segment ('/' included), refusing empty ids."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty string, got {value!r}")
    return quote(value, safe="")


class PortOneV2Client:
    """A PortOne V2 client (``Authorization: PortOne <secret>``).

    Args:
        settings: ``api_secret``, ``store_id``, ``v2_api_base``, timeouts, retries, concurrency.
        transport: an httpx transport (tests, the in-process sandbox).
        sleep / rng: retry waits and their jitter.
        page_size: page size of the listings.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        api_secret: str | None = None,
        store_id: str | None = None,
        v2_api_base: str | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        page_size: int = PAGE_SIZE,
    ) -> None:
        base = settings or Settings()
        changes: dict[str, Any] = {}
        if api_secret is not None:
            changes["api_secret"] = Secret(api_secret)
        if store_id is not None:
            changes["store_id"] = store_id
        if v2_api_base is not None:
            changes["v2_api_base"] = v2_api_base.rstrip("/")
        self.settings = base.with_(**changes) if changes else base
        self._transport = V2Transport(self.settings, transport=transport, sleep=sleep, rng=rng)
        self._pager = V2Pager(self._transport, size=page_size)

    @classmethod
    def from_env(cls, **kwargs: Any) -> PortOneV2Client:
        return cls(Settings.from_env(), **kwargs)

    def __repr__(self) -> str:
        return (
            f"PortOneV2Client(v2_api_base={self.settings.v2_api_base!r}, store_id={self.settings.store_id!r})"
        )

    def __enter__(self) -> PortOneV2Client:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._pager.close()
        self._transport.close()

    @property
    def api_calls(self) -> int:
        """HTTP requests sent so far."""
        return self._transport.api_calls

    def counting_calls(self) -> AbstractContextManager[CallCounter]:
        """Count the HTTP requests made for the code inside (in this thread and the listings' pool),
        exact while other threads use the client."""
        return counting_calls()

    def background(self) -> AbstractContextManager[None]:
        """Listing requests the code inside sends yield to other threads' (work fetched ahead of its
        turn); ``concurrency`` bounds both together."""
        return background()

    @property
    def windows_split(self) -> int:
        """Listing windows split because their pages lay beyond PortOne's 60,000 reach."""
        return self._pager.windows_split

    def _store(self) -> dict[str, str]:
        return {"storeId": self.settings.store_id} if self.settings.store_id else {}

    def _store_params(self) -> list[tuple[str, str]]:
        return [("storeId", self.settings.store_id)] if self.settings.store_id else []

    # -- reads -----------------------------------------------------------------------------------

    def get_payment(self, payment_id: str) -> dict[str, Any]:
        """``GET /payments/{paymentId}``: one payment (raw JSON)."""
        return self.send(get_payment_request(payment_id, store_id=self.settings.store_id))

    def _payments_body(
        self, timestamp_type: str, version: str | None, extra_filter: dict[str, Any] | None
    ) -> BodyFor:
        def body(lo: datetime, hi: datetime, number: int, size: int) -> dict[str, Any]:
            flt: dict[str, Any] = {
                **self._store(),
                "timestampType": timestamp_type,
                "from": rfc3339(lo),
                "until": rfc3339(hi),
                "sortBy": "STATUS_CHANGED_AT" if timestamp_type == "STATUS_CHANGED_AT" else "REQUESTED_AT",
                "sortOrder": "ASC",
            }
            if version is not None:
                flt["version"] = version
            flt.update(extra_filter or {})
            return {"page": {"number": number, "size": size}, "filter": flt}

        return body

    def payments(
        self,
        since: datetime,
        until: datetime,
        *,
        timestamp_type: str = "STATUS_CHANGED_AT",
        version: str | None = None,
        extra_filter: dict[str, Any] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """``GET /payments``: raw payments whose ``timestamp_type`` time lies in ``[since, until]``."""
        body = self._payments_body(timestamp_type, version, extra_filter)
        return self._pager.items("/payments", body, since, until)

    def payment_pages(
        self, since: datetime, until: datetime, *, version: str | None = None
    ) -> Iterator[V2Page]:
        """The pages of ``GET /payments`` by ``STATUS_CHANGED_AT`` over ``[since, until]``, as received."""
        body = self._payments_body("STATUS_CHANGED_AT", version, None)
        return self._pager.pages("/payments", body, since, until)

    def find_by_transaction(
        self, transaction_id: str, since: datetime, until: datetime
    ) -> list[dict[str, Any]]:
        """Payments whose attempt id is ``transaction_id`` (a V1 imp_uid), by ``textSearch TX_ID``."""
        _seg(transaction_id, "transaction_id")
        extra = {"textSearch": [{"field": "TX_ID", "value": transaction_id}]}
        return list(self.payments(since, until, timestamp_type="CREATED_AT", extra_filter=extra))

    def _schedules_body(self, billing_key: str | None) -> BodyFor:
        def body(lo: datetime, hi: datetime, number: int, size: int) -> dict[str, Any]:
            flt: dict[str, Any] = {**self._store(), "from": rfc3339(lo), "until": rfc3339(hi)}
            if billing_key is not None:
                flt["billingKey"] = billing_key
            return {
                "page": {"number": number, "size": size},
                "sort": {"by": "TIME_TO_PAY", "order": "ASC"},
                "filter": flt,
            }

        return body

    def schedules(
        self, since: datetime, until: datetime, *, billing_key: str | None = None
    ) -> Iterator[dict[str, Any]]:
        """``GET /payment-schedules``: raw schedules whose ``timeToPay`` lies in ``[since, until]``."""
        return self._pager.items("/payment-schedules", self._schedules_body(billing_key), since, until)

    def schedule_pages(self, since: datetime, until: datetime) -> Iterator[V2Page]:
        """The pages of ``GET /payment-schedules`` over ``[since, until]`` (``timeToPay``), as received."""
        return self._pager.pages("/payment-schedules", self._schedules_body(None), since, until)

    def get_schedule(self, schedule_id: str) -> dict[str, Any]:
        """``GET /payment-schedules/{paymentScheduleId}``."""
        path = f"/payment-schedules/{_seg(schedule_id, 'schedule_id')}"
        return self._transport.request(
            "GET", path, params=self._store_params(), endpoint="/payment-schedules/{paymentScheduleId}"
        )

    def _billing_keys_body(self, version: str | None) -> BodyFor:
        def body(lo: datetime, hi: datetime, number: int, size: int) -> dict[str, Any]:
            out: dict[str, Any] = {
                "page": {"number": number, "size": size},
                "sort": {"by": "STATUS_TIMESTAMP", "order": "ASC"},
                "filter": {
                    **self._store(),
                    "timeRangeField": "STATUS_TIMESTAMP",
                    "from": rfc3339(lo),
                    "until": rfc3339(hi),
                },
            }
            if version is not None:
                out["filter"]["version"] = version
            return out

        return body

    def billing_keys(
        self, since: datetime, until: datetime, *, version: str | None = None
    ) -> Iterator[dict[str, Any]]:
        """``GET /billing-keys``: keys issued or deleted in ``[since, until]`` (``STATUS_TIMESTAMP``)."""
        return self._pager.items("/billing-keys", self._billing_keys_body(version), since, until)

    def billing_key_pages(
        self, since: datetime, until: datetime, *, version: str | None = None
    ) -> Iterator[V2Page]:
        """The pages of ``GET /billing-keys`` by ``STATUS_TIMESTAMP`` over ``[since, until]``, as received."""
        return self._pager.pages("/billing-keys", self._billing_keys_body(version), since, until)

    def get_billing_key(self, billing_key: str) -> dict[str, Any]:
        """``GET /billing-keys/{billingKey}``."""
        path = f"/billing-keys/{_seg(billing_key, 'billing_key')}"
        return self._transport.request(
            "GET", path, params=self._store_params(), endpoint="/billing-keys/{billingKey}"
        )

    # -- writes ----------------------------------------------------------------------------------

    def send(self, request: V2Request) -> dict[str, Any]:
        """Send a built :class:`~portone_recon.api.v2.requests.V2Request`; the 200 body."""
        return self._transport.request(
            request.method,
            request.path,
            params=request.params,
            body_query=request.body_query,
            json=request.json,
            endpoint=request.endpoint,
            idempotency_key=request.idempotency_key,
        )

    def pay_with_billing_key(
        self,
        payment_id: str,
        *,
        billing_key: str,
        order_name: str,
        amount: int,
        currency: str = "KRW",
        customer_id: str | None = None,
        notice_urls: list[str] | None = None,
        idempotency_key: str,
    ) -> dict[str, Any]:
        """``POST /payments/{paymentId}/billing-key`` with an ``Idempotency-Key`` (safe to re-send).

        A declined card is a ``BusinessError`` (``PG_PROVIDER``); an already paid id a ``ConflictError``.
        """
        return self.send(
            billing_key_payment_request(
                payment_id,
                store_id=self.settings.store_id,
                billing_key=billing_key,
                order_name=order_name,
                amount=amount,
                currency=currency,
                customer_id=customer_id,
                notice_urls=notice_urls,
                idempotency_key=idempotency_key,
            )
        )

    def create_schedule(
        self,
        payment_id: str,
        *,
        billing_key: str,
        order_name: str,
        amount: int,
        time_to_pay: datetime,
        currency: str = "KRW",
        customer_id: str | None = None,
        notice_urls: list[str] | None = None,
    ) -> dict[str, Any]:
        """``POST /payments/{paymentId}/schedule``; the store id goes inside ``payment`` (as the SDK does).

        A second booking of the same ``payment_id`` is refused (``PAYMENT_SCHEDULE_ALREADY_EXISTS``),
        which is what makes a deterministic id safe to re-send.
        """
        return self.send(
            schedule_request(
                payment_id,
                store_id=self.settings.store_id,
                billing_key=billing_key,
                order_name=order_name,
                amount=amount,
                time_to_pay=time_to_pay,
                currency=currency,
                customer_id=customer_id,
                notice_urls=notice_urls,
            )
        )

    def revoke_schedule(self, schedule_id: str) -> bool:
        """``DELETE /payment-schedules`` for ONE schedule id (the call is all-or-nothing).

        Returns True when this call revoked it, False when it was already revoked
        (``PAYMENT_SCHEDULE_ALREADY_REVOKED``: the asked-for state holds). Other refusals raise.
        """
        try:
            data = self.send(revoke_schedule_request(schedule_id, store_id=self.settings.store_id))
        except ConflictError as exc:
            if exc.error_type in _ALREADY_REVOKED:
                return False
            raise
        ids = data.get("revokedScheduleIds")
        return isinstance(ids, list) and schedule_id in ids
