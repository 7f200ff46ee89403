"""The V1 HTTP surface over a :class:`SandboxWorld`, independent of how requests arrive.

:func:`handle` takes a method, a decoded path, the query pairs, the raw body and the headers, and returns a
:class:`Reply`; the in-process transport and the loopback server both call it. Envelope
``{code, message, response}``; HTTP 200/207/400/401/404 as the reference says; bodies serialised with orjson.
Control requests live under ``/__sandbox/`` (a prefix the real API does not have).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

import orjson

from portone_recon.errors import SandboxError
from portone_recon.sandbox.world import (
    MSG_PAYMENT_NOT_FOUND,
    Json,
    SandboxBadRequest,
    SandboxNotFound,
    SandboxRefusal,
    SandboxUnauthorized,
    SandboxWorld,
    msg_customer_not_found,
)

_JSON_HEADERS: tuple[tuple[str, str], ...] = (("content-type", "application/json; charset=UTF-8"),)
MAX_LIMIT = 1000
DEFAULT_LIMIT = 20
CUSTOMER_PAGE_SIZE = 20
MAX_IDS = 100
PAYMENT_WINDOW = 90 * 86400
SCHEDULE_WINDOW = 92 * 86400


@dataclass(frozen=True, slots=True)
class Reply:
    """One answer: status, JSON body, extra headers; ``drop`` = the write was applied, answer nothing."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = _JSON_HEADERS
    drop: bool = False


def envelope(response: Any, *, status: int = 200, code: int = 0, message: str | None = None) -> Reply:
    """Serialise ``{code, message, response}``."""
    return Reply(status, orjson.dumps({"code": code, "message": message, "response": response}))


def error_reply(
    status: int, message: str, *, code: int = -1, headers: Sequence[tuple[str, str]] = ()
) -> Reply:
    """An error envelope (``response: null``)."""
    body = orjson.dumps({"code": code, "message": message, "response": None})
    return Reply(status, body, _JSON_HEADERS + tuple(headers))


