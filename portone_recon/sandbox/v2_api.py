"""The V2 HTTP surface (``api.portone.io``) over the same :class:`SandboxWorld` the V1 surface serves.

One world, two views: a V2 merchant's customers hold V2 billing keys (``billing-key-<customer_uid>``),
a migrating merchant's ``v1_customers`` keep their V1 keys; every payment is visible through V2 (V1 ones
with ``version: "V1"`` and ``transactionId`` = the V1 ``imp_uid``). Payment ``id`` = ``merchant_uid``,
``customer.id`` = ``customer_uid``, schedule id = ``schedule-<merchant_uid>``. Times are RFC 3339 UTC,
amounts int64 minor units, errors ``{type, message}`` with 4xx/5xx, only 200 is success, list bodies come
in the ``requestBody`` query parameter (or a JSON body), ``storeId`` defaults to the credential's store,
and each payment carries the ``webhooks[]`` log of the world's deliveries for it.

Readings of UNCONFIRMED behaviours this surface plays (each switchable, so tests try both ways):

* ``decline_as_error``: a declined billing-key payment answers 502 ``PG_PROVIDER`` (True, default) or
  200 with the payment left FAILED (False).
* ``v1_schedules_visible``: V1 customers' schedules appear in ``GET /payment-schedules`` (default False).
* ``until_inclusive``: a listing's ``until`` bound is inclusive (default True).
* ``failed_id_refusal``: charging a payment id whose payment FAILED again is done (None, default) or
  refused with this error type (``MAX_TRANSACTION_COUNT_REACHED``: 400, ``ALREADY_PAID``: 409).
* ``partial_cancel_moves_status_time``: a second (third, ...) partial cancel of a PARTIAL_CANCELLED
  payment moves its ``statusChangedAt`` to that cancel (True), or it stays at the first partial cancel,
  the PAID -> PARTIAL_CANCELLED transition (False, default).
* ``ready_before_time_to_pay``: a booked schedule's payment exists as READY before ``timeToPay`` (listed
  by ``GET /payments``, read by ``GET /payments/{paymentId}``, with an attempt id of its own that its
  execution does not reuse: see :mod:`~portone_recon.sandbox.v2_ready`); default False: it exists once
  executed.
* ``issuance_listed``: billing-key issuance transactions (V1 ``customer_uid_usage = issue``) are listed by
  ``GET /payments`` as zero-amount PAID payments carrying the key (default False: issuing a key creates no
  payment in V2, and whether V2 lists a V1 one is not documented).
* ``v1_keys``: how V1 billing keys show through V2: ``"customer_uid"`` (default: listed and read, the key
  id is the V1 customer_uid), ``"own_id"`` (listed and read under an id of their own) or ``"hidden"``
  (``GET /billing-keys`` lists only V2 keys; a V1 key is not found).
* ``v1_payment_id``: the V2 ``id`` of a V1 payment: ``"merchant_uid"`` (default) or ``"imp_uid"``
  (``transactionId`` is the imp_uid either way).
* ``max_window_days``: listings refuse a ``from``/``until`` range longer than this many days with 400
  ``INVALID_REQUEST`` (default None: no limit; PortOne documents none).

Listings serve each object's rendered JSON from a cache (as the V1 surface serves its stored JSON), so a
benchmark measures the client, not this fake server: an entry is used only while what it was rendered
from is unchanged (the world object's JSON, its webhook log, whether a schedule exists for it, and the
view's settings and renderers); anything else renders it again. :meth:`SandboxV2.warm` fills it.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal
from urllib.parse import unquote

import httpx
import orjson

from portone_recon.sandbox.http_api import Reply
from portone_recon.sandbox.v2_ready import has_ready_payment, ready_hits, render_ready
from portone_recon.sandbox.world import Json, SandboxBadRequest, SandboxRefusal, SandboxWorld

_JSON = (("content-type", "application/json"),)
MAX_PAGE_REACH = 60_000
_ZERO_DECIMAL = frozenset({"KRW", "JPY", "VND"})
_SCHEDULE_PREFIX = "schedule-"
_KEY_PREFIX = "billing-key-"
_V1_KEY_PREFIX = "v1-billing-key-"


class V2Error(Exception):
    """A V2 error answer: HTTP status, ``type`` and ``message``."""

    def __init__(self, status: int, kind: str, message: str = "", **extra: Any) -> None:
        super().__init__(f"{status} {kind}: {message}")
        self.status = status
        self.kind = kind
        self.message = message
        self.extra = extra


def rfc3339(unix: int | None) -> str | None:
    """Unix seconds as RFC 3339 UTC (0/None = "not yet" = absent)."""
    if not unix:
        return None
    return datetime.fromtimestamp(unix, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_time(value: Any, name: str) -> int:
    if not isinstance(value, str):
        raise V2Error(400, "INVALID_REQUEST", f"{name} must be an RFC 3339 string")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise V2Error(400, "INVALID_REQUEST", f"{name} is not RFC 3339: {value!r}") from None
    if moment.tzinfo is None:
        raise V2Error(400, "INVALID_REQUEST", f"{name} has no offset: {value!r}")
    return int(moment.timestamp())


def minor(amount: Any, currency: str) -> int:
    """A V1 amount (major units) in int64 minor units."""
    exp = 0 if currency in _ZERO_DECIMAL else 2
    return int(Decimal(str(amount or 0)).scaleb(exp))


def major(value: int, currency: str) -> int | float:
    exp = 0 if currency in _ZERO_DECIMAL else 2
    if exp == 0:
        return value
    out = Decimal(value).scaleb(-exp)
    return int(out) if out == out.to_integral_value() else float(out)


class SandboxV2:
    """The V2 view of ``world``.

    Args:
        world: the shared world.
        api_secret: the V2 secret ``Authorization: PortOne <secret>`` must carry.
        store_id: the credential's store (other store ids are refused with 403).
        v1_customers: customers whose billing keys stay V1 (a migrating merchant); default none.
    """

    def __init__(
        self,
        world: SandboxWorld,
        *,
        api_secret: str = "sandbox_v2_secret",
        store_id: str = "store-sandbox",
        merchant_id: str = "merchant-sandbox",
        v1_customers: Iterable[str] = (),
    ) -> None:
        self.world = world
        self._secret = api_secret
        self.store_id = store_id
        self.merchant_id = merchant_id
        self.v1_customers = set(v1_customers)
        self.decline_as_error = True
        self.v1_schedules_visible = False
        self.until_inclusive = True
        self.partial_cancel_moves_status_time = False
        self.failed_id_refusal: str | None = None
        self.ready_before_time_to_pay = False
        self.issuance_listed = False
        self.v1_keys: Literal["customer_uid", "own_id", "hidden"] = "customer_uid"
        self.v1_payment_id: Literal["merchant_uid", "imp_uid"] = "merchant_uid"
        self.max_window_days: int | None = None
        self.requests: list[dict[str, Any]] = []
        self._idempotent: dict[str, Reply] = {}
        #: sorted hits of the last payment listing, keyed by its filter and the world's state (payments,
        #: webhooks and the clock: every change the world can make moves one of them)
        self._listing: tuple[Any, list[tuple[int, str, Json]]] | None = None
        self._hook_index: dict[str, list[int]] = {}
        self._hook_n = 0
        #: rendered JSON per (kind, id) with the fingerprint of what it was rendered from, valid for
        #: ``_rendered_for`` (the view's settings and renderers)
        self._rendered: dict[tuple[str, str], tuple[int, orjson.Fragment]] = {}
        self._rendered_for: tuple[Any, ...] | None = None
        #: the schedule listing's visible ids for one window of the world's index, and what they depend on
        self._schedule_listing: tuple[Any, tuple[Any, ...], list[str]] | None = None
        #: payments (billing-key issuance excepted) by status-change time or by request time, sorted by
        #: (time, imp_uid), and the world state they were read at
        self._payment_index: dict[bool, tuple[Any, list[int], list[tuple[int, str, Json]]]] = {}

    def __repr__(self) -> str:
        return f"SandboxV2(store_id={self.store_id!r}, v1_customers={len(self.v1_customers)})"

    # ------------------------------------------------------------------ identities
    def is_v2_customer(self, customer_uid: str | None) -> bool:
        return bool(customer_uid) and customer_uid not in self.v1_customers

    def billing_key_of(self, customer_uid: str) -> str:
        """The billing key V2 shows for a customer (a V1 key: see ``v1_keys``)."""
        if self.is_v2_customer(customer_uid):
            return f"{_KEY_PREFIX}{customer_uid}"
        return f"{_V1_KEY_PREFIX}{customer_uid}" if self.v1_keys == "own_id" else customer_uid

    def customer_of_key(self, billing_key: str) -> str:
        for prefix in (_KEY_PREFIX, _V1_KEY_PREFIX):
            if billing_key.startswith(prefix):
                return billing_key[len(prefix) :]
        return billing_key

    def key_visible(self, customer_uid: str) -> bool:
        """Whether V2 shows this customer's billing key at all (V1 keys: see ``v1_keys``)."""
        return self.is_v2_customer(customer_uid) or self.v1_keys != "hidden"

    # ------------------------------------------------------------------ rendering
    def _hooks_of(self, imp_uid: str) -> list[int]:
        """Outbox positions of ``imp_uid``'s webhooks (an index extended as the outbox grows)."""
        outbox = self.world.outbox
        while self._hook_n < len(outbox):
            key = outbox[self._hook_n].body.get("imp_uid")
            if isinstance(key, str):
                self._hook_index.setdefault(key, []).append(self._hook_n)
            self._hook_n += 1
        return self._hook_index.get(imp_uid, [])

    def _webhooks(self, p: Json, v2: bool) -> list[Json]:
        out = []
        for i in self._hooks_of(p["imp_uid"]):
            hook = self.world.outbox[i]
            body = hook.body
            # Lost (dropped) or unreachable: an unexpected error; answered non-2xx: not OK; otherwise
            # delivered (a world without a sink stands for a merchant that receives everything).
            if hook.dropped or hook.error is not None:
                status = "FAILED_UNEXPECTED_ERROR"
            elif hook.status_code is not None and not hook.delivered:
                status = "FAILED_NOT_OK_RESPONSE"
            else:
                status = "SUCCEEDED"
            entry: Json = {
                "id": f"webhook-{i}",
                "url": hook.url or "",
                "status": status,
                "currentExecutionCount": 1,
                "maxExecutionCount": 6,
                "triggeredAt": rfc3339(hook.at),
            }
            if v2:
                entry.update(
                    {
                        "url": hook.url or "",
                        "paymentStatus": str(body.get("status", "")).upper(),
                        "isAsync": False,
                    }
                )
            out.append(entry)
        return out

    def status_of(self, p: Json) -> str:
        status = p["status"]
        if status == "paid":
            return "PARTIAL_CANCELLED" if (p.get("cancel_amount") or 0) > 0 else "PAID"
        if status == "ready":
            return "VIRTUAL_ACCOUNT_ISSUED" if p.get("vbank_issued_at") else "READY"
        return str({"failed": "FAILED", "cancelled": "CANCELLED"}.get(status, str(status).upper()))

    def status_changed_at(self, p: Json) -> int:
        status = p["status"]
        if status == "paid" and (p.get("cancel_amount") or 0) > 0:
            return self.partial_cancel_status_time(p)
        axis = {"paid": "paid_at", "failed": "failed_at", "cancelled": "cancelled_at"}.get(
            status, "started_at"
        )
        return int(p.get(axis) or p.get("started_at") or 0)

    def render_payment(self, p: Json) -> Json:
        cu = p.get("customer_uid")
        v2 = self.is_v2_payment(p)
        currency = p.get("currency") or "KRW"
        status = self.status_of(p)
        total = minor(p["amount"], currency)
        cancelled = minor(p.get("cancel_amount") or 0, currency)
        changed = self.status_changed_at(p)
        out: Json = {
            "status": status,
            "id": p["merchant_uid"] if v2 or self.v1_payment_id == "merchant_uid" else p["imp_uid"],
            "transactionId": p["imp_uid"],
            "merchantId": self.merchant_id,
            "storeId": self.store_id,
            "version": "V2" if v2 else "V1",
            "channel": {
                "type": "TEST" if p.get("sandbox") else "LIVE",
                "pgProvider": str(p.get("pg_provider") or "NICEPAY").upper(),
                "pgMerchantId": p.get("pg_id") or "",
            },
            "method": {
                "type": "PaymentMethodCard",
                "card": {"number": p.get("card_number"), "name": p.get("card_name")},
            },
            "requestedAt": rfc3339(p.get("started_at")),
            "updatedAt": rfc3339(max(changed, int(p.get("started_at") or 0))),
            "statusChangedAt": rfc3339(changed),
            "orderName": p.get("name") or "",
            "amount": {
                "total": total,
                "taxFree": 0,
                "discount": 0,
                "paid": total if status in ("PAID", "PARTIAL_CANCELLED", "CANCELLED") else 0,
                "cancelled": cancelled,
                "cancelledTaxFree": 0,
            },
            "currency": currency,
            "customer": {k: v for k, v in {"id": cu, "email": p.get("buyer_email")}.items() if v},
            "origin": {"platformType": "API", "ipAddress": "127.0.0.1"},
        }
        if p.get("buyer_name"):
            out["customer"]["name"] = p["buyer_name"]
        if p.get("custom_data"):
            out["customData"] = p["custom_data"]
        if cu and p.get("customer_uid_usage") in ("payment", "payment.scheduled", "issue"):
            out["billingKey"] = self.billing_key_of(cu)
        if p.get("merchant_uid") in self.world.schedules:
            out["scheduleId"] = _SCHEDULE_PREFIX + p["merchant_uid"]
        hooks = self._webhooks(p, v2)
        if hooks:
            out["webhooks"] = hooks
        if status in ("PAID", "PARTIAL_CANCELLED", "CANCELLED"):
            out["pgTxId"] = p.get("pg_tid")
            out["paidAt"] = rfc3339(p.get("paid_at"))
        if status == "PAID":
            out["disputes"] = []
        if status == "FAILED":
            out["failedAt"] = rfc3339(p.get("failed_at"))
            out["failure"] = {"reason": p.get("fail_reason") or ""}
        if status in ("PARTIAL_CANCELLED", "CANCELLED"):
            out["cancelledAt"] = rfc3339(p.get("cancelled_at") or p.get("paid_at"))
            out["cancellations"] = [
                {
                    "status": "SUCCEEDED",
                    "id": str(c.get("cancellation_id") or f"{p['imp_uid']}-c{i}"),
                    "totalAmount": minor(c.get("amount"), currency),
                    "taxFreeAmount": 0,
                    "vatAmount": 0,
                    "reason": c.get("reason") or "",
                    "requestedAt": rfc3339(c.get("cancelled_at")),
                    "cancelledAt": rfc3339(c.get("cancelled_at")),
                }
                for i, c in enumerate(p.get("cancel_history") or [])
            ]
        return out

    def schedule_status_of(self, s: Json) -> str:
        status = {"scheduled": "SCHEDULED", "revoked": "REVOKED"}.get(s["schedule_status"])
        if status is None:
            status = {"paid": "SUCCEEDED", "failed": "FAILED"}.get(s.get("payment_status") or "", "PENDING")
        return status

    def render_schedule(self, s: Json) -> Json:
        status = self.schedule_status_of(s)
        currency = s.get("currency") or "KRW"
        out: Json = {
            "status": status,
            "id": _SCHEDULE_PREFIX + s["merchant_uid"],
            "merchantId": self.merchant_id,
            "storeId": self.store_id,
            "paymentId": s["merchant_uid"],
            "billingKey": self.billing_key_of(s["customer_uid"]),
            "orderName": s.get("name") or "",
            "isCulturalExpense": False,
            "isEscrow": False,
            "customer": {"id": s["customer_uid"]},
            "customData": s.get("custom_data") or "",
            "totalAmount": minor(s["amount"], currency),
            "currency": currency,
            "createdAt": rfc3339(s.get("created_at") or s["schedule_at"]),
            "timeToPay": rfc3339(s["schedule_at"]),
        }
        if status in ("SUCCEEDED", "FAILED", "PENDING"):
            out["startedAt"] = rfc3339(s.get("executed_at") or s["schedule_at"])
            out["completedAt"] = out["startedAt"]
        if status == "REVOKED":
            out["revokedAt"] = rfc3339(s.get("revoked_at"))
        return out

    def render_billing_key(self, k: Json, *, deleted: bool) -> Json:
        cu = k["customer_uid"]
        out: Json = {
            "status": "DELETED" if deleted else "ISSUED",
            "billingKey": self.billing_key_of(cu),
            "merchantId": self.merchant_id,
            "storeId": self.store_id,
            "methods": [
                {
                    "type": "BillingKeyPaymentMethodCard",
                    "card": {"name": k.get("card_name"), "number": k.get("card_number")},
                }
            ],
            "channels": [
                {
                    "type": "LIVE",
                    "pgProvider": str(k.get("pg_provider") or "").upper(),
                    "pgMerchantId": k.get("pg_id") or "",
                }
            ],
            "customer": {"id": cu},
            "issuedAt": rfc3339(k.get("inserted")),
        }
        if deleted:
            out["deletedAt"] = rfc3339(k.get("updated"))
        return out

    # ------------------------------------------------------------------ rendered JSON cache
    def _view(self) -> tuple[Any, ...]:
        """What every rendering depends on beside the object itself (a change empties the cache)."""
        renderers = tuple(
            getattr(f, "__func__", f)
            for f in (self.render_payment, self.render_schedule, self.render_billing_key)
        )
        switches = (self.v1_payment_id, self.v1_keys, self.partial_cancel_moves_status_time)
        return (tuple(sorted(self.v1_customers)), self.merchant_id, self.store_id, renderers, switches)

    def _fresh_view(self) -> None:
        view = self._view()
        if view != self._rendered_for:
            self._rendered.clear()
            self._rendered_for = view

    def _cached(self, kind: str, oid: str, fingerprint: tuple[Any, ...], render: Any) -> orjson.Fragment:
        mark = hash(fingerprint)
        hit = self._rendered.get((kind, oid))
        if hit is not None and hit[0] == mark:
            return hit[1]
        # copied to its exact size: orjson's output buffer is over-allocated (about 4 KiB an object)
        out = orjson.Fragment(bytes(memoryview(orjson.dumps(render()))))
        self._rendered[(kind, oid)] = (mark, out)
        return out

    def _payment_json(self, p: Json) -> orjson.Fragment:
        outbox = self.world.outbox
        hooks = tuple(
            (h.url, h.at, h.dropped, h.error, h.status_code, h.delivered, h.body.get("status"))
            for h in map(outbox.__getitem__, self._hooks_of(p["imp_uid"]))
        )
        mark = hash((orjson.dumps(p), hooks, p.get("merchant_uid") in self.world.schedules))
        hit = self._rendered.get(("payment", p["imp_uid"]))
        if hit is not None and hit[0] == mark:
            return hit[1]
        out = orjson.Fragment(bytes(memoryview(orjson.dumps(self.render_payment(p)))))
        self._rendered[("payment", p["imp_uid"])] = (mark, out)
        return out

    def _schedule_json(self, s: Json) -> orjson.Fragment:
        return self._cached(
            "schedule", s["merchant_uid"], (orjson.dumps(s),), lambda: self.render_schedule(s)
        )

    def _key_json(self, k: Json, *, deleted: bool) -> orjson.Fragment:
        return self._cached(
            "key",
            k["customer_uid"],
            (orjson.dumps(k), deleted),
            lambda: self.render_billing_key(k, deleted=deleted),
        )

    def warm(self) -> None:
        """Render every payment, schedule and billing key now, so listings serve them from the cache."""
        with self.world.locked():
            self._fresh_view()
            for p in self.world.payments.values():
                if p.get("customer_uid_usage") != "issue":
                    self._payment_json(p)
            for s in self.world.schedules.values():
                self._schedule_json(s)
            for k in self.world.billing_keys.values():
                self._key_json(k, deleted=False)
            for k in self.world.deleted_billing_keys.values():
                self._key_json(k, deleted=True)

    # ------------------------------------------------------------------ HTTP
    def handle(
        self,
        method: str,
        path: str,
        query: Sequence[tuple[str, str]],
        body: bytes,
        headers: Mapping[str, str],
    ) -> Reply:
        """Answer one request (the in-process transport and a loopback server both call this)."""
        try:
            if headers.get("authorization") != f"PortOne {self._secret}":
                raise V2Error(401, "UNAUTHORIZED", "인증 정보가 올바르지 않습니다")
            key = headers.get("idempotency-key")
            if key is not None and method != "GET":
                stored = self._idempotent.get(key)
                if stored is not None:
                    return stored
            with self.world.locked():
                self._fresh_view()
                status, payload = self._route(method, path, dict(query), body)
            reply = Reply(status, orjson.dumps(payload), _JSON)
            if key is not None and method != "GET":
                self._idempotent[key] = reply
        except V2Error as exc:
            answer = {"type": exc.kind, "message": exc.message, **exc.extra}
            reply = Reply(exc.status, orjson.dumps(answer), _JSON)
        except SandboxBadRequest as exc:
            reply = Reply(400, orjson.dumps({"type": "INVALID_REQUEST", "message": str(exc)}), _JSON)
        self.requests.append({"method": method, "path": path, "query": list(query), "status": reply.status})
        return reply

    def _input(self, q: dict[str, str], body: bytes, *, required: bool = False) -> Json:
        raw = q.get("requestBody")
        try:
            data = orjson.loads(raw) if raw is not None else (orjson.loads(body) if body else None)
        except orjson.JSONDecodeError:
            raise V2Error(400, "INVALID_REQUEST", "requestBody is not JSON") from None
        if data is None:
            if required:
                raise V2Error(400, "INVALID_REQUEST", "requestBody is required")
            return {}
        if not isinstance(data, dict):
            raise V2Error(400, "INVALID_REQUEST", "requestBody must be an object")
        return data

    def _store(self, value: Any) -> None:
        if value is not None and value != self.store_id:
            raise V2Error(403, "FORBIDDEN", f"store {value!r} is not accessible")

    def _route(self, method: str, path: str, q: dict[str, str], body: bytes) -> tuple[int, Any]:
        m = re.fullmatch(r"/payments/([^/]+)(/billing-key|/schedule)?", path)
        if m and method == "GET" and m.group(2) is None:
            self._store(q.get("storeId"))
            return 200, self._get_payment(unquote(m.group(1)))
        if m and method == "POST" and m.group(2) == "/billing-key":
            return self._pay(unquote(m.group(1)), self._input(q, body, required=True))
        if m and method == "POST" and m.group(2) == "/schedule":
            return 200, self._schedule(unquote(m.group(1)), self._input(q, body, required=True))
        if path == "/payments" and method == "GET":
            return 200, self._list_payments(self._input(q, body))
        if path == "/payment-schedules" and method == "GET":
            return 200, self._list_schedules(self._input(q, body))
        if path == "/payment-schedules" and method == "DELETE":
            return 200, self._revoke(self._input(q, body, required=True))
        if path == "/billing-keys" and method == "GET":
            return 200, self._list_billing_keys(self._input(q, body))
        m = re.fullmatch(r"/billing-keys/([^/]+)", path)
        if m and method == "GET":
            self._store(q.get("storeId"))
            return 200, self._get_billing_key(unquote(m.group(1)))
        m = re.fullmatch(r"/payment-schedules/([^/]+)", path)
        if m and method == "GET":
            s = self.world.schedules.get(unquote(m.group(1)).removeprefix(_SCHEDULE_PREFIX))
            if s is None:
                raise V2Error(404, "PAYMENT_SCHEDULE_NOT_FOUND", "예약 건이 존재하지 않습니다")
            return 200, self.render_schedule(s)
        raise V2Error(404, "NOT_FOUND", f"no route {method} {path}")

    def latest_attempt(self, payment_id: str) -> Json | None:
        """The newest V1 attempt behind a V2 payment id (what ``GET /payments/{paymentId}`` shows)."""
        ids = [
            i
            for i in self.world.payment_ids_by_merchant_uid.get(payment_id) or []
            if self.world.payments[i].get("customer_uid_usage") != "issue"
        ]
        if not ids:
            return None
        return max(
            (self.world.payments[i] for i in ids), key=lambda p: (int(p.get("started_at") or 0), p["imp_uid"])
        )

    def is_v2_payment(self, p: Json) -> bool:
        """Whether V2 shows world payment ``p`` as ``version: "V2"`` (a payment without a customer is V1
        when the merchant migrates)."""
        cu = p.get("customer_uid")
        return self.is_v2_customer(cu) if cu else not self.v1_customers

    def _get_payment(self, payment_id: str) -> Json:
        p = self.latest_attempt(payment_id)
        if self.v1_payment_id == "imp_uid":  # a V1 payment is found by its imp_uid, not its merchant_uid
            if p is not None and not self.is_v2_payment(p):
                p = None
            v1 = self.world.payments.get(payment_id)
            if p is None and v1 is not None and not self.is_v2_payment(v1):
                p = v1 if v1.get("customer_uid_usage") != "issue" else None
        if p is None:
            s = self.world.schedules.get(payment_id)
            if self.ready_before_time_to_pay and s is not None and has_ready_payment(self, s):
                return render_ready(self, s)
            raise V2Error(404, "PAYMENT_NOT_FOUND", "결제 건이 존재하지 않습니다")
        return self.render_payment(p)

    def _window(self, flt: Json) -> tuple[int, int]:
        until = _parse_time(flt["until"], "filter.until") if "until" in flt else self.world.now
        lo = _parse_time(flt["from"], "filter.from") if "from" in flt else until - 90 * 86400
        if self.max_window_days is not None and until - lo > self.max_window_days * 86400:
            raise V2Error(
                400, "INVALID_REQUEST", f"the time range must not exceed {self.max_window_days} days"
            )
        return lo, until

    def _in(self, t: int, lo: int, hi: int) -> bool:
        return lo <= t <= hi if self.until_inclusive else lo <= t < hi

    def _page(self, data: Json, items: list[Json]) -> Json:
        page = data.get("page") or {}
        number = int(page.get("number", 0))
        size = int(page.get("size", 10))
        if number < 0 or size <= 0 or (number + 1) * size > MAX_PAGE_REACH:
            raise V2Error(400, "INVALID_REQUEST", "(page.number + 1) * page.size must not exceed 60000")
        return {
            "items": items[number * size : (number + 1) * size],
            "page": {"number": number, "size": size, "totalCount": len(items)},
        }

    def _list_payments(self, data: Json) -> Json:
        flt = data.get("filter") or {}
        self._store(flt.get("storeId"))
        state = (
            orjson.dumps(flt, option=orjson.OPT_SORT_KEYS),
            len(self.world.payments),
            len(self.world.outbox),
            self.world.now,
            tuple(sorted(self.v1_customers)),
            self.until_inclusive,
            self.partial_cancel_moves_status_time,
            (self.ready_before_time_to_pay, len(self.world.schedules), self.issuance_listed),
            (self.v1_payment_id, self.v1_keys),
        )
        if self._listing is not None and self._listing[0] == state:
            hits = self._listing[1]
        else:
            hits = self._payment_hits(flt)
            self._listing = (state, hits)
        page = self._page(data, [])
        number, size = page["page"]["number"], page["page"]["size"]
        chosen = hits[number * size : (number + 1) * size]
        return {
            # a schedule's READY payment comes rendered (it has no world payment behind it)
            "items": [p if "transactionId" in p else self._payment_json(p) for _, _, p in chosen],
            "page": {"number": number, "size": size, "totalCount": len(hits)},
        }

    def _indexed(self, created: bool) -> tuple[list[int], list[tuple[int, str, Json]]]:
        """Every listable payment on one time axis, sorted; rebuilt when the world's state moves (the
        payment count, the webhook log, the clock: every change the world makes moves one of them)."""
        state = (
            len(self.world.payments),
            len(self.world.outbox),
            self.world.now,
            self.issuance_listed,
            self.partial_cancel_moves_status_time,
        )
        hit = self._payment_index.get(created)
        if hit is not None and hit[0] == state:
            return hit[1], hit[2]
        rows = [
            (int(p.get("started_at") or 0) if created else self.status_changed_at(p), p["imp_uid"], p)
            for p in self.world.payments.values()
            if self.issuance_listed or p.get("customer_uid_usage") != "issue"
        ]
        rows.sort(key=lambda h: (h[0], h[1]))
        times = [r[0] for r in rows]
        self._payment_index[created] = (state, times, rows)
        return times, rows

    def _payment_hits(self, flt: Json) -> list[tuple[int, str, Json]]:
        lo, hi = self._window(flt)
        created = flt.get("timestampType") == "CREATED_AT"
        statuses = {("PAY_PENDING" if s == "PENDING" else s) for s in flt.get("status") or []}
        version = flt.get("version")
        tx = [t["value"] for t in flt.get("textSearch") or [] if t.get("field") == "TX_ID"]
        keys = [t["value"] for t in flt.get("textSearch") or [] if t.get("field") == "BILLING_KEY"]
        times, rows = self._indexed(created)
        end = bisect_right(times, hi) if self.until_inclusive else bisect_left(times, hi)
        hits: list[tuple[int, str, Json]] = []
        for t, imp_uid, p in rows[bisect_left(times, lo) : end]:
            if tx and imp_uid not in tx:
                continue
            if statuses and self.status_of(p) not in statuses:
                continue
            cu = p.get("customer_uid")
            if keys and not (cu and self.billing_key_of(cu) in keys):
                continue
            if version is not None:
                v2 = self.is_v2_customer(cu) if cu else not self.v1_customers
                if ("V2" if v2 else "V1") != version:
                    continue
            hits.append((t, imp_uid, p))
        if self.ready_before_time_to_pay:
            hits += ready_hits(self, flt, lo, hi)
            hits.sort(key=lambda h: (h[0], h[1]))
        if flt.get("sortOrder") == "DESC":
            hits.reverse()
        return hits

    def _list_schedules(self, data: Json) -> Json:
        flt = data.get("filter") or {}
        self._store(flt.get("storeId"))
        lo, hi = self._window(flt)
        key = flt.get("billingKey")
        statuses = set(flt.get("status") or [])
        # The world's index of the window (its own cache, renewed whenever a schedule changes), in
        # (schedule_at, merchant_uid) order; ``to`` is exclusive there.
        ids = self.world.query_schedules(lo, hi + 1 if self.until_inclusive else hi, sorting="scheduled")
        depends = (key, self.v1_schedules_visible, tuple(sorted(self.v1_customers)))
        if (
            self._schedule_listing is not None
            and self._schedule_listing[0] is ids
            and self._schedule_listing[1] == depends
        ):
            visible = self._schedule_listing[2]
        else:
            schedules = self.world.schedules
            visible = [
                m
                for m in ids
                if (self.v1_schedules_visible or self.is_v2_customer(schedules[m]["customer_uid"]))
                and (not key or self.billing_key_of(schedules[m]["customer_uid"]) == key)
            ]
            self._schedule_listing = (ids, depends, visible)
        if statuses:
            schedules = self.world.schedules
            visible = [m for m in visible if self.schedule_status_of(schedules[m]) in statuses]
        page = self._page(data, [])
        number, size = page["page"]["number"], page["page"]["size"]
        chosen = visible[number * size : (number + 1) * size]
        return {
            "items": [self._schedule_json(self.world.schedules[m]) for m in chosen],
            "page": {"number": number, "size": size, "totalCount": len(visible)},
        }

    def _list_billing_keys(self, data: Json) -> Json:
        flt = data.get("filter") or {}
        self._store(flt.get("storeId"))
        lo, hi = self._window(flt)
        field = flt.get("timeRangeField", "REQUESTED_AT")
        version = flt.get("version")
        out = []
        rows = [(k, False) for k in self.world.billing_keys.values()]
        rows += [(k, True) for k in self.world.deleted_billing_keys.values()]
        for k, deleted in rows:
            if not self.key_visible(k["customer_uid"]):
                continue
            if version is not None and ("V2" if self.is_v2_customer(k["customer_uid"]) else "V1") != version:
                continue
            t = int(
                (
                    k.get("updated")
                    if deleted and field in ("STATUS_TIMESTAMP", "DELETED_AT")
                    else k.get("inserted")
                )
                or 0
            )
            if field == "DELETED_AT" and not deleted:
                continue
            if self._in(t, lo, hi):
                out.append((t, k["customer_uid"], k, deleted))
        out.sort(key=lambda r: (r[0], r[1]))
        page = self._page(data, [])
        number, size = page["page"]["number"], page["page"]["size"]
        return {
            "items": [
                self._key_json(k, deleted=d) for _, _, k, d in out[number * size : (number + 1) * size]
            ],
            "page": {"number": number, "size": size, "totalCount": len(out)},
        }

    def _get_billing_key(self, billing_key: str) -> Json:
        cu = self.customer_of_key(billing_key)
        if self.billing_key_of(cu) != billing_key or not self.key_visible(cu):
            raise V2Error(404, "BILLING_KEY_NOT_FOUND", "빌링키가 존재하지 않습니다")
        if cu in self.world.billing_keys:
            return self.render_billing_key(self.world.billing_keys[cu], deleted=False)
        if cu in self.world.deleted_billing_keys:
            return self.render_billing_key(self.world.deleted_billing_keys[cu], deleted=True)
        raise V2Error(404, "BILLING_KEY_NOT_FOUND", "빌링키가 존재하지 않습니다")

    def _key_customer(self, payment: Json) -> str:
        self._store(payment.get("storeId"))
        key = payment.get("billingKey")
        if not isinstance(key, str) or not key:
            raise V2Error(400, "INVALID_REQUEST", "billingKey is required")
        cu = self.customer_of_key(key)
        if self.billing_key_of(cu) != key or not self.key_visible(cu) or cu not in self.world.billing_keys:
            if cu in self.world.deleted_billing_keys:
                raise V2Error(409, "BILLING_KEY_ALREADY_DELETED", "삭제된 빌링키입니다")
            raise V2Error(404, "BILLING_KEY_NOT_FOUND", "빌링키가 존재하지 않습니다")
        for name in ("orderName", "amount", "currency"):
            if name not in payment:
                raise V2Error(400, "INVALID_REQUEST", f"{name} is required")
        return cu

    def _pay(self, payment_id: str, data: Json) -> tuple[int, Any]:
        cu = self._key_customer(data)
        currency = str(data["currency"])
        total = (data.get("amount") or {}).get("total")
        if isinstance(total, bool) or not isinstance(total, int) or total <= 0:
            raise V2Error(400, "INVALID_REQUEST", "amount.total must be a positive integer")
        self.refuse_failed_id(payment_id)
        try:
            p = self.world.pay_again(
                customer_uid=cu,
                merchant_uid=payment_id,
                amount=major(total, currency),
                name=str(data["orderName"]),
                currency=currency,
                custom_data=data.get("customData"),
            )
        except SandboxRefusal as exc:
            raise V2Error(409, "ALREADY_PAID", exc.message) from None
        if p["status"] != "paid":
            if self.decline_as_error:
                reason = p.get("fail_reason") or "declined"
                raise V2Error(502, "PG_PROVIDER", reason, pgCode="F113", pgMessage=reason)
            return 200, {"payment": {"pgTxId": p.get("pg_tid")}}
        return 200, {"payment": {"pgTxId": p["pg_tid"], "paidAt": rfc3339(p["paid_at"])}}

    def _schedule(self, payment_id: str, data: Json) -> Json:
        payment = data.get("payment")
        if not isinstance(payment, dict):
            raise V2Error(400, "INVALID_REQUEST", "payment is required")
        cu = self._key_customer(payment)
        at = _parse_time(data.get("timeToPay"), "timeToPay")
        currency = str(payment["currency"])
        total = (payment.get("amount") or {}).get("total")
        if isinstance(total, bool) or not isinstance(total, int) or total <= 0:
            raise V2Error(400, "INVALID_REQUEST", "payment.amount.total must be a positive integer")
        if payment_id in self.world.schedules:
            raise V2Error(409, "PAYMENT_SCHEDULE_ALREADY_EXISTS", "이미 예약된 결제입니다")
        entry = {
            "merchant_uid": payment_id,
            "schedule_at": at,
            "amount": major(total, currency),
            "currency": currency,
            "name": payment["orderName"],
            "custom_data": payment.get("customData"),
        }
        try:
            self.world.create_schedules(cu, [entry])
        except SandboxRefusal as exc:
            raise V2Error(409, "ALREADY_PAID_OR_WAITING", exc.message) from None
        return {"schedule": {"id": _SCHEDULE_PREFIX + payment_id}}

    def _revoke(self, data: Json) -> Json:
        self._store(data.get("storeId"))
        ids = data.get("scheduleIds")
        key = data.get("billingKey")
        if not ids and not key:
            raise V2Error(400, "INVALID_REQUEST", "billingKey or scheduleIds is required")
        if ids:
            targets = []
            for sid in ids:
                s = self.world.schedules.get(str(sid).removeprefix(_SCHEDULE_PREFIX))
                if s is None or not str(sid).startswith(_SCHEDULE_PREFIX):
                    raise V2Error(404, "PAYMENT_SCHEDULE_NOT_FOUND", f"{sid}")
                if key and self.billing_key_of(s["customer_uid"]) != key:
                    raise V2Error(400, "INVALID_REQUEST", f"{sid} belongs to another billing key")
                targets.append(s)
        else:
            cu = self.customer_of_key(str(key))
            targets = [s for s in self.world.schedules.values() if s["customer_uid"] == cu]
        # All or nothing: one schedule that cannot be revoked refuses the whole call.
        for s in targets:
            if s["schedule_status"] == "revoked":
                raise V2Error(409, "PAYMENT_SCHEDULE_ALREADY_REVOKED", s["merchant_uid"])
            if s["schedule_status"] != "scheduled":
                raise V2Error(409, "PAYMENT_SCHEDULE_ALREADY_PROCESSED", s["merchant_uid"])
        if targets:
            self.world.unschedule(merchant_uids=[s["merchant_uid"] for s in targets])
        return {
            "revokedScheduleIds": [_SCHEDULE_PREFIX + s["merchant_uid"] for s in targets],
            "revokedAt": rfc3339(self.world.now),
        }

    def refuse_failed_id(self, payment_id: str) -> None:
        """Under ``failed_id_refusal``, refuse to charge a payment id whose payment FAILED."""
        if self.failed_id_refusal is None:
            return
        p = self.latest_attempt(payment_id)
        if p is not None and p["status"] == "failed":
            status = {"ALREADY_PAID": 409, "MAX_TRANSACTION_COUNT_REACHED": 400}.get(
                self.failed_id_refusal, 409
            )
            raise V2Error(status, self.failed_id_refusal, "실패한 결제 건은 다시 결제할 수 없습니다")

    def partial_cancel_status_time(self, p: Json) -> int:
        """``statusChangedAt`` of a PARTIAL_CANCELLED payment: its first partial cancel (the status
        transition), or its latest one under ``partial_cancel_moves_status_time``."""
        times = [int(c["cancelled_at"]) for c in p.get("cancel_history") or () if c.get("cancelled_at")]
        if not times:
            return int(p.get("cancelled_at") or p["paid_at"])
        return max(times) if self.partial_cancel_moves_status_time else min(times)

    def transport(self) -> httpx.BaseTransport:
        """An in-process httpx transport serving this view."""
        return SandboxV2Transport(self)


class SandboxV2Transport(httpx.BaseTransport):
    """Serve a :class:`SandboxV2` to an ``httpx.Client`` in the calling thread."""

    def __init__(self, v2: SandboxV2) -> None:
        self.v2 = v2

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in request.headers.raw}
        raw_path = request.url.raw_path.decode("ascii").split("?", 1)[0]
        reply = self.v2.handle(request.method, raw_path, request.url.params.multi_items(), body, headers)
        return httpx.Response(reply.status, headers=list(reply.headers), content=reply.body, request=request)
