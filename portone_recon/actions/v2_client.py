"""Fix-ups through PortOne V2, and the router that sends each customer's fix-ups to the API holding its key.

:class:`V2ActionsClient` gives apply's executor the same reads and writes it uses on V1, spoken in V2, so
every guard of the fix-up gate (the plan record, fresh re-checks, caps, the journal, resolving an unknown
outcome by reading) applies unchanged:

- rebook = ``POST /payments/{paymentId}/schedule`` with the plan's deterministic ``merchant_uid`` as the
  payment id: a re-run is refused with ``PAYMENT_SCHEDULE_ALREADY_EXISTS`` and finds what it booked.
- retry = ``POST /payments/{paymentId}/billing-key`` on the failed schedule's payment id, with an
  ``Idempotency-Key`` derived from that id and the failed attempt (a re-send within PortOne's 3 hours
  returns the stored answer); a decline (``PG_PROVIDER``) is read back as the FAILED payment it left.
  Whether PortOne charges a FAILED payment id again is not documented: when it refuses, the retry is
  charged under the next retry id (``<id>-r1``, ``<id>-r2``, ...), which a re-run finds by reading.
- unschedule = ``DELETE /payment-schedules`` with ONE schedule id per call (the call is all-or-nothing).
- reverify / every read = ``GET /payments/{paymentId}`` (V2 has no GET by attempt id).

V2 objects are turned into the V1 records the executor reads (same mapping as the sync). The V2 ids the
plan does not carry (a customer's billing keys, a schedule's id) come from the store, as the sync wrote
them; a schedule booked during this apply is remembered.

:class:`RoutingClient` dispatches each call by customer (``billing_keys.source_api``), schedule or payment
(``source_api`` of the row) to the V1 or the V2 client.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from portone_recon.actions.executor import ClientLike
from portone_recon.actions.requests import build_request
from portone_recon.api.models import BillingKey, CancelRecord, Payment, Schedule
from portone_recon.api.v2 import PortOneV2Client
from portone_recon.api.v2.records import (
    minor_exponent,
    read_billing_key,
    read_cancellations,
    read_payment,
    read_schedule,
)
from portone_recon.api.v2.requests import (
    V2Request,
    billing_key_payment_request,
    get_payment_request,
    revoke_schedule_request,
    schedule_request,
)
from portone_recon.config import Settings
from portone_recon.errors import BadRequestError, BusinessError, MalformedResponseError, NotFoundError
from portone_recon.store import Store

#: How far around now V2 listings look for a customer's payments or a schedule without a known id.
SEARCH_SPAN = timedelta(days=400)
#: How many retry ids a payment id may have (``<id>-r1`` ... ``<id>-r10``).
MAX_RETRY_IDS = 10
#: Refusals of a charge that, for a payment id a re-read still shows FAILED, mean "this id is not
#: charged again" (whether PortOne re-charges a FAILED id is not documented).
NOT_RECHARGEABLE = frozenset({"ALREADY_PAID", "MAX_TRANSACTION_COUNT_REACHED"})


def retry_id(merchant_uid: str, n: int) -> str:
    """The payment id of the ``n``-th retry of ``merchant_uid`` under a new id (0: the id itself)."""
    return merchant_uid if n == 0 else f"{merchant_uid}-r{n}"


def _amount(whole: int | None, exact: Decimal | None) -> int | Decimal:
    if whole is not None:
        return whole
    return exact if exact is not None else 0


def to_payment(data: Mapping[str, Any]) -> Payment:
    """A V2 ``Payment`` as the V1 :class:`Payment` record (raises when it cannot be read)."""
    rec, why = read_payment(data)
    if rec is None:
        raise MalformedResponseError(why or "unreadable", method="GET", endpoint="/payments/{paymentId}")
    history = tuple(
        CancelRecord(
            pg_tid=c["pg_tid"],
            amount=_amount(c["amount"], c["amount_exact"]),
            cancelled_at=c["cancelled_at"],
            reason=c["reason"],
            cancellation_id=c["cancellation_id"],
            receipt_url=c["receipt_url"],
        )
        for c in read_cancellations(dict(data), rec["currency"])
    )
    fields = {
        k: rec[k] for k in Payment.__dataclass_fields__ if k in rec and k not in ("amount", "cancel_amount")
    }
    return Payment(
        **fields,
        amount=_amount(rec["amount"], rec["amount_exact"]),
        cancel_amount=_amount(rec["cancel_amount"], rec["cancel_amount_exact"]),
        cancel_history=history,
        raw=dict(data),
    )


def to_schedule(data: Mapping[str, Any], imp_uid: str | None, fail_reason: str | None) -> Schedule:
    rec, why = read_schedule(data)
    if rec is None:
        raise MalformedResponseError(why or "unreadable", method="GET", endpoint="/payment-schedules")
    return Schedule(
        merchant_uid=rec["merchant_uid"],
        customer_uid=rec["customer_uid"] or "",
        schedule_status=rec["schedule_status"],
        payment_status=rec["payment_status"],
        schedule_at=rec["schedule_at"],
        executed_at=rec["executed_at"],
        revoked_at=rec["revoked_at"],
        amount=_amount(rec["amount"], rec["amount_exact"]),
        currency=rec["currency"],
        imp_uid=imp_uid if rec["schedule_status"] == "executed" else None,
        name=rec["name"],
        fail_reason=fail_reason if rec["payment_status"] == "failed" else None,
        custom_data=rec["custom_data"],
        buyer_name=rec["buyer_name"],
        buyer_email=rec["buyer_email"],
        buyer_tel=rec["buyer_tel"],
        raw=dict(data),
    )


def _minor(amount: Any, currency: str) -> int:
    return int(Decimal(str(amount)).scaleb(minor_exponent(currency)))


class V2ActionsClient:
    """The executor's client interface (:class:`~portone_recon.actions.executor.ClientLike`) over V2."""

    def __init__(self, client: PortOneV2Client, store: Store, *, now: datetime | None = None) -> None:
        self.client = client
        self._now = now
        keys = store.query(
            "SELECT customer_uid, billing_key FROM v2_billing_keys WHERE customer_uid IS NOT NULL "
            "ORDER BY (status = 'ISSUED'), issued_at"
        )
        self._keys: dict[str, list[str]] = {}
        for cu, key in zip(keys["customer_uid"], keys["billing_key"], strict=True):
            self._keys.setdefault(str(cu), []).append(str(key))  # newest issued last
        ids = store.query("SELECT merchant_uid, schedule_id FROM schedules WHERE schedule_id IS NOT NULL")
        self._schedule_ids = dict(zip(ids["merchant_uid"], ids["schedule_id"], strict=True))
        pays = store.query(
            "SELECT imp_uid, merchant_uid FROM payments WHERE source_api = 'v2' "
            "ORDER BY coalesce(status_changed_at, started_at) NULLS FIRST, imp_uid"
        )
        self._mu_of = dict(zip(pays["imp_uid"], pays["merchant_uid"], strict=True))
        #: the latest stored attempt of each payment id (what a retry's preview names)
        self._attempt_of = {str(mu): str(imp) for imp, mu in self._mu_of.items()}
        sched = store.query(
            "SELECT merchant_uid, customer_uid, name, amount, currency FROM schedules WHERE source_api = 'v2'"
        )
        self._stored_schedules = {str(r["merchant_uid"]): r for r in sched.to_dict("records")}

    def __repr__(self) -> str:
        return f"V2ActionsClient({self.client!r})"

    def close(self) -> None:
        self.client.close()

    def now(self) -> datetime:
        return self._now or datetime.now(tz=UTC)

    def _key(self, customer_uid: str) -> str:
        keys = self._keys.get(customer_uid)
        if not keys:
            raise NotFoundError(
                http_status=404, code=None, message=f"no V2 billing key known for customer {customer_uid!r}",
                method="GET", endpoint="/billing-keys/{billingKey}", error_type="BILLING_KEY_NOT_FOUND",
            )  # fmt: skip
        return keys[-1]

    # -- reads -----------------------------------------------------------------------------------

    def _payment_or_none(self, merchant_uid: str) -> Payment | None:
        try:
            return to_payment(self.client.get_payment(merchant_uid))
        except NotFoundError:
            return None

    def fetch_payment(self, imp_uid: str) -> Payment:
        mu = self._mu_of.get(imp_uid)
        if mu is not None:
            p = self._payment_or_none(mu)
            if p is not None and p.imp_uid == imp_uid:
                return p
        now = self.now()
        for data in self.client.find_by_transaction(imp_uid, now - SEARCH_SPAN, now):
            return to_payment(data)
        raise NotFoundError(
            http_status=404, code=None, message=f"no payment with transactionId {imp_uid!r}",
            method="GET", endpoint="/payments", error_type="PAYMENT_NOT_FOUND",
        )  # fmt: skip

    def iter_payments_by_merchant_uid(self, merchant_uid: str) -> Iterator[Payment]:
        """The payment's current attempt (V2 shows one payment per id; earlier attempts are in the store),
        then those of its retry ids (:func:`retry_id`) while each one before has FAILED."""
        yield from self._retry_chain(merchant_uid)

    def _retry_chain(self, merchant_uid: str) -> list[Payment]:
        """The payments of ``merchant_uid`` and its retry ids, read in order until one is absent or did
        not fail (a retry id is charged only after the one before it failed)."""
        out: list[Payment] = []
        for n in range(MAX_RETRY_IDS + 1):
            p = self._payment_or_none(retry_id(merchant_uid, n))
            if p is None:
                break
            out.append(p)
            if p.status != "failed":
                break
        return out

    def iter_billing_key_payments(self, customer_uid: str) -> Iterator[Payment]:
        now = self.now()
        for key in self._keys.get(customer_uid, []):
            search = {"textSearch": [{"field": "BILLING_KEY", "value": key}]}
            for data in self.client.payments(
                now - SEARCH_SPAN, now, timestamp_type="CREATED_AT", extra_filter=search
            ):
                yield to_payment(data)

    def fetch_billing_key(self, customer_uid: str) -> BillingKey:
        key = self._key(customer_uid)
        rec, why = read_billing_key(self.client.get_billing_key(key))
        if rec is None:
            raise MalformedResponseError(
                why or "unreadable", method="GET", endpoint="/billing-keys/{billingKey}"
            )
        if rec["deleted"]:  # as V1 answers for a deleted key
            raise NotFoundError(
                http_status=404, code=None, message=f"billing key of {customer_uid!r} is deleted",
                method="GET", endpoint="/billing-keys/{billingKey}", error_type="BILLING_KEY_NOT_FOUND",
            )  # fmt: skip
        return BillingKey(
            customer_uid=customer_uid, pg_provider=rec["pg_provider"], pg_id=rec["pg_id"],
            card_name=rec["card_name"], card_code=None, card_number=rec["card_number"], card_type=None,
            customer_name=rec["customer_name"], customer_email=rec["customer_email"],
            customer_tel=rec["customer_tel"], inserted=rec["inserted"], updated=rec["inserted"],
            sandbox=False, raw={"billingKey": key},
        )  # fmt: skip

    def _schedule_id(self, merchant_uid: str) -> str:
        sid = self._schedule_ids.get(merchant_uid)
        if sid is not None:
            return str(sid)
        now = self.now()
        for data in self.client.schedules(now - SEARCH_SPAN, now + SEARCH_SPAN):
            if data.get("paymentId") == merchant_uid and isinstance(data.get("id"), str):
                self._schedule_ids[merchant_uid] = data["id"]
                return str(data["id"])
        raise NotFoundError(
            http_status=404, code=None, message=f"no schedule for payment {merchant_uid!r}",
            method="GET", endpoint="/payment-schedules", error_type="PAYMENT_SCHEDULE_NOT_FOUND",
        )  # fmt: skip

    def _schedule(self, data: Mapping[str, Any]) -> Schedule:
        mu = str(data.get("paymentId") or "")
        p = self._payment_or_none(mu) if data.get("status") in ("SUCCEEDED", "FAILED", "PENDING") else None
        return to_schedule(data, p.imp_uid if p else None, p.fail_reason if p else None)

    def fetch_schedule(self, merchant_uid: str) -> Schedule:
        return self._schedule(self.client.get_schedule(self._schedule_id(merchant_uid)))

    def iter_customer_schedules(
        self, customer_uid: str, since: datetime, until: datetime, *, status: str | None = None
    ) -> Iterator[Schedule]:
        for key in self._keys.get(customer_uid, []):
            for data in self.client.schedules(since, until, billing_key=key):
                if isinstance(data.get("id"), str) and isinstance(data.get("paymentId"), str):
                    self._schedule_ids[data["paymentId"]] = data["id"]
                s = self._schedule(data)
                if status is None or s.schedule_status == status:
                    yield s

    # -- writes ----------------------------------------------------------------------------------

    def create_schedules(self, customer_uid: str, schedules: Sequence[Mapping[str, Any]]) -> list[Schedule]:
        """One ``POST /payments/{paymentId}/schedule`` per entry, the entry's merchant_uid as payment id."""
        out = []
        for entry, request in zip(schedules, self.schedule_requests(customer_uid, schedules), strict=True):
            mu = str(entry["merchant_uid"])
            made = self.client.send(request)
            sid = (made.get("schedule") or {}).get("id")
            if isinstance(sid, str):
                self._schedule_ids[mu] = sid
            out.append(self.fetch_schedule(mu))
        return out

    def unschedule(
        self, *, customer_uid: str | None = None, merchant_uids: Sequence[str] | None = None
    ) -> list[Schedule]:
        """Revoke each schedule by its own call (never by billing key: that would revoke them all)."""
        mus = [merchant_uids] if isinstance(merchant_uids, str) else list(merchant_uids or [])
        if not mus:
            raise ValueError("unschedule through V2 needs schedule merchant_uids (never a whole billing key)")
        out = []
        for mu in mus:
            self.client.revoke_schedule(self._schedule_id(mu))  # sends revoke_schedule_request(...)
            out.append(self.fetch_schedule(mu))
        return out

    def retry_schedule(self, merchant_uid: str) -> Payment:
        """Charge a failed schedule's payment again, idempotently, and read the result back.

        The last id of the payment's retry chain (the payment id itself at first) is charged again; if
        PortOne refuses to charge a FAILED id again (whether it does is not documented: ``ALREADY_PAID``
        or ``MAX_TRANSACTION_COUNT_REACHED`` while a re-read still shows it FAILED), the next retry id is
        charged instead. Each id can be paid once, a paid one in the chain is returned without charging,
        and a re-run reads the chain again, so nothing is ever charged twice.
        """
        s = self.fetch_schedule(merchant_uid)
        chain = self._retry_chain(merchant_uid)
        for p in chain:
            if p.status != "failed" and p.paid_at is not None:
                return p  # already charged (by an earlier run or by PortOne): nothing to send
        n = max(len(chain) - 1, 0)
        while True:
            pid = retry_id(merchant_uid, n)
            before = chain[n] if n < len(chain) else None
            request = self.retry_request(
                pid,
                customer_uid=s.customer_uid,
                name=s.name,
                amount=s.amount,
                currency=s.currency,
                attempt=before.imp_uid if before is not None else None,
            )
            try:
                self.client.send(request)
            except (BusinessError, BadRequestError) as exc:
                if exc.error_type == "PG_PROVIDER":
                    break  # declined: read back as the FAILED payment it left
                if exc.error_type in NOT_RECHARGEABLE and before is not None and n < MAX_RETRY_IDS:
                    again = self._payment_or_none(pid)
                    if again is not None and again.status == "failed":
                        n += 1  # this id is not charged again: the next retry id is
                        continue
                raise
            break
        after = self._payment_or_none(retry_id(merchant_uid, n))
        if after is None:
            raise NotFoundError(
                http_status=404, code=None, message=f"payment {merchant_uid!r} not found after the retry",
                method="GET", endpoint="/payments/{paymentId}", error_type="PAYMENT_NOT_FOUND",
            )  # fmt: skip
        return after

    # -- the requests the writes send, built once: sent above, shown by a preview ----------------

    def schedule_requests(self, customer_uid: str, schedules: Sequence[Mapping[str, Any]]) -> list[V2Request]:
        """One ``POST /payments/{paymentId}/schedule`` per V1-form schedule entry (its merchant_uid as
        the payment id, the customer's newest issued V2 key)."""
        key = self._key(customer_uid)
        out = []
        for entry in schedules:
            mu = str(entry["merchant_uid"])
            currency = str(entry.get("currency") or "KRW")
            out.append(
                schedule_request(
                    mu,
                    store_id=self.client.settings.store_id,
                    billing_key=key,
                    order_name=str(entry.get("name") or mu),
                    amount=_minor(entry["amount"], currency),
                    currency=currency,
                    time_to_pay=datetime.fromtimestamp(int(entry["schedule_at"]), UTC),
                    customer_id=customer_uid,
                    notice_urls=[str(entry["notice_url"])] if entry.get("notice_url") else None,
                )
            )
        return out

    def retry_request(
        self,
        merchant_uid: str,
        *,
        customer_uid: str,
        name: str | None,
        amount: Any,
        currency: str,
        attempt: str | None,
    ) -> V2Request:
        """The charge of a failed schedule's payment id again, keyed by that id and its failed attempt
        (a re-send within PortOne's 3 hours returns the stored answer)."""
        return billing_key_payment_request(
            merchant_uid,
            store_id=self.client.settings.store_id,
            billing_key=self._key(customer_uid),
            order_name=name or merchant_uid,
            amount=_minor(amount, currency),
            currency=currency,
            customer_id=customer_uid,
            idempotency_key=f"portone-recon-retry-{merchant_uid}-{attempt or 'none'}",
        )

    def wire_requests(self, kind: str, target: Mapping[str, Any]) -> list[V2Request]:
        """The V2 requests an action of ``kind`` with ``target`` sends, from what the store holds (no
        network): a retry names the latest stored attempt and the stored schedule; a revocation the
        stored schedule id (a schedule not synced yet is looked up when sent)."""
        request = build_request(kind, target)
        store_id = self.client.settings.store_id
        if kind == "rebook":
            body = request["json"]
            return self.schedule_requests(str(body["customer_uid"]), body["schedules"])
        if kind == "unschedule":
            return [
                revoke_schedule_request(
                    str(self._schedule_ids.get(mu) or f"(schedule of {mu}, looked up when sent)"),
                    store_id=store_id,
                )
                for mu in request["json"]["merchant_uid"]
            ]
        if kind == "retry":
            mu = str(target["schedule_merchant_uid"])
            row = self._stored_schedules.get(mu) or {}
            pid = mu
            for n in range(1, MAX_RETRY_IDS + 1):  # the chain as the store holds it
                if retry_id(mu, n) not in self._attempt_of:
                    break
                pid = retry_id(mu, n)
            return [
                self.retry_request(
                    pid,
                    customer_uid=str(row.get("customer_uid") or target.get("customer_uid") or ""),
                    name=row.get("name"),
                    amount=row.get("amount") if row.get("amount") is not None else target.get("amount"),
                    currency=str(row.get("currency") or target.get("currency") or "KRW"),
                    attempt=self._attempt_of.get(pid),
                )
            ]
        if kind == "reverify":
            imp = target.get("imp_uid")
            known = self._mu_of.get(str(imp)) if imp else None
            payment_id = known or target.get("merchant_uid")
            if payment_id:
                return [get_payment_request(str(payment_id), store_id=store_id)]
        return []