class Params:
    """Query or body parameters with PHP-style ``name[]`` arrays."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data = data

    @classmethod
    def from_pairs(cls, pairs: Sequence[tuple[str, str]]) -> Params:
        data: dict[str, Any] = {}
        for k, v in pairs:
            if k.endswith("[]"):
                data.setdefault(k, []).append(v)
            else:
                data[k] = v
        return cls(data)

    def get(self, name: str, default: Any = None) -> Any:
        value = self._data.get(name, default)
        return default if value == "" else value

    def list(self, name: str) -> list[str]:
        """Values of ``name[]`` (and of ``name`` given as an array or a scalar)."""
        out: list[str] = []
        for key in (f"{name}[]", name):
            value = self._data.get(key)
            if value is None:
                continue
            if isinstance(value, list):
                out.extend(str(v) for v in value)
            else:
                out.append(str(value))
        return out

    def int(self, name: str, default: int | None = None, *, required: bool = False) -> int | None:
        value = self.get(name)
        if value is None:
            if required:
                raise SandboxBadRequest(f"{name}: 필수 파라미터입니다")
            return default
        if isinstance(value, bool):
            raise SandboxBadRequest(f"{name}: 정수여야 합니다 (got {value!r})")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        text = str(value).strip()
        if re.fullmatch(r"-?\d+", text):
            return int(text)
        raise SandboxBadRequest(f"{name}: 정수여야 합니다 (got {value!r})")

    def bool(self, name: str) -> bool:
        value = self.get(name)
        if isinstance(value, bool):
            return value
        return str(value).lower() in ("true", "1", "yes", "on")

    @property
    def data(self) -> Mapping[str, Any]:
        return self._data


def _page(total_ids: Sequence[str], page: int, limit: int, render: Callable[[str], Json]) -> Json:
    total = len(total_ids)
    if page < 1:
        raise SandboxBadRequest(f"page: 1 이상이어야 합니다 (got {page})")
    start = (page - 1) * limit
    if page > 1 and start >= total:
        raise SandboxBadRequest(f"page: 범위를 벗어났습니다 (page {page}, total {total}, limit {limit})")
    items = [render(i) for i in total_ids[start : start + limit]]
    return {
        "total": total,
        "previous": page - 1 if page > 1 else 0,
        "next": page + 1 if start + limit < total else 0,
        "list": items,
    }


def _limit(q: Params) -> int:
    limit = q.int("limit", DEFAULT_LIMIT)
    assert limit is not None
    if not 1 <= limit <= MAX_LIMIT:
        raise SandboxBadRequest(f"limit: 1~{MAX_LIMIT} 사이여야 합니다 (got {limit})")
    return limit


def _page_no(q: Params) -> int:
    page = q.int("page", 1)
    assert page is not None
    return page


# ---------------------------------------------------------------------- handlers
# Each handler: (world, path groups, query, body) -> (http status, response payload)
Result = tuple[int, Any]
Handler = Callable[[SandboxWorld, Sequence[str], Params, Params], Result]


def h_get_token(w: SandboxWorld, g: Sequence[str], q: Params, b: Params) -> Result:
    return 200, w.issue_token(b.get("imp_key"), b.get("imp_secret"))


def h_payment(w: SandboxWorld, g: Sequence[str], q: Params, b: Params) -> Result:
    return 200, w.get_payment(g[0])


def h_payments_multi(w: SandboxWorld, g: Sequence[str], q: Params, b: Params) -> Result:
    imp_uids = q.list("imp_uid")
    merchant_uids = q.list("merchant_uid")
    if not imp_uids and not merchant_uids:
        raise SandboxBadRequest("imp_uid[] 또는 merchant_uid[] 중 하나는 필수입니다.")
    if len(imp_uids) + len(merchant_uids) > MAX_IDS:
        raise SandboxBadRequest(
            f"한 번에 최대 {MAX_IDS}건까지 조회할 수 있습니다 (got {len(imp_uids) + len(merchant_uids)})"
        )
    found: list[Json] = []
    seen: set[str] = set()
    missing = 0
    for imp in imp_uids:
        p = w.payments.get(imp)
        if p is None:
            missing += 1
        elif imp not in seen:
            seen.add(imp)
            found.append(p)
    for mu in merchant_uids:
        ids = w.payment_ids_by_merchant_uid.get(mu)
        if not ids:
            missing += 1
            continue
        for imp in ids:
            if imp not in seen:
                seen.add(imp)
                found.append(w.payments[imp])
    if not found:
        raise SandboxNotFound(MSG_PAYMENT_NOT_FOUND)
    return (207 if missing else 200), found


def _sorting(q: Params) -> str:
    return str(q.get("sorting") or "-started")


def h_find(w: SandboxWorld, g: Sequence[str], q: Params, b: Params) -> Result:
    status = g[1] if len(g) > 1 and g[1] else None
    ids = w.query_payments_by_merchant_uid(g[0], status, _sorting(q))
    if not ids:
        raise SandboxNotFound(MSG_PAYMENT_NOT_FOUND)
    return 200, w.payments[ids[0]]


def h_find_all(w: SandboxWorld, g: Sequence[str], q: Params, b: Params) -> Result:
    status = g[1] if len(g) > 1 and g[1] else None
    ids = w.query_payments_by_merchant_uid(g[0], status, _sorting(q))
    return 200, _page(ids, _page_no(q), _limit(q), w.payments.__getitem__)


def h_by_status(w: SandboxWorld, g: Sequence[str], q: Params, b: Params) -> Result:
    to = q.int("to", w.now)
    assert to is not None
    from_ = q.int("from", to - PAYMENT_WINDOW)
    assert from_ is not None
    if from_ > to:
        raise SandboxBadRequest(f"from({from_})이 to({to})보다 이후입니다")
    if to - from_ > PAYMENT_WINDOW:
        raise SandboxBadRequest(f"조회기간은 최대 90일까지 가능합니다 (from {from_}, to {to})")
    limit, page = _limit(q), _page_no(q)
    ids = w.query_payments_by_status(g[0], from_, to, _sorting(q))
    return 200, _page(ids, page, limit, w.payments.__getitem__)


def h_cancel(w: SandboxWorld, g: Sequence[str], q: Params, b: Params) -> Result:
    return 200, w.cancel_payment(
        imp_uid=b.get("imp_uid"),
        merchant_uid=b.get("merchant_uid"),
        amount=b.get("amount"),
        reason=b.get("reason"),
        checksum=b.get("checksum"),
        enable_webhook=b.bool("enable_webhook"),
    )


def h_customer_get(w: SandboxWorld, g: Sequence[str], q: Params, b: Params) -> Result:
    return 200, w.get_billing_key(g[0])


def h_customer_post(w: SandboxWorld, g: Sequence[str], q: Params, b: Params) -> Result:
    if not b.get("card_number") or not b.get("expiry"):
        raise SandboxBadRequest("card_number, expiry: 필수 파라미터입니다")
    return 200, w.issue_billing_key(
        g[0],
        card_number=str(b.get("card_number")),
        expiry=str(b.get("expiry")),
        birth=b.get("birth"),
        pwd_2digit=b.get("pwd_2digit"),
        pg=b.get("pg"),
        customer_id=b.get("customer_id"),
        customer_name=b.get("customer_name"),
        customer_email=b.get("customer_email"),
        customer_tel=b.get("customer_tel"),
        customer_addr=b.get("customer_addr"),
        customer_postcode=b.get("customer_postcode"),
        channel_group_id=b.get("channel_group_id"),
    )


def h_customer_delete(w: SandboxWorld, g: Sequence[str], q: Params, b: Params) -> Result:
    return 200, w.delete_billing_key(g[0], reason=q.get("reason"))


def h_customers_multi(w: SandboxWorld, g: Sequence[str], q: Params, b: Params) -> Result:
    uids = q.list("customer_uid")
    if not uids:
        raise SandboxBadRequest("customer_uid[]: 필수 파라미터입니다")
    if len(uids) > MAX_IDS:
        raise SandboxBadRequest(f"한 번에 최대 {MAX_IDS}건까지 조회할 수 있습니다 (got {len(uids)})")
    hide_super = w.variant.lookup_leaves_out == "super"
    found = [
        w.billing_keys[u]
        for u in dict.fromkeys(uids)
        if u in w.billing_keys and not (hide_super and "channelGroupId" in w.billing_keys[u])
    ]
    if not found or (w.variant.unknown_in_lookup == "404" and len(found) < len(dict.fromkeys(uids))):
        raise SandboxNotFound(msg_customer_not_found(",".join(uids)))
    return (207 if len(found) < len(dict.fromkeys(uids)) else 200), found


def h_customer_payments(w: SandboxWorld, g: Sequence[str], q: Params, b: Params) -> Result:
    ids = w.query_customer_payments(g[0])
    return 200, _page(ids, _page_no(q), CUSTOMER_PAGE_SIZE, w.payments.__getitem__)


def _window(q: Params, lo: str, hi: str, longest: int = SCHEDULE_WINDOW) -> tuple[int, int]:
    from_ = q.int(lo, required=True)
    to = q.int(hi, required=True)
    assert from_ is not None
    assert to is not None
    if from_ > to:
        raise SandboxBadRequest(f"{lo}({from_})이 {hi}({to})보다 이후입니다")
    if to - from_ > longest:
        raise SandboxBadRequest(f"조회기간은 최대 3개월까지 가능합니다 ({lo} {from_}, {hi} {to})")
    return from_, to


def h_customer_schedules(w: SandboxWorld, g: Sequence[str], q: Params, b: Params) -> Result:
    cu = g[0]
    if cu not in w.billing_keys and cu not in w.deleted_billing_keys:
        raise SandboxNotFound(msg_customer_not_found(cu))
    from_, to = _window(q, "from", "to", w.variant.schedule_window_days * 86400)
    ids = w.query_schedules(from_, to, q.get("schedule-status"), None, customer_uid=cu)
    return 200, _page(ids, _page_no(q), CUSTOMER_PAGE_SIZE, w.schedules.__getitem__)


def h_again(w: SandboxWorld, g: Sequence[str], q: Params, b: Params) -> Result:
    for name in ("customer_uid", "merchant_uid", "amount"):
        if b.get(name) is None:
            raise SandboxBadRequest(f"{name}: 필수 파라미터입니다")
    extra = {k: v for k, v in b.data.items() if k.startswith("buyer_")}
    return 200, w.pay_again(
        customer_uid=str(b.get("customer_uid")),
        merchant_uid=str(b.get("merchant_uid")),
        amount=b.get("amount"),
        name=b.get("name"),
        notice_url=b.get("notice_url"),
        custom_data=b.get("custom_data"),
        currency=str(b.get("currency") or "KRW"),
        **extra,
    )


def h_schedule_create(w: SandboxWorld, g: Sequence[str], q: Params, b: Params) -> Result:
    cu = b.get("customer_uid")
    if not cu:
        raise SandboxBadRequest("customer_uid: 필수 파라미터입니다")
    entries = b.get("schedules")
    if not isinstance(entries, list):
        raise SandboxBadRequest("schedules: 배열이어야 합니다")
    return 200, w.create_schedules(
        str(cu),
        entries,
        card_number=b.get("card_number"),
        expiry=b.get("expiry"),
        birth=b.get("birth"),
        pwd_2digit=b.get("pwd_2digit"),
        customer_id=b.get("customer_id"),
    )


def h_unschedule(w: SandboxWorld, g: Sequence[str], q: Params, b: Params) -> Result:
    mus = b.list("merchant_uid")
    return 200, w.unschedule(customer_uid=b.get("customer_uid"), merchant_uids=mus or None)


def h_schedules_range(w: SandboxWorld, g: Sequence[str], q: Params, b: Params) -> Result:
    from_, to = _window(q, "schedule_from", "schedule_to", w.variant.schedule_window_days * 86400)
    limit, page = _limit(q), _page_no(q)
    ids = w.query_schedules(from_, to, q.get("schedule_status"), q.get("sorting"))
    return 200, _page(ids, page, limit, w.schedules.__getitem__)


def h_schedule_get(w: SandboxWorld, g: Sequence[str], q: Params, b: Params) -> Result:
    return 200, w.get_schedule(g[0])


def h_schedule_put(w: SandboxWorld, g: Sequence[str], q: Params, b: Params) -> Result:
    at = b.int("schedule_at", required=True)
    return 200, w.update_schedule(g[0], at)


def h_reschedule(w: SandboxWorld, g: Sequence[str], q: Params, b: Params) -> Result:
    at = b.int("schedule_at", required=True)
    return 200, w.reschedule(g[0], at)


def h_retry(w: SandboxWorld, g: Sequence[str], q: Params, b: Params) -> Result:
    return 200, w.retry_schedule(g[0])


_SEG = r"([^/]+)"
_STATUS = r"([^/]+)"
#: (method, regex, template, handler, needs auth); order matters (specific before generic)
ROUTES: tuple[tuple[str, re.Pattern[str], str, Handler], ...] = tuple(
    (m, re.compile(f"^{rx}$"), t, h)
    for m, rx, t, h in (
        ("POST", "/users/getToken", "/users/getToken", h_get_token),
        ("GET", "/payments", "/payments", h_payments_multi),
        ("GET", f"/payments/status/{_STATUS}", "/payments/status/{payment_status}", h_by_status),
        ("GET", f"/payments/find/{_SEG}(?:/{_STATUS})?", "/payments/find/{merchant_uid}", h_find),
        ("GET", f"/payments/findAll/{_SEG}(?:/{_STATUS})?", "/payments/findAll/{merchant_uid}", h_find_all),
        ("POST", "/payments/cancel", "/payments/cancel", h_cancel),
        ("GET", f"/payments/{_SEG}", "/payments/{imp_uid}", h_payment),
        ("GET", "/subscribe/customers", "/subscribe/customers", h_customers_multi),
        (
            "GET",
            f"/subscribe/customers/{_SEG}/payments",
            "/subscribe/customers/{customer_uid}/payments",
            h_customer_payments,
        ),
        (
            "GET",
            f"/subscribe/customers/{_SEG}/schedules",
            "/subscribe/customers/{customer_uid}/schedules",
            h_customer_schedules,
        ),
        ("GET", f"/subscribe/customers/{_SEG}", "/subscribe/customers/{customer_uid}", h_customer_get),
        ("POST", f"/subscribe/customers/{_SEG}", "/subscribe/customers/{customer_uid}", h_customer_post),
        ("DELETE", f"/subscribe/customers/{_SEG}", "/subscribe/customers/{customer_uid}", h_customer_delete),
        ("POST", "/subscribe/payments/again", "/subscribe/payments/again", h_again),
        ("POST", "/subscribe/payments/schedule", "/subscribe/payments/schedule", h_schedule_create),
        ("POST", "/subscribe/payments/unschedule", "/subscribe/payments/unschedule", h_unschedule),
        ("GET", "/subscribe/payments/schedule", "/subscribe/payments/schedule", h_schedules_range),
        (
            "GET",
            f"/subscribe/payments/schedule/customers/{_SEG}",
            "/subscribe/payments/schedule/customers/{customer_uid}",
            h_customer_schedules,
        ),
        (
            "POST",
            f"/subscribe/payments/schedule/{_SEG}/reschedule",
            "/subscribe/payments/schedule/{merchant_uid}/reschedule",
            h_reschedule,
        ),
        (
            "POST",
            f"/subscribe/payments/schedule/{_SEG}/retry",
            "/subscribe/payments/schedule/{merchant_uid}/retry",
            h_retry,
        ),
        (
            "GET",
            f"/subscribe/payments/schedule/{_SEG}",
            "/subscribe/payments/schedule/{merchant_uid}",
            h_schedule_get,
        ),
        (
            "PUT",
            f"/subscribe/payments/schedule/{_SEG}",
            "/subscribe/payments/schedule/{merchant_uid}",
            h_schedule_put,
        ),
    )
)


def match_route(method: str, path: str) -> tuple[str, Handler, tuple[str, ...]] | str | None:
    """The (template, handler, groups) for a request; the template alone when only the method is wrong."""
    wrong_method: str | None = None
    for m, rx, template, handler in ROUTES:
        found = rx.match(path)
        if found is None:
            continue
        if m == method:
            return template, handler, tuple(x for x in found.groups() if x is not None)
        wrong_method = wrong_method or template
    return wrong_method


def parse_body(body: bytes, content_type: str) -> Params:
    """A JSON or form-urlencoded body (``name[]`` arrays supported in forms)."""
    if not body:
        return Params({})
    if "application/x-www-form-urlencoded" in content_type:
        return Params.from_pairs(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise SandboxBadRequest("요청 본문이 올바른 JSON이 아닙니다") from None
    if not isinstance(data, dict):
        raise SandboxBadRequest("요청 본문은 JSON 객체여야 합니다")
    return Params(data)


def handle(
    world: SandboxWorld,
    method: str,
    path: str,
    query: Sequence[tuple[str, str]],
    body: bytes,
    headers: Mapping[str, str],
) -> Reply:
    """Answer one request (``headers`` keys lower-case; ``path`` already percent-decoded)."""
    method = method.upper()
    if len(path) > 1 and path.endswith("/"):
        path = path[:-1]
    if path.startswith("/__sandbox/") or path == "/__sandbox":
        return control(world, method, path, query, body)
    matched = match_route(method, path)
    if matched is None or isinstance(matched, str):
        template = matched or path
        status = 405 if matched else 404
        reply = error_reply(status, "Method Not Allowed" if matched else f"Not Found: {path}")
        _log(world, method, path, query, status, template)
        return reply
    template, handler, groups = matched
    faults = world.faults
    faults.delay(method, path, template)
    injected = faults.error_for(method, path, template)
    if injected is not None:
        extra: tuple[tuple[str, str], ...] = ()
        if injected.retry_after is not None:
            extra = (("retry-after", f"{injected.retry_after:g}"),)
        text = "Too Many Requests" if injected.status == 429 else "Internal Server Error (sandbox fault)"
        _log(world, method, path, query, injected.status, template)
        return error_reply(injected.status, text, headers=extra)
    try:
        q = Params.from_pairs(query)
        b = parse_body(body, headers.get("content-type", "")) if method != "GET" else Params({})
        with world.locked():
            if handler is not h_get_token:
                world.check_token(headers.get("authorization"))
            status, payload = handler(world, groups, q, b)
            reply = envelope(payload, status=status)
    except SandboxUnauthorized as exc:
        reply = error_reply(401, exc.message)
    except SandboxRefusal as exc:
        reply = error_reply(200, exc.message, code=exc.code)
    except SandboxNotFound as exc:
        reply = error_reply(404, exc.message)
    except SandboxBadRequest as exc:
        reply = error_reply(400, exc.message)
    except SandboxError as exc:  # misuse inside the world: answer 500 like an internal error
        reply = error_reply(500, f"sandbox error: {exc}")
    if method != "GET" and reply.status < 500 and faults.should_drop(method, path, template):
        _log(world, method, path, query, reply.status, template, dropped=True)
        return Reply(reply.status, reply.body, reply.headers, drop=True)
    _log(world, method, path, query, reply.status, template)
    return reply


def _log(
    world: SandboxWorld,
    method: str,
    path: str,
    query: Sequence[tuple[str, str]],
    status: int,
    route: str,
    *,
    dropped: bool = False,
) -> None:
    entry: dict[str, Any] = {
        "method": method,
        "path": path,
        "query": list(query),
        "status": status,
        "route": route,
    }
    if dropped:
        entry["dropped"] = True
    world.requests.append(entry)  # list.append is atomic under the GIL


# ---------------------------------------------------------------------- control surface
def _parse_to(value: Any) -> datetime:
    from portone_recon._time import from_unix, parse_instant

    if isinstance(value, int | float) and not isinstance(value, bool):
        result = from_unix(int(value))
        if result is None:
            raise SandboxError("advance: 'to' must be a positive unix time or an ISO instant")
        return result
    return parse_instant(str(value))


def control(
    world: SandboxWorld, method: str, path: str, query: Sequence[tuple[str, str]], body: bytes
) -> Reply:
    """``/__sandbox/...``: advance, faults, variant, outbox, requests, state, snapshot.

    Control calls are never logged nor faulted.
    """
    name = path[len("/__sandbox/") :]
    try:
        spec: Any = orjson.loads(body) if body else {}
        if method == "POST" and name == "advance":
            if not isinstance(spec, dict) or ("to" in spec) == ("seconds" in spec):
                raise SandboxError("advance: give exactly one of 'to' (ISO or unix) or 'seconds'")
            if "to" in spec:
                hooks = world.advance(to=_parse_to(spec["to"]))
            else:
                hooks = world.advance(seconds=float(spec["seconds"]))
            return envelope({"now": world.now, "webhooks": [h.to_dict() for h in hooks]})
        if name == "faults" and method == "POST":
            world.faults.configure(spec, world=world)
            return envelope(world.faults.to_dict())
        if name == "faults" and method == "GET":
            return envelope(world.faults.to_dict())
        if name == "expire_token" and method == "POST":
            world.expire_token()
            return envelope({"expired_at": world.token_expired_at})
        if name == "outbox" and method == "GET":
            return envelope([h.to_dict() for h in list(world.outbox)])
        if name == "requests" and method == "GET":
            return envelope(list(world.requests))
        if name == "requests" and method == "DELETE":
            world.requests.clear()
            return envelope([])
        if name == "variant" and method == "POST":
            if not isinstance(spec, dict):
                raise SandboxError('variant: give an object of switches, e.g. {"card_type": "str"}')
            world.variant = world.variant.with_(spec)
            return envelope(world.variant.to_dict())
        if name == "variant" and method == "GET":
            return envelope(world.variant.to_dict())
        if name == "state" and method == "GET":
            return envelope(world.summary())
        if name == "snapshot" and method == "GET":
            return envelope(world.snapshot())
    except (SandboxError, ValueError, TypeError, orjson.JSONDecodeError) as exc:
        return error_reply(400, f"sandbox control {name}: {exc}")
    return error_reply(404, f"unknown sandbox control: {method} {path}")