class RoutingClient:
    """Sends each call to the client of the API that holds the customer's billing key.

    The holder is the ``source_api`` the sync stored: of the customer's ``billing_keys`` row, of the
    schedule (by merchant_uid) or of the payment (by imp_uid). Unknown ids go to ``default``.
    """

    def __init__(self, store: Store, v1: ClientLike | None, v2: ClientLike | None) -> None:
        if v1 is None and v2 is None:
            raise ValueError("RoutingClient needs a V1 or a V2 client")
        self.v1 = v1
        self.v2 = v2
        self.default = "v1" if v1 is not None else "v2"

        def table(sql: str) -> dict[str, str]:
            df = store.query(sql)
            return {str(k): str(v) for k, v in zip(df.iloc[:, 0], df.iloc[:, 1], strict=True)}

        self._by_customer = table("SELECT customer_uid, source_api FROM billing_keys")
        self._by_schedule = table("SELECT merchant_uid, source_api FROM schedules")
        self._by_payment = table("SELECT imp_uid, source_api FROM payments")
        self._by_order = table("SELECT merchant_uid, any_value(source_api) FROM payments GROUP BY ALL")

    def __repr__(self) -> str:
        return f"RoutingClient(v1={self.v1!r}, v2={self.v2!r})"

    def close(self) -> None:
        """Close both clients."""
        for client in (self.v1, self.v2):
            close = getattr(client, "close", None)
            if callable(close):
                close()

    def _pick(self, api: str | None) -> ClientLike:
        chosen = self.v2 if (api or self.default) == "v2" else self.v1
        fallback = self.v1 if chosen is self.v2 else self.v2
        out = chosen or fallback
        assert out is not None
        return out

    def api_for_customer(self, customer_uid: str) -> str:
        """``v1`` or ``v2``: the API holding this customer's billing key."""
        return self._by_customer.get(customer_uid, self.default)

    def _unschedule_api(self, customer_uid: str | None, merchant_uids: Sequence[str] | None) -> str | None:
        mus = [merchant_uids] if isinstance(merchant_uids, str) else list(merchant_uids or [])
        api = self._by_schedule.get(mus[0]) if mus else None
        if api is None and customer_uid:
            api = self.api_for_customer(customer_uid)
        return api

    def _action_client(self, kind: str, target: Mapping[str, Any]) -> ClientLike:
        """The client an action's request goes to: the same rules as the calls below."""
        request = build_request(kind, target)
        if kind == "rebook":
            return self._pick(self.api_for_customer(str(request["json"]["customer_uid"])))
        if kind == "retry":
            return self._pick(self._by_schedule.get(str(target["schedule_merchant_uid"])))
        if kind == "unschedule":
            body = request["json"]
            return self._pick(self._unschedule_api(body.get("customer_uid"), body["merchant_uid"]))
        imp = target.get("imp_uid")
        if imp:
            return self._pick(self._by_payment.get(str(imp)))
        mu = str(target.get("merchant_uid") or "")
        return self._pick(self._by_order.get(mu) or self._by_schedule.get(mu))

    def wire_requests(self, kind: str, target: Mapping[str, Any]) -> list[V2Request] | None:
        """The V2 requests an action sends when its customer is on V2; None when it goes through V1
        (its request is then sent as built)."""
        client = self._action_client(kind, target)
        if isinstance(client, V2ActionsClient):
            return client.wire_requests(kind, target)
        return None

    def fetch_payment(self, imp_uid: str) -> Payment:
        return self._pick(self._by_payment.get(imp_uid)).fetch_payment(imp_uid)

    def iter_payments_by_merchant_uid(self, merchant_uid: str) -> Iterator[Payment]:
        api = self._by_order.get(merchant_uid) or self._by_schedule.get(merchant_uid)
        return self._pick(api).iter_payments_by_merchant_uid(merchant_uid)

    def iter_billing_key_payments(self, customer_uid: str) -> Iterator[Payment]:
        return self._pick(self.api_for_customer(customer_uid)).iter_billing_key_payments(customer_uid)

    def fetch_billing_key(self, customer_uid: str) -> BillingKey:
        return self._pick(self.api_for_customer(customer_uid)).fetch_billing_key(customer_uid)

    def fetch_schedule(self, merchant_uid: str) -> Schedule:
        return self._pick(self._by_schedule.get(merchant_uid)).fetch_schedule(merchant_uid)

    def iter_customer_schedules(
        self, customer_uid: str, since: datetime, until: datetime, *, status: str | None = None
    ) -> Iterator[Schedule]:
        client = self._pick(self.api_for_customer(customer_uid))
        return client.iter_customer_schedules(customer_uid, since, until, status=status)

    def create_schedules(self, customer_uid: str, schedules: Sequence[Mapping[str, Any]]) -> list[Schedule]:
        api = self.api_for_customer(customer_uid)
        made = self._pick(api).create_schedules(customer_uid, schedules)
        for s in made:
            self._by_schedule[s.merchant_uid] = api
        return made

    def unschedule(
        self, *, customer_uid: str | None = None, merchant_uids: Sequence[str] | None = None
    ) -> list[Schedule]:
        api = self._unschedule_api(customer_uid, merchant_uids)
        return self._pick(api).unschedule(customer_uid=customer_uid, merchant_uids=merchant_uids)

    def retry_schedule(self, merchant_uid: str) -> Payment:
        return self._pick(self._by_schedule.get(merchant_uid)).retry_schedule(merchant_uid)


def fixup_client(settings: Settings, store: Store) -> ClientLike | None:
    """The client fix-ups are sent with: with a V2 secret, a :class:`RoutingClient` (over the V1 client
    too when V1 credentials are set); with V1 credentials only, the V1 client; None without any."""
    from portone_recon.api.client import PortOneClient

    if settings.has_v2:
        v1 = PortOneClient(settings) if settings.has_v1 else None
        return RoutingClient(store, v1, V2ActionsClient(PortOneV2Client(settings), store))
    if settings.has_v1:
        return PortOneClient(settings)
    return None
