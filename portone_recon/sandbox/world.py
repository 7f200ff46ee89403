"""The sandbox world: billing keys, payments, schedules, tokens and webhooks of one PortOne V1 merchant.

State lives in plain dicts holding the PortOne JSON objects exactly as the API returns them (unix-int
times, ``0`` for "not yet", ``None`` for absent strings), so the HTTP layer serialises them directly.
Every operation has the semantics of its HTTP endpoint; business refusals raise :class:`SandboxRefusal`
(HTTP 200, ``code != 0``), missing objects :class:`SandboxNotFound` (HTTP 404, code -1), bad parameters
:class:`SandboxBadRequest` (HTTP 400). Time is the world's :class:`SandboxClock`; nothing reads the wall
clock. All randomness comes from RNGs seeded by ``seed`` (card declines, webhook loss, faults each have
their own stream, so turning one on does not change the draws of another).

Derived indexes (per-status payment time axes, schedule time axis, pending-schedule heap, per-customer
lists) are maintained incrementally by the operations and rebuilt lazily when the number of payments or
schedules changes behind the world's back. Code that edits the dicts directly (the scenario generator
building past months in bulk) must keep ``payment_ids_by_merchant_uid`` and ``charge_counts`` consistent
itself and call :meth:`SandboxWorld.reindex` when it changed an existing object's status, time or
``schedule_at`` (adding objects is detected automatically).

Decisions on points the reference marks UNCONFIRMED (the safe reading for a client):

* Unknown ``customer_uid`` on ``GET/DELETE /subscribe/customers/{cu}``: HTTP 404, code -1,
  ``"요청하신 customer_uid({cu})로 등록된 정보를 찾을 수 없습니다."``. Deleted keys count as unknown.
* ``again`` with an unknown key: HTTP 200, code -1 (as in the official Python SDK test),
  ``"등록되지 않은 구매자입니다."``.
  ``again`` for a ``merchant_uid`` that already has a paid payment: code 1, ``"이미 결제완료된 주문입니다."``.
  A failed ``again`` sends no webhook; a paid one does.
* Duplicate schedule ``merchant_uid`` (an existing schedule, a paid payment, or twice in one request):
  code 1, ``"이미 등록된 merchant_uid({mu})의 예약결제가 존재합니다."``; the whole batch is refused.
* ``schedule_at`` in the past on POST schedule: HTTP 400 (like PUT/reschedule). A ``schedule_at`` equal to
  ``now`` is accepted and executes on the next :meth:`SandboxWorld.advance`.
* Deleting a billing key does not revoke its schedules; a schedule whose key is gone executes as a
  ``failed`` payment with ``"등록된 고객정보가 없습니다."`` (and its failed webhook).
* ``reschedule`` resets ``payment_status``/``imp_uid``/``executed_at``/``revoked_at``/``fail_reason``;
  earlier attempts stay visible as payments of the same ``merchant_uid`` (``findAll``).
* ``retry`` charges now with ``customer_uid_usage "payment.scheduled"`` and sends the paid/failed webhook
  like a scheduled execution; it marks the schedule ``executed`` with the new ``imp_uid``.
* Cancels: partial keeps ``status "paid"``; the webhook (console, or API with ``enable_webhook``) carries
  the status after the cancel (``paid`` for a partial one) and ``cancellation_id``. Cancel of a
  ``failed``/``ready`` payment: code 1 ``"취소할 결제건이 존재하지 않습니다."``; amount above the refundable
  balance: code 1 ``"취소요청금액이 취소가능금액을 초과합니다."``; ``checksum`` mismatch: code 1
  ``"취소가능잔액(checksum)이 일치하지 않습니다."``. A fully cancelled scheduled payment turns its schedule's
  ``payment_status`` into ``cancelled``.
* ``/payments/status/all`` puts each payment on its own status's time axis. ``merchant_uid[]`` multi-lookup
  returns every attempt of the order. More than 100 ids: 400. ``from``/``to`` wider than 90 days: 400.
* Schedule windows: ``to - from`` at most 92 days (three calendar months at most) else 400; customer
  schedule listings and customer payments use pages of 20; schedule listings default to newest first,
  ``sorting=scheduled`` gives oldest first; customer payments are newest first.
* 401 body: ``{"code": -1, "message": "Unauthorized", "response": null}``. ``X-ImpTokenHeader`` is not
  accepted (only ``Authorization``, with or without ``Bearer``).
* Page numbers: ``page < 1`` or a page past the last non-empty one is a 400.
"""

from __future__ import annotations

import hashlib
import heapq
import random
import re
import threading
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Literal

import httpx
import orjson

from portone_recon.errors import SandboxError
from portone_recon.sandbox.clock import SandboxClock
from portone_recon.sandbox.variants import ApiVariant

Json = dict[str, Any]

#: Realistic Korean decline reasons (nice_v2 style ``[code] text``).
FAIL_REASONS: tuple[str, ...] = (
    "[F113] 카드 한도초과",
    "[F114] 잔액부족",
    "[F104] 거래정지 카드",
    "[F112] 유효기간 오류",
)

MSG_PAYMENT_NOT_FOUND = "존재하지 않는 결제정보입니다."
MSG_CANCEL_NOT_FOUND = "취소할 결제건이 존재하지 않습니다."
MSG_ALREADY_CANCELLED = "이미 전액취소된 주문입니다."
MSG_CANCEL_TOO_MUCH = "취소요청금액이 취소가능금액을 초과합니다."
MSG_CHECKSUM = "취소가능잔액(checksum)이 일치하지 않습니다."
MSG_NO_CUSTOMER = "등록된 고객정보가 없습니다."
MSG_UNSCHEDULE_NONE = "취소할 예약결제 기록이 존재하지 않습니다."
MSG_AGAIN_UNKNOWN = "등록되지 않은 구매자입니다."
MSG_AGAIN_ALREADY_PAID = "이미 결제완료된 주문입니다."
MSG_ISSUE_FAILED = "카드정보 인증 및 빌키 발급에 실패하였습니다."
MSG_SCHEDULE_CARD_FAILED = "카드정보 확인에 실패하였습니다."
MSG_SCHEDULE_NOT_FOUND = "요청하신 merchant_uid({mu})의 예약결제 정보가 존재하지 않습니다."
MSG_UNAUTHORIZED = "Unauthorized"


def msg_customer_not_found(customer_uid: str) -> str:
    """The 404 message for an unknown billing key."""
    return f"요청하신 customer_uid({customer_uid})로 등록된 정보를 찾을 수 없습니다."


def msg_duplicate_schedule(merchant_uid: str) -> str:
    """The code-1 message for a schedule ``merchant_uid`` already in use (UNCONFIRMED wording)."""
    return f"이미 등록된 merchant_uid({merchant_uid})의 예약결제가 존재합니다."


class SandboxRefusal(SandboxError):
    """A business refusal: HTTP 200 with ``{code, message, response: null}``."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"code {code}: {message}")
        self.code = code
        self.message = message


class SandboxNotFound(SandboxError):
    """A missing object: HTTP 404 with code -1."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class SandboxBadRequest(SandboxError):
    """Bad parameters: HTTP 400 with code -1."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class SandboxUnauthorized(SandboxError):
    """Bad credentials or a missing/unknown/expired token: HTTP 401."""

    def __init__(self, message: str = MSG_UNAUTHORIZED) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class CardBehaviour:
    """How a billing key's card answers charges.

    Attributes:
        mode: ``approve`` always, ``decline`` always, ``decline_nth`` (the charges numbered in ``nths``,
            or ``nth``, 1-based per key, decline), ``rate`` (each charge declines with probability
            ``rate``, drawn from the world's seeded card RNG).
        fail_reason: the PG's Korean reason on a decline.
    """

    mode: Literal["approve", "decline", "decline_nth", "rate"] = "approve"
    nth: int = 0
    nths: frozenset[int] = field(default_factory=frozenset)
    rate: float = 0.0
    fail_reason: str = FAIL_REASONS[0]

    @classmethod
    def approve(cls) -> CardBehaviour:
        """Every charge is approved."""
        return cls("approve")

    @classmethod
    def decline(cls, reason: str | None = None) -> CardBehaviour:
        """Every charge is declined with ``reason`` (default: limit exceeded)."""
        return cls("decline", fail_reason=reason or FAIL_REASONS[0])

    @classmethod
    def decline_nth(cls, *n: int, reason: str | None = None) -> CardBehaviour:
        """The n-th charges (1-based, counted per key) decline; the others are approved."""
        if not n or any(k < 1 for k in n):
            raise ValueError(f"decline_nth needs charge numbers >= 1, got {n!r}")
        return cls("decline_nth", nth=n[0], nths=frozenset(n), fail_reason=reason or FAIL_REASONS[0])

    @classmethod
    def decline_rate(cls, p: float, reason: str | None = None) -> CardBehaviour:
        """Each charge declines with probability ``p`` (also reachable as ``CardBehaviour.rate(p)``)."""
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"decline rate must be within [0, 1], got {p}")
        return cls("rate", rate=p, fail_reason=reason or FAIL_REASONS[1])

    def declines(self, charge_number: int, rng: random.Random) -> bool:
        """Whether charge number ``charge_number`` (1-based) of this key declines."""
        if self.mode == "approve":
            return False
        if self.mode == "decline":
            return True
        if self.mode == "decline_nth":
            return charge_number in (self.nths or frozenset((self.nth,)))
        return rng.random() < self.rate


class _RateFactory:
    """``CardBehaviour.rate(p)`` on the class is the factory; ``behaviour.rate`` on an instance is the float.

    A non-data descriptor: the dataclass field stored in the instance ``__dict__`` wins on instances.
    """

    def __get__(self, obj: object, objtype: type[CardBehaviour] | None = None) -> Any:
        if obj is not None:  # pragma: no cover - instance attribute shadows the descriptor
            return obj.__dict__["rate"]
        return CardBehaviour.decline_rate


CardBehaviour.rate = _RateFactory()  # type: ignore[assignment]


@dataclass
class Webhook:
    """One webhook event (V1 body ``{imp_uid, merchant_uid, status}`` [+ ``cancellation_id``]).

    Attributes:
        url: the ``notice_url`` of the payment/schedule, else the account default (None: nowhere).
        body: exactly what PortOne POSTs.
        at: unix second of the event.
        delivered: the sink received it (a callable returned / the URL answered 2xx).
        dropped: lost on purpose (loss rate or ``drop_webhooks_for``); never delivered.
        status_code: HTTP status of the delivery through a transport, when there was one.
        error: why a transport delivery failed, when it did.
    """

    url: str | None
    body: dict[str, Any]
    at: int
    delivered: bool = False
    dropped: bool = False
    status_code: int | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        return asdict(self)


# card company code, name, BIN shown in masked numbers
_CARD_COMPANIES: tuple[tuple[str, str, str], ...] = (
    ("366", "신한카드", "559410"),
    ("381", "국민카드", "540926"),
    ("365", "삼성카드", "536181"),
    ("367", "현대카드", "433290"),
)

#: Test card numbers (digits only) with a fixed behaviour; other well-formed numbers are approved.
#: ``"issue_fails"`` refuses issuance (code -1) like a card the PG cannot authenticate.
TEST_CARDS: dict[str, CardBehaviour | Literal["issue_fails"]] = {
    "4000000000000002": CardBehaviour.decline(FAIL_REASONS[0]),
    "4000000000009995": CardBehaviour.decline(FAIL_REASONS[1]),
    "4000000000000069": CardBehaviour.decline(FAIL_REASONS[3]),
    "4000000000000341": CardBehaviour.decline_nth(2),
    "4000000000000127": "issue_fails",
}

PAYMENT_STATUSES = ("ready", "paid", "failed", "cancelled")
SCHEDULE_STATUSES = ("scheduled", "executed", "revoked")
#: per-status time axis of ``/payments/status/{status}``
STATUS_AXIS = {"ready": "started_at", "paid": "paid_at", "failed": "failed_at", "cancelled": "cancelled_at"}
PAYMENT_SORTINGS = ("-started", "started", "-paid", "paid", "-updated", "updated")
SCHEDULE_SORTINGS = ("-scheduled", "scheduled", "-schedule_at", "schedule_at")
_UID = re.compile(r"^[A-Za-z0-9_\-.:@]{1,80}$")

WebhookSink = Callable[[Webhook], None] | httpx.BaseTransport


def _updated_at(p: Json, refunds: bool = True) -> int:
    latest = max(p["started_at"], p["paid_at"], p["failed_at"], p["cancelled_at"])
    if refunds:
        for c in p["cancel_history"]:
            latest = max(latest, c["cancelled_at"])
    return int(latest)


_SORT_KEYS: dict[str, Callable[[Json], int]] = {
    "started": lambda p: int(p["started_at"]),
    "paid": lambda p: int(p["paid_at"]),
    "updated": _updated_at,
}


def _amount(value: Any, name: str, *, allow_zero: bool = False) -> int:
    """A KRW amount as int (integral floats accepted), else SandboxBadRequest naming the field."""
    if isinstance(value, bool):
        raise SandboxBadRequest(f"{name}: 금액은 숫자여야 합니다 (got {value!r})")
    if isinstance(value, str):
        try:
            value = float(value) if "." in value else int(value)
        except ValueError:
            raise SandboxBadRequest(f"{name}: 금액은 숫자여야 합니다 (got {value!r})") from None
    if isinstance(value, float):
        if not value.is_integer():
            raise SandboxBadRequest(f"{name}: KRW 금액은 정수여야 합니다 (got {value!r})")
        value = int(value)
    if not isinstance(value, int):
        raise SandboxBadRequest(f"{name}: 금액은 숫자여야 합니다 (got {value!r})")
    if value < 0 or (value == 0 and not allow_zero):
        raise SandboxBadRequest(f"{name}: 금액은 0보다 커야 합니다 (got {value!r})")
    return value


def _unix(value: Any, name: str) -> int:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise SandboxBadRequest(f"{name}: naive datetime {value!r}")
        return int(value.timestamp())
    if isinstance(value, bool):
        raise SandboxBadRequest(f"{name}: unix seconds expected (got {value!r})")
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if not isinstance(value, int):
        raise SandboxBadRequest(f"{name}: unix seconds expected (got {value!r})")
    return value


def _uid(value: Any, name: str, *, max_len: int = 80) -> str:
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise SandboxBadRequest(f"{name}: 1..{max_len}자 문자열이어야 합니다 (got {value!r})")
    return value


class SandboxWorld:
    """A stateful PortOne V1 merchant account driven by a caller-controlled clock.

    Args:
        start: the clock's initial instant (timezone-aware).
        seed: seeds every random choice (same seed and same calls -> same world).
        imp_key: the REST API key the token endpoint accepts.
        imp_secret: the REST API secret (never shown in a repr).
        default_notice_url: the console webhook URL used when a payment/schedule has no ``notice_url``.
        webhook_sink: where webhooks go: a callable (in-process merchant handler), an httpx transport
            (POSTed as JSON to the webhook's URL), or None (kept in :attr:`outbox` only).
        webhook_loss_rate: probability that a webhook is lost (drawn from a seeded RNG).
        pg_provider: the PG of issued keys and their payments.
    """

    def __init__(
        self,
        *,
        start: datetime,
        seed: int = 0,
        imp_key: str = "sandbox_key",
        imp_secret: str = "sandbox_secret",
        default_notice_url: str | None = None,
        webhook_sink: WebhookSink | None = None,
        webhook_loss_rate: float = 0.0,
        pg_provider: str = "nice_v2",
    ) -> None:
        if not 0.0 <= webhook_loss_rate <= 1.0:
            raise SandboxError(f"webhook_loss_rate must be within [0, 1], got {webhook_loss_rate}")
        self.clock = SandboxClock(start)
        self.seed = seed
        self.imp_key = imp_key
        self._imp_secret = imp_secret
        self.default_notice_url = default_notice_url
        self.webhook_sink = webhook_sink
        self.webhook_loss_rate = webhook_loss_rate
        self.pg_provider = pg_provider
        self.pg_id = "nictest04m" if pg_provider.startswith("nice") else f"{pg_provider}_mid"

        self.payments: dict[str, Json] = {}
        self.payment_ids_by_merchant_uid: dict[str, list[str]] = {}
        self.schedules: dict[str, Json] = {}
        self.billing_keys: dict[str, Json] = {}
        self.deleted_billing_keys: dict[str, Json] = {}
        self.card_behaviours: dict[str, CardBehaviour] = {}
        #: charges attempted per customer_uid (drives ``decline_nth``)
        self.charge_counts: dict[str, int] = {}
        self.outbox: list[Webhook] = []
        self.drop_webhooks_for: set[str] = set()
        #: the request log of the HTTP surface: dicts with method, path, query, status, route
        self.requests: list[dict[str, Any]] = []
        #: notice_url given on a schedule entry / again call (not part of the API objects)
        self.schedule_notice_urls: dict[str, str] = {}
        self.payment_notice_urls: dict[str, str] = {}

        self.lock = threading.RLock()
        self._tl = threading.local()
        self._card_rng = random.Random(f"card:{seed}")
        self._webhook_rng = random.Random(f"webhook:{seed}")
        self._imp_counter = 0
        self._cancel_counter = 0
        self._token_counter = 0
        self._token: str | None = None
        self._token_expired_at = 0
        self._webhook_client: httpx.Client | None = None

        # derived indexes (see module docstring)
        self._pix: dict[str, tuple[list[int], list[str]]] | None = None
        self._pix_n = -1
        self._pay_version = 0
        self._six: tuple[list[int], list[str]] | None = None
        self._six_n = -1
        self._sched_version = 0
        self._heap: list[tuple[int, str]] = []
        self._heap_n = 0
        self._pay_by_cu: dict[str, list[str]] | None = None
        self._pay_by_cu_n = -1
        self._sched_by_cu: dict[str, list[str]] | None = None
        self._sched_by_cu_n = -1
        self._query_cache: OrderedDict[tuple[Any, ...], list[str]] = OrderedDict()

        from portone_recon.sandbox.faults import Faults  # local: faults imports nothing from here

        self.faults = Faults(seed=seed)
        #: the reading of unsettled V1 behaviours this world plays (set it before adding data)
        self.variant = ApiVariant()

    # ------------------------------------------------------------------ basics
    def __repr__(self) -> str:
        return (
            f"SandboxWorld(now={self.clock.now.isoformat()}, payments={len(self.payments)}, "
            f"schedules={len(self.schedules)}, billing_keys={len(self.billing_keys)}, "
            f"webhooks={len(self.outbox)})"
        )

    def _repr_html_(self) -> str:
        try:
            rows = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in self.summary().items())
            return f"<table><caption>PortOne sandbox</caption>{rows}</table>"
        except Exception:  # _repr_html_ must never raise
            return "<pre>SandboxWorld</pre>"

    @property
    def request_log(self) -> list[dict[str, Any]]:
        """Alias of :attr:`requests`."""
        return self.requests

    @property
    def imp_secret(self) -> str:
        """The REST API secret (for wiring a client; never printed by the world)."""
        return self._imp_secret

    @property
    def now(self) -> int:
        """The clock's unix second."""
        return self.clock.now_unix

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the world lock; webhooks fired inside are delivered after the outermost exit."""
        tl = self._tl
        with self.lock:
            depth = getattr(tl, "depth", 0)
            if depth == 0:
                tl.pending = []
            tl.depth = depth + 1
            try:
                yield
            finally:
                tl.depth = depth
        if depth == 0:
            pending: list[Webhook] = tl.pending
            tl.pending = []
            for hook in pending:
                self._deliver(hook)

    def locked(self) -> Any:
        """Context manager for callers (HTTP layer) that run several operations as one."""
        return self._locked()

    def new_imp_uid(self) -> str:
        """A fresh PortOne payment id: ``imp_`` + 12 digits from a counter."""
        self._imp_counter += 1
        return f"imp_{100000000000 + self._imp_counter * 7:012d}"

    def _new_cancellation_id(self) -> str:
        self._cancel_counter += 1
        return f"cncl_{self._cancel_counter:012d}"

    # ------------------------------------------------------------------ tokens
    def issue_token(self, imp_key: Any, imp_secret: Any) -> Json:
        """``POST /users/getToken``: same token while valid, +5 min in its last minute, new after expiry."""
        with self._locked():
            if imp_key != self.imp_key or imp_secret != self._imp_secret:
                raise SandboxUnauthorized()
            now = self.now
            if self._token is not None and now < self._token_expired_at:
                if self._token_expired_at - now < 60:
                    self._token_expired_at += 300
            else:
                self._token_counter += 1
                digest = hashlib.sha256(f"token:{self.seed}:{self._token_counter}".encode()).hexdigest()
                self._token = digest[:40]
                self._token_expired_at = now + 1800
            return {"access_token": self._token, "now": now, "expired_at": self._token_expired_at}

    def check_token(self, authorization: str | None) -> None:
        """Accept ``Bearer <t>`` or a bare ``<t>``; raise :class:`SandboxUnauthorized` otherwise."""
        if not authorization:
            raise SandboxUnauthorized()
        value = authorization.strip()
        if value[:7].lower() == "bearer ":
            value = value[7:].strip()
        if self._token is None or value != self._token or self.now >= self._token_expired_at:
            raise SandboxUnauthorized()

    def expire_token(self) -> None:
        """Fault: the current token expires now (the next call with it gets 401)."""
        with self._locked():
            self._token_expired_at = min(self._token_expired_at, self.now)

    @property
    def token_expired_at(self) -> int:
        """Expiry (unix) of the current token, 0 if none was issued."""
        return self._token_expired_at

    # ------------------------------------------------------------------ billing keys
    def issue_billing_key(
        self,
        customer_uid: str,
        *,
        card_number: str = "4242-4242-4242-4242",
        expiry: str = "2030-12",
        birth: str | None = "900101",
        behaviour: CardBehaviour | None = None,
        customer_name: str | None = None,
        customer_email: str | None = None,
        customer_tel: str | None = None,
        customer_id: str | None = None,
        customer_addr: str | None = None,
        customer_postcode: str | None = None,
        pwd_2digit: str | None = None,
        pg: str | None = None,
        channel_group_id: str | None = None,
    ) -> Json:
        """``POST /subscribe/customers/{customer_uid}``: issue (or replace) a billing key from card data.

        ``channel_group_id`` issues a super billing key (smart routing): the key carries its
        ``channelGroupId``, and the ``lookup_leaves_out = "super"`` variant hides it from multi-lookups.

        Raises:
            SandboxRefusal: code -1 when the card cannot be authenticated (bad number, expired, test card
                ``4000-0000-0000-0127``).
        """
        _uid(customer_uid, "customer_uid")
        with self._locked():
            digits = re.sub(r"[\s-]", "", str(card_number))
            if not digits.isdigit() or not 14 <= len(digits) <= 16:
                raise SandboxRefusal(-1, f"{MSG_ISSUE_FAILED} [F112] 유효하지않은 카드번호를 입력하셨습니다.")
            m = re.fullmatch(r"(\d{4})-?(\d{2})", str(expiry))
            now_kst = self.clock.now
            if not m or not 1 <= int(m.group(2)) <= 12:
                raise SandboxRefusal(-1, f"{MSG_ISSUE_FAILED} [F112] 유효기간 형식이 올바르지 않습니다.")
            if (int(m.group(1)), int(m.group(2))) < (now_kst.year, now_kst.month):
                raise SandboxRefusal(-1, f"{MSG_ISSUE_FAILED} [F112] 유효기간 오류")
            test = TEST_CARDS.get(digits)
            if test == "issue_fails":
                raise SandboxRefusal(-1, f"{MSG_ISSUE_FAILED} [F113] 카드정보 인증에 실패하였습니다.")
            code, card_name, bin6 = _CARD_COMPANIES[int(digits[-4:]) % len(_CARD_COMPANIES)]
            now = self.now
            key: Json = {
                "customer_uid": customer_uid,
                "pg_provider": self.pg_provider,
                "pg_id": self.pg_id,
                "sandbox": False,
                "customer_id": customer_id,
                "card_name": card_name,
                "card_code": code,
                "card_number": f"{bin6}*********{digits[-1]}",
                "card_type": int(digits[-2]) % 2
                if self.variant.card_type == "int"
                else str(int(digits[-2]) % 2),
                "customer_name": customer_name,
                "customer_tel": customer_tel,
                "customer_email": customer_email,
                "customer_addr": customer_addr,
                "customer_postcode": customer_postcode,
                "inserted": now,
                "updated": now,
            }
            if channel_group_id is not None:
                key["channelGroupId"] = channel_group_id
            self.billing_keys[customer_uid] = key
            self.deleted_billing_keys.pop(customer_uid, None)
            if behaviour is not None:
                self.card_behaviours[customer_uid] = behaviour
            elif isinstance(test, CardBehaviour):
                self.card_behaviours[customer_uid] = test
            else:
                self.card_behaviours.pop(customer_uid, None)
            return dict(key)

    def get_billing_key(self, customer_uid: str) -> Json:
        """``GET /subscribe/customers/{customer_uid}`` (404 for unknown or deleted keys)."""
        key = self.billing_keys.get(customer_uid)
        if key is None:
            raise SandboxNotFound(msg_customer_not_found(customer_uid))
        return dict(key)

    def delete_billing_key(self, customer_uid: str, reason: str | None = None) -> Json:
        """``DELETE /subscribe/customers/{customer_uid}``; its schedules are NOT revoked (see docstring)."""
        with self._locked():
            key = self.billing_keys.pop(customer_uid, None)
            if key is None:
                raise SandboxNotFound(msg_customer_not_found(customer_uid))
            key = {**key, "updated": self.now}
            self.deleted_billing_keys[customer_uid] = key
            return dict(key)

    # ------------------------------------------------------------------ payments (internal)
    def _build_payment(
        self,
        *,
        customer_uid: str,
        merchant_uid: str,
        amount: int,
        name: str | None,
        currency: str,
        usage: str,
        buyer: dict[str, Any],
        custom_data: str | None,
        fail_reason: str | None,
    ) -> Json:
        key = self.billing_keys.get(customer_uid) or self.deleted_billing_keys.get(customer_uid) or {}
        imp_uid = self.new_imp_uid()
        n = self._imp_counter
        now = self.now
        paid = fail_reason is None
        pg_id = key.get("pg_id", self.pg_id)
        pg_tid = f"{pg_id}01{n:012d}"
        return {
            "imp_uid": imp_uid,
            "merchant_uid": merchant_uid,
            "pay_method": "card",
            "channel": "api",
            "pg_provider": key.get("pg_provider", self.pg_provider),
            "emb_pg_provider": None,
            "pg_tid": pg_tid,
            "pg_id": pg_id,
            "sandbox": False,
            "escrow": False,
            "apply_num": f"{(n * 7919 + 31) % 10**8:08d}" if paid else None,
            "bank_code": None,
            "bank_name": None,
            "card_code": key.get("card_code"),
            "card_name": key.get("card_name"),
            "card_quota": 0,
            "card_number": key.get("card_number"),
            "card_type": key.get("card_type"),
            "vbank_code": None,
            "vbank_name": None,
            "vbank_num": None,
            "vbank_holder": None,
            "vbank_date": 0,
            "vbank_issued_at": 0,
            "name": name,
            "amount": amount,
            "cancel_amount": 0,
            "currency": currency,
            "buyer_name": buyer.get("buyer_name", key.get("customer_name")),
            "buyer_email": buyer.get("buyer_email", key.get("customer_email")),
            "buyer_tel": buyer.get("buyer_tel", key.get("customer_tel")),
            "buyer_addr": buyer.get("buyer_addr", key.get("customer_addr")),
            "buyer_postcode": buyer.get("buyer_postcode", key.get("customer_postcode")),
            "custom_data": custom_data,
            "user_agent": None,
            "status": "paid" if paid else "failed",
            "started_at": now,
            "paid_at": now if paid else 0,
            "failed_at": 0 if paid else now,
            "cancelled_at": 0,
            "fail_reason": fail_reason,
            "cancel_reason": None,
            "receipt_url": (
                f"https://npg.nicepay.co.kr/issue/IssueLoader.do?type=0&TID={pg_tid}" if paid else None
            ),
            "cancel_history": [],
            "cancel_receipt_urls": [],
            "cash_receipt_issued": False,
            "customer_uid": customer_uid,
            "customer_uid_usage": usage,
        }

    def _decide(self, customer_uid: str) -> str | None:
        """Count a charge on ``customer_uid`` and return the decline reason, or None when approved."""
        count = self.charge_counts.get(customer_uid, 0) + 1
        self.charge_counts[customer_uid] = count
        if customer_uid not in self.billing_keys:
            return MSG_NO_CUSTOMER
        behaviour = self.card_behaviours.get(customer_uid)
        if behaviour is None or not behaviour.declines(count, self._card_rng):
            return None
        return behaviour.fail_reason

    def add_payment(self, payment: Json) -> None:
        """Insert a payment JSON built elsewhere (bulk builders), keeping every index consistent."""
        with self._locked():
            imp_uid = payment["imp_uid"]
            if imp_uid in self.payments:
                raise SandboxError(f"payment {imp_uid} already exists")
            in_sync = self._pix is not None and self._pix_n == len(self.payments)
            cu_sync = self._pay_by_cu is not None and self._pay_by_cu_n == len(self.payments)
            self.payments[imp_uid] = payment
            self.payment_ids_by_merchant_uid.setdefault(payment["merchant_uid"], []).append(imp_uid)
            if in_sync:
                self._pix_insert(payment)
                self._pix_n += 1
            if cu_sync and self._pay_by_cu is not None:
                if payment.get("customer_uid"):
                    self._pay_by_cu.setdefault(payment["customer_uid"], []).append(imp_uid)
                self._pay_by_cu_n += 1
            self._pay_version += 1

    def _pix_insert(self, p: Json) -> None:
        assert self._pix is not None
        status = p["status"]
        ts_list, ids = self._pix[status]
        ts = int(p[STATUS_AXIS[status]])
        i = bisect_right(ts_list, ts)
        ts_list.insert(i, ts)
        ids.insert(i, p["imp_uid"])

    def _pix_remove(self, imp_uid: str, status: str, ts: int) -> None:
        assert self._pix is not None
        ts_list, ids = self._pix[status]
        lo = bisect_left(ts_list, ts)
        hi = bisect_right(ts_list, ts)
        for i in range(lo, hi):
            if ids[i] == imp_uid:
                del ts_list[i]
                del ids[i]
                return

    def _payment_changed(self, p: Json, old_status: str, old_ts: int) -> None:
        """Re-index a payment whose status or axis time changed (called under the lock)."""
        if self._pix is not None and self._pix_n == len(self.payments):
            self._pix_remove(p["imp_uid"], old_status, old_ts)
            self._pix_insert(p)
        self._pay_version += 1

    def _fire(self, url: str | None, body: dict[str, Any]) -> Webhook:
        """Record a webhook in the outbox (dropped or not); delivery happens after the lock is released."""
        dropped = (
            body.get("imp_uid") in self.drop_webhooks_for
            or body.get("merchant_uid") in self.drop_webhooks_for
        )
        if not dropped and self.webhook_loss_rate > 0.0:
            dropped = self._webhook_rng.random() < self.webhook_loss_rate
        hook = Webhook(url=url or self.default_notice_url, body=body, at=self.now, dropped=dropped)
        self.outbox.append(hook)
        if getattr(self._tl, "depth", 0) == 0:  # called outside _locked: deliver right away
            self._deliver(hook)
        else:
            self._tl.pending.append(hook)
        return hook

    def _deliver(self, hook: Webhook) -> None:
        sink = self.webhook_sink
        if hook.dropped or sink is None:
            return
        if isinstance(sink, httpx.BaseTransport):
            if not hook.url:
                hook.error = "no notice_url and no default_notice_url"
                return
            if self._webhook_client is None:
                self._webhook_client = httpx.Client(transport=sink, timeout=30.0)
            try:
                resp = self._webhook_client.post(hook.url, json=hook.body)
            except httpx.HTTPError as exc:
                hook.error = f"{type(exc).__name__}: {exc}"
                return
            hook.status_code = resp.status_code
            hook.delivered = 200 <= resp.status_code < 300
            return
        sink(hook)  # an in-process handler: its exceptions propagate (they are the merchant's bugs)
        hook.delivered = True

    # ------------------------------------------------------------------ payments (operations)
    def pay_again(
        self,
        *,
        customer_uid: str,
        merchant_uid: str,
        amount: Any,
        name: str | None = None,
        notice_url: str | None = None,
        custom_data: str | None = None,
        currency: str = "KRW",
        **buyer: Any,
    ) -> Json:
        """``POST /subscribe/payments/again``: charge a billing key now (check ``status``: may be failed)."""
        _uid(customer_uid, "customer_uid")
        _uid(merchant_uid, "merchant_uid", max_len=40)
        value = _amount(amount, "amount")
        with self._locked():
            if customer_uid not in self.billing_keys:
                raise SandboxRefusal(-1, MSG_AGAIN_UNKNOWN)
            for imp in self.payment_ids_by_merchant_uid.get(merchant_uid, ()):
                if self.payments[imp]["status"] in ("paid", "cancelled"):
                    raise SandboxRefusal(1, MSG_AGAIN_ALREADY_PAID)
            reason = self._decide(customer_uid)
            buyer_fields = {k: v for k, v in buyer.items() if k.startswith("buyer_")}
            p = self._build_payment(
                customer_uid=customer_uid,
                merchant_uid=merchant_uid,
                amount=value,
                name=name,
                currency=currency or "KRW",
                usage="payment",
                buyer=buyer_fields,
                custom_data=custom_data,
                fail_reason=reason,
            )
            self.add_payment(p)
            if notice_url:
                self.payment_notice_urls[p["imp_uid"]] = notice_url
            if p["status"] == "paid":  # a failed again sends no webhook
                self._fire(
                    notice_url, {"imp_uid": p["imp_uid"], "merchant_uid": merchant_uid, "status": "paid"}
                )
            return _copy_payment(p)

    def get_payment(self, imp_uid: str) -> Json:
        """``GET /payments/{imp_uid}``."""
        p = self.payments.get(imp_uid)
        if p is None:
            raise SandboxNotFound(MSG_PAYMENT_NOT_FOUND)
        return p

    def cancel_payment(
        self,
        *,
        imp_uid: str | None = None,
        merchant_uid: str | None = None,
        amount: Any = None,
        reason: str | None = None,
        checksum: Any = None,
        enable_webhook: bool = False,
        from_console: bool = False,
        **_extra: Any,
    ) -> Json:
        """``POST /payments/cancel`` (``from_console=True``: a refund made in the admin console).

        ``amount`` None or 0 cancels the whole remaining balance; a partial cancel keeps ``paid`` and raises
        ``cancel_amount``; reaching the full amount makes the payment ``cancelled``.
        """
        if not imp_uid and not merchant_uid:
            raise SandboxBadRequest("imp_uid 또는 merchant_uid 중 하나는 필수입니다.")
        want = None if amount in (None, 0, "0", "") else _amount(amount, "amount")
        with self._locked():
            p: Json | None = None
            if imp_uid:
                p = self.payments.get(imp_uid)
            else:
                attempts = [
                    self.payments[i] for i in self.payment_ids_by_merchant_uid.get(str(merchant_uid), ())
                ]
                paid = [a for a in attempts if a["status"] == "paid"]
                cancelled = [a for a in attempts if a["status"] == "cancelled"]
                p = paid[-1] if paid else (cancelled[-1] if cancelled else None)
            if p is None:
                raise SandboxRefusal(1, MSG_CANCEL_NOT_FOUND)
            if p["status"] == "cancelled" and int(p["cancel_amount"]) >= int(p["amount"]):
                raise SandboxRefusal(1, MSG_ALREADY_CANCELLED)
            if p["status"] not in ("paid", "cancelled"):
                raise SandboxRefusal(1, MSG_CANCEL_NOT_FOUND)
            remaining = int(p["amount"]) - int(p["cancel_amount"])
            if (
                checksum is not None
                and checksum != ""
                and _amount(checksum, "checksum", allow_zero=True) != remaining
            ):
                raise SandboxRefusal(1, MSG_CHECKSUM)
            value = remaining if want is None else want
            if value > remaining:
                raise SandboxRefusal(1, MSG_CANCEL_TOO_MUCH)
            now = self.now
            cancellation_id = self._new_cancellation_id()
            pg_tid = f"{p['pg_tid']}c{len(p['cancel_history']) + 1}"
            receipt = f"https://npg.nicepay.co.kr/issue/IssueLoader.do?type=1&TID={pg_tid}"
            old_status, old_ts = p["status"], int(p[STATUS_AXIS[p["status"]]])
            p["cancel_history"].append(
                {
                    "pg_tid": pg_tid,
                    "amount": value,
                    "cancelled_at": now,
                    "reason": reason,
                    "cancellation_id": cancellation_id,
                    "receipt_url": receipt,
                }
            )
            p["cancel_receipt_urls"].append(receipt)
            p["cancel_amount"] = int(p["cancel_amount"]) + value
            p["cancel_reason"] = reason
            if p["cancel_amount"] >= p["amount"] or self.variant.partial_cancel_status == "cancelled":
                p["status"] = "cancelled"
                p["cancelled_at"] = now
                sched = self.schedules.get(p["merchant_uid"])
                if sched is not None and sched.get("imp_uid") == p["imp_uid"]:
                    sched["payment_status"] = "cancelled"
                    self._sched_version += 1
            self._payment_changed(p, old_status, old_ts)
            if enable_webhook or from_console:
                self._fire(
                    self.payment_notice_urls.get(p["imp_uid"])
                    or self.schedule_notice_urls.get(p["merchant_uid"]),
                    {
                        "imp_uid": p["imp_uid"],
                        "merchant_uid": p["merchant_uid"],
                        "status": p["status"],
                        "cancellation_id": cancellation_id,
                    },
                )
            return _copy_payment(p)

    # ------------------------------------------------------------------ schedules
    def _schedule_json(self, customer_uid: str, entry: dict[str, Any], i: int, key: Json) -> Json:
        where = f"schedules[{i}]"
        if not isinstance(entry, dict):
            raise SandboxBadRequest(f"{where}: 객체여야 합니다")
        mu = _uid(entry.get("merchant_uid"), f"{where}.merchant_uid", max_len=40)
        if "schedule_at" not in entry:
            raise SandboxBadRequest(f"{where}.schedule_at: 필수 파라미터입니다")
        at = _unix(entry["schedule_at"], f"{where}.schedule_at")
        if "amount" not in entry:
            raise SandboxBadRequest(f"{where}.amount: 필수 파라미터입니다")
        amount = _amount(entry["amount"], f"{where}.amount")
        if at < self.now:
            raise SandboxBadRequest(
                f"{where}.schedule_at: 예약시각({at})이 현재시각({self.now})보다 이전입니다"
            )

        def pick(name: str, fallback: str) -> Any:
            return entry[name] if entry.get(name) is not None else key.get(fallback)

        return {
            "customer_uid": customer_uid,
            "merchant_uid": mu,
            "imp_uid": None,
            "pg_provider": key.get("pg_provider", self.pg_provider),
            "pg_id": key.get("pg_id", self.pg_id),
            "customer_id": key.get("customer_id"),
            "schedule_at": at,
            "executed_at": 0,
            "revoked_at": 0,
            "amount": amount,
            "currency": entry.get("currency") or "KRW",
            "name": entry.get("name"),
            "buyer_name": pick("buyer_name", "customer_name"),
            "buyer_email": pick("buyer_email", "customer_email"),
            "buyer_tel": pick("buyer_tel", "customer_tel"),
            "buyer_addr": pick("buyer_addr", "customer_addr"),
            "buyer_postcode": pick("buyer_postcode", "customer_postcode"),
            "custom_data": entry.get("custom_data"),
            "schedule_status": "scheduled",
            "payment_status": None,
            "fail_reason": None,
            "promotion_id": entry.get("promotion_id"),
        }

    def create_schedules(
        self,
        customer_uid: str,
        entries: Sequence[dict[str, Any]],
        *,
        card_number: str | None = None,
        expiry: str | None = None,
        birth: str | None = None,
        pwd_2digit: str | None = None,
        customer_id: str | None = None,
    ) -> list[Json]:
        """``POST /subscribe/payments/schedule``: all entries are stored, or none (duplicate -> code 1)."""
        _uid(customer_uid, "customer_uid")
        if not isinstance(entries, list | tuple) or not entries:
            raise SandboxBadRequest("schedules: 1개 이상의 예약 정보가 필요합니다")
        with self._locked():
            key = self.billing_keys.get(customer_uid)
            if key is None and not card_number:
                raise SandboxRefusal(1, MSG_NO_CUSTOMER)
            built = [self._schedule_json(customer_uid, dict(e), i, key or {}) for i, e in enumerate(entries)]
            seen: set[str] = set()
            for s in built:
                mu = s["merchant_uid"]
                paid = any(
                    self.payments[i]["status"] in ("paid", "cancelled")
                    for i in self.payment_ids_by_merchant_uid.get(mu, ())
                )
                if mu in seen or mu in self.schedules or paid:
                    raise SandboxRefusal(1, msg_duplicate_schedule(mu))
                seen.add(mu)
            if key is None:
                try:
                    self.issue_billing_key(
                        customer_uid,
                        card_number=str(card_number),
                        expiry=str(expiry or ""),
                        birth=birth,
                        pwd_2digit=pwd_2digit,
                        customer_id=customer_id,
                    )
                except SandboxRefusal as exc:
                    raise SandboxRefusal(1, f"{MSG_SCHEDULE_CARD_FAILED} {exc.message}") from None
                key = self.billing_keys[customer_uid]
                built = [self._schedule_json(customer_uid, dict(e), i, key) for i, e in enumerate(entries)]
            for s, e in zip(built, entries, strict=True):
                self._add_schedule(s)
                url = e.get("notice_url")
                if url:
                    self.schedule_notice_urls[s["merchant_uid"]] = str(url)
            return [dict(s) for s in built]

    def add_schedule(self, schedule: Json, *, notice_url: str | None = None) -> None:
        """Insert a schedule JSON built elsewhere (bulk builders), keeping every index consistent."""
        with self._locked():
            if schedule["merchant_uid"] in self.schedules:
                raise SandboxError(f"schedule {schedule['merchant_uid']} already exists")
            self._add_schedule(schedule)
            if notice_url:
                self.schedule_notice_urls[schedule["merchant_uid"]] = notice_url

    def _add_schedule(self, s: Json) -> None:
        mu = s["merchant_uid"]
        n_before = len(self.schedules)
        six_sync = self._six is not None and self._six_n == n_before
        cu_sync = self._sched_by_cu is not None and self._sched_by_cu_n == n_before
        heap_sync = self._heap_n == n_before
        self.schedules[mu] = s
        if six_sync and self._six is not None:
            ts_list, ids = self._six
            i = bisect_right(ts_list, s["schedule_at"])
            ts_list.insert(i, s["schedule_at"])
            ids.insert(i, mu)
            self._six_n += 1
        if cu_sync and self._sched_by_cu is not None:
            self._sched_by_cu.setdefault(s["customer_uid"], []).append(mu)
            self._sched_by_cu_n += 1
        if heap_sync:
            if s["schedule_status"] == "scheduled":
                heapq.heappush(self._heap, (int(s["schedule_at"]), mu))
            self._heap_n += 1
        self._sched_version += 1

    def _move_schedule(self, s: Json, new_at: int) -> None:
        """Change ``schedule_at`` keeping the time index and the heap in step (under the lock)."""
        old_at = int(s["schedule_at"])
        mu = s["merchant_uid"]
        if self._six is not None and self._six_n == len(self.schedules):
            ts_list, ids = self._six
            lo, hi = bisect_left(ts_list, old_at), bisect_right(ts_list, old_at)
            for i in range(lo, hi):
                if ids[i] == mu:
                    del ts_list[i]
                    del ids[i]
                    break
            i = bisect_right(ts_list, new_at)
            ts_list.insert(i, new_at)
            ids.insert(i, mu)
        s["schedule_at"] = new_at
        self._sched_version += 1

    def _arm(self, s: Json) -> None:
        self._ensure_heap()
        heapq.heappush(self._heap, (int(s["schedule_at"]), s["merchant_uid"]))

    def get_schedule(self, merchant_uid: str) -> Json:
        """``GET /subscribe/payments/schedule/{merchant_uid}``."""
        s = self.schedules.get(merchant_uid)
        if s is None:
            raise SandboxNotFound(MSG_SCHEDULE_NOT_FOUND.format(mu=merchant_uid))
        return s

    def unschedule(
        self, *, customer_uid: str | None = None, merchant_uids: Iterable[str] | None = None
    ) -> list[Json]:
        """``POST /subscribe/payments/unschedule``: revoke ``scheduled`` entries (none -> code 1)."""
        if isinstance(merchant_uids, str):
            merchant_uids = [merchant_uids]
        mus = list(merchant_uids or [])
        if not customer_uid and not mus:
            raise SandboxBadRequest("customer_uid 또는 merchant_uid 중 하나는 필수입니다.")
        with self._locked():
            if mus:
                candidates = [self.schedules[m] for m in mus if m in self.schedules]
                if customer_uid:
                    candidates = [s for s in candidates if s["customer_uid"] == customer_uid]
            else:
                candidates = [self.schedules[m] for m in self._schedules_of(str(customer_uid))]
            revoke = [s for s in candidates if s["schedule_status"] == "scheduled"]
            if not revoke:
                raise SandboxRefusal(1, MSG_UNSCHEDULE_NONE)
            now = self.now
            for s in revoke:
                s["schedule_status"] = "revoked"
                s["revoked_at"] = now
            self._sched_version += 1
            return [dict(s) for s in revoke]

    def update_schedule(self, merchant_uid: str, schedule_at: Any) -> Json:
        """``PUT /subscribe/payments/schedule/{merchant_uid}``: move a still-``scheduled`` entry."""
        at = _unix(schedule_at, "schedule_at")
        with self._locked():
            s = self.get_schedule(merchant_uid)
            if s["schedule_status"] != "scheduled":
                raise SandboxBadRequest(f"이미 {s['schedule_status']} 상태인 예약결제는 변경할 수 없습니다.")
            if at < self.now:
                raise SandboxBadRequest(f"schedule_at: 예약시각({at})이 현재시각({self.now})보다 이전입니다")
            self._move_schedule(s, at)
            self._arm(s)
            return dict(s)

    def reschedule(self, merchant_uid: str, schedule_at: Any) -> Json:
        """``POST .../{merchant_uid}/reschedule``: re-arm a failed or revoked entry for a new time."""
        at = _unix(schedule_at, "schedule_at")
        with self._locked():
            s = self.get_schedule(merchant_uid)
            self._check_rearmable(s)
            if at < self.now:
                raise SandboxBadRequest(f"schedule_at: 예약시각({at})이 현재시각({self.now})보다 이전입니다")
            s.update(
                schedule_status="scheduled",
                payment_status=None,
                imp_uid=None,
                executed_at=0,
                revoked_at=0,
                fail_reason=None,
            )
            self._move_schedule(s, at)
            self._arm(s)
            return dict(s)

    @staticmethod
    def _check_rearmable(s: Json) -> None:
        if s["schedule_status"] == "scheduled":
            raise SandboxBadRequest("아직 실행되지 않은 예약결제입니다.")
        if s["schedule_status"] == "executed" and s["payment_status"] != "failed":
            raise SandboxBadRequest("이미 결제가 완료된 예약결제입니다.")

    def retry_schedule(self, merchant_uid: str) -> Json:
        """``POST .../{merchant_uid}/retry``: charge a failed or revoked entry now; returns the Payment."""
        with self._locked():
            s = self.get_schedule(merchant_uid)
            self._check_rearmable(s)
            if s["customer_uid"] not in self.billing_keys:
                raise SandboxNotFound(msg_customer_not_found(s["customer_uid"]))
            p = self._execute(s)
            return _copy_payment(p)

    def _execute(self, s: Json) -> Json:
        """Charge a schedule now (under the lock): payment, schedule update, webhook."""
        reason = self._decide(s["customer_uid"])
        p = self._build_payment(
            customer_uid=s["customer_uid"],
            merchant_uid=s["merchant_uid"],
            amount=int(s["amount"]),
            name=s.get("name"),
            currency=s.get("currency") or "KRW",
            usage="payment.scheduled",
            buyer={
                k: s[k] for k in ("buyer_name", "buyer_email", "buyer_tel", "buyer_addr", "buyer_postcode")
            },
            custom_data=s.get("custom_data"),
            fail_reason=reason,
        )
        self.add_payment(p)
        s.update(
            schedule_status="executed",
            executed_at=self.now,
            revoked_at=0,
            imp_uid=p["imp_uid"],
            payment_status=p["status"],
            fail_reason=p["fail_reason"],
        )
        self._sched_version += 1
        self._fire(
            self.schedule_notice_urls.get(s["merchant_uid"]),
            {"imp_uid": p["imp_uid"], "merchant_uid": s["merchant_uid"], "status": p["status"]},
        )
        return p

    # ------------------------------------------------------------------ the clock
    def advance(self, *, to: datetime | None = None, seconds: float | None = None) -> list[Webhook]:
        """Move the clock, executing due schedules in (schedule_at, merchant_uid) order at their own instant.

        Webhook handlers run between executions (without the world lock) and may call back into the world,
        e.g. to book the next schedule; a schedule they book inside the advanced span also executes.

        Returns:
            the webhooks fired during the advance (delivered, dropped or kept).
        """
        if (to is None) == (seconds is None):
            raise SandboxError("advance needs exactly one of to= or seconds=")
        if to is not None:
            if to.tzinfo is None:
                raise SandboxError(f"advance(to={to!r}): give a timezone-aware datetime")
            target = int(to.timestamp())
        else:
            assert seconds is not None
            if seconds < 0:
                raise SandboxError(f"advance(seconds={seconds}): the clock only moves forwards")
            target = self.now + int(seconds)
        if target < self.now:
            raise SandboxError(f"advance(to={to}): the clock is already at {self.clock.now.isoformat()}")
        start = len(self.outbox)
        while True:
            with self._locked():
                s = self._pop_due(target)
                if s is None:
                    self.clock.set_unix(max(self.now, target))
                    break
                if s["schedule_at"] > self.now:
                    self.clock.set_unix(int(s["schedule_at"]))
                self._execute(s)
        return self.outbox[start:]

    def _ensure_heap(self) -> None:
        if self._heap_n != len(self.schedules):
            self._heap = [
                (int(s["schedule_at"]), mu)
                for mu, s in self.schedules.items()
                if s["schedule_status"] == "scheduled"
            ]
            heapq.heapify(self._heap)
            self._heap_n = len(self.schedules)

    def _pop_due(self, target: int) -> Json | None:
        self._ensure_heap()
        heap = self._heap
        while heap and heap[0][0] <= target:
            at, mu = heapq.heappop(heap)
            s = self.schedules.get(mu)
            if s is not None and s["schedule_status"] == "scheduled" and int(s["schedule_at"]) == at:
                return s
        return None

    def next_schedule_at(self) -> int | None:
        """The earliest pending ``schedule_at`` (unix), or None."""
        with self._locked():
            self._ensure_heap()
            while self._heap:
                at, mu = self._heap[0]
                s = self.schedules.get(mu)
                if s is not None and s["schedule_status"] == "scheduled" and int(s["schedule_at"]) == at:
                    return at
                heapq.heappop(self._heap)
            return None

    # ------------------------------------------------------------------ indexes and queries
    def reindex(self) -> None:
        """Drop every derived index (call after editing existing objects in the dicts directly)."""
        with self._locked():
            self._pix = None
            self._six = None
            self._pay_by_cu = None
            self._sched_by_cu = None
            self._heap_n = -1
            self._pay_version += 1
            self._sched_version += 1
            self._query_cache.clear()

    def warm(self) -> None:
        """Build the listing indexes now, so the first API call does not pay for them (``sandbox serve``)."""
        with self._locked():
            self._ensure_pix()
            self._ensure_six()
            self._payments_of("")
            self._schedules_of("")

    def _ensure_pix(self) -> dict[str, tuple[list[int], list[str]]]:
        if self._pix is None or self._pix_n != len(self.payments):
            buckets: dict[str, list[tuple[int, str]]] = {s: [] for s in PAYMENT_STATUSES}
            for imp, p in self.payments.items():
                st = p["status"]
                buckets[st].append((int(p[STATUS_AXIS[st]]), imp))
            pix: dict[str, tuple[list[int], list[str]]] = {}
            for st, items in buckets.items():
                items.sort()
                pix[st] = ([t for t, _ in items], [i for _, i in items])
            self._pix = pix
            self._pix_n = len(self.payments)
            self._pay_version += 1
        return self._pix

    def _ensure_six(self) -> tuple[list[int], list[str]]:
        if self._six is None or self._six_n != len(self.schedules):
            items = sorted((int(s["schedule_at"]), mu) for mu, s in self.schedules.items())
            self._six = ([t for t, _ in items], [m for _, m in items])
            self._six_n = len(self.schedules)
            self._sched_version += 1
        return self._six

    def _payments_of(self, customer_uid: str) -> list[str]:
        if self._pay_by_cu is None or self._pay_by_cu_n != len(self.payments):
            by: dict[str, list[str]] = {}
            for imp, p in self.payments.items():
                cu = p.get("customer_uid")
                if cu:
                    by.setdefault(cu, []).append(imp)
            self._pay_by_cu = by
            self._pay_by_cu_n = len(self.payments)
        return self._pay_by_cu.get(customer_uid, [])

    def _schedules_of(self, customer_uid: str) -> list[str]:
        if self._sched_by_cu is None or self._sched_by_cu_n != len(self.schedules):
            by: dict[str, list[str]] = {}
            for mu, s in self.schedules.items():
                by.setdefault(s["customer_uid"], []).append(mu)
            self._sched_by_cu = by
            self._sched_by_cu_n = len(self.schedules)
        return self._sched_by_cu.get(customer_uid, [])

    def _cached(self, key: tuple[Any, ...], build: Callable[[], list[str]]) -> list[str]:
        hit = self._query_cache.get(key)
        if hit is not None:
            self._query_cache.move_to_end(key)
            return hit
        value = build()
        self._query_cache[key] = value
        while len(self._query_cache) > 16:
            self._query_cache.popitem(last=False)
        return value

    def _sort_payments(self, ids: list[str], sorting: str) -> list[str]:
        desc = sorting.startswith("-")
        keyf = _SORT_KEYS[sorting.lstrip("-")]
        if sorting.lstrip("-") == "updated" and not self.variant.updated_on_partial_cancel:
            keyf = partial(_updated_at, refunds=False)
        pays = self.payments
        ids.sort(key=lambda i: (keyf(pays[i]), i), reverse=desc)
        return ids

    def query_payments_by_status(
        self, status: str, from_: int, to: int, sorting: str = "-started"
    ) -> list[str]:
        """imp_uids of ``/payments/status/{status}`` with ``from_ <= axis time <= to``, sorted."""
        if status != "all" and status not in PAYMENT_STATUSES:
            raise SandboxBadRequest(
                f"payment_status: {status!r}는 지원하지 않는 상태입니다 (all, {', '.join(PAYMENT_STATUSES)})"
            )
        if sorting not in PAYMENT_SORTINGS:
            raise SandboxBadRequest(
                f"sorting: {sorting!r}는 지원하지 않습니다 ({', '.join(PAYMENT_SORTINGS)})"
            )

        def build() -> list[str]:
            pix = self._ensure_pix()
            out: list[str] = []
            for st in PAYMENT_STATUSES if status == "all" else (status,):
                ts_list, ids = pix[st]
                out.extend(ids[bisect_left(ts_list, from_) : bisect_right(ts_list, to)])
            return self._sort_payments(out, sorting)

        with self._locked():
            self._ensure_pix()
            key = ("pay", status, from_, to, sorting, self._pay_version, self.variant)
            return self._cached(key, build)

    def query_payments_by_merchant_uid(
        self, merchant_uid: str, status: str | None, sorting: str = "-started"
    ) -> list[str]:
        """imp_uids of one order's attempts (optionally in one status), sorted (404 when none exist)."""
        if status is not None and status not in PAYMENT_STATUSES:
            raise SandboxBadRequest(f"payment_status: {status!r}는 지원하지 않는 상태입니다")
        if sorting not in PAYMENT_SORTINGS:
            raise SandboxBadRequest(
                f"sorting: {sorting!r}는 지원하지 않습니다 ({', '.join(PAYMENT_SORTINGS)})"
            )
        ids = list(self.payment_ids_by_merchant_uid.get(merchant_uid, ()))
        if not ids:
            raise SandboxNotFound(MSG_PAYMENT_NOT_FOUND)
        if status is not None:
            ids = [i for i in ids if self.payments[i]["status"] == status]
        return self._sort_payments(ids, sorting)

    def query_customer_payments(self, customer_uid: str) -> list[str]:
        """imp_uids charged to a billing key, newest first (404 for an unknown key)."""
        with self._locked():
            if customer_uid not in self.billing_keys and customer_uid not in self.deleted_billing_keys:
                raise SandboxNotFound(msg_customer_not_found(customer_uid))
            return self._sort_payments(list(self._payments_of(customer_uid)), "-started")

    def query_schedules(
        self,
        from_: int,
        to: int,
        status: str | None = None,
        sorting: str | None = None,
        customer_uid: str | None = None,
    ) -> list[str]:
        """merchant_uids of schedules with ``from_ <= schedule_at < to``, newest first unless sorted."""
        if status is not None and status not in SCHEDULE_STATUSES:
            raise SandboxBadRequest(
                f"schedule_status: {status!r}는 지원하지 않는 상태입니다 ({', '.join(SCHEDULE_STATUSES)})"
            )
        sorting = sorting or "-scheduled"
        if sorting not in SCHEDULE_SORTINGS:
            raise SandboxBadRequest(
                f"sorting: {sorting!r}는 지원하지 않습니다 ({', '.join(SCHEDULE_SORTINGS)})"
            )
        desc = sorting.startswith("-")

        def build() -> list[str]:
            if customer_uid is not None:
                mus = [
                    m
                    for m in self._schedules_of(customer_uid)
                    if from_ <= self.schedules[m]["schedule_at"] < to
                ]
            else:
                ts_list, ids = self._ensure_six()
                mus = ids[bisect_left(ts_list, from_) : bisect_left(ts_list, to)]
            if status is not None:
                mus = [m for m in mus if self.schedules[m]["schedule_status"] == status]
            scheds = self.schedules
            return sorted(mus, key=lambda m: (scheds[m]["schedule_at"], m), reverse=desc)

        with self._locked():
            if customer_uid is not None:
                return build()
            self._ensure_six()
            return self._cached(("sched", from_, to, status, sorting, self._sched_version), build)

    # ------------------------------------------------------------------ views
    def summary(self) -> dict[str, Any]:
        """Counts for a quick look (also served at ``GET /__sandbox/state``)."""
        with self._locked():
            pay: dict[str, int] = dict.fromkeys(PAYMENT_STATUSES, 0)
            for p in self.payments.values():
                pay[p["status"]] += 1
            sch: dict[str, int] = dict.fromkeys(SCHEDULE_STATUSES, 0)
            for s in self.schedules.values():
                sch[s["schedule_status"]] += 1
            return {
                "now": self.now,
                "now_kst": self.clock.now.isoformat(),
                "payments": len(self.payments),
                "payments_by_status": pay,
                "schedules": len(self.schedules),
                "schedules_by_status": sch,
                "billing_keys": len(self.billing_keys),
                "deleted_billing_keys": len(self.deleted_billing_keys),
                "webhooks": len(self.outbox),
                "webhooks_dropped": sum(1 for h in self.outbox if h.dropped),
                "requests": len(self.requests),
            }

    def snapshot(self) -> dict[str, Any]:
        """The full state as deterministic, JSON-serialisable data (tokens excluded)."""
        with self._locked():
            state = {
                "now": self.now,
                "seed": self.seed,
                "imp_counter": self._imp_counter,
                "cancel_counter": self._cancel_counter,
                "payments": self.payments,
                "payment_ids_by_merchant_uid": self.payment_ids_by_merchant_uid,
                "schedules": self.schedules,
                "billing_keys": self.billing_keys,
                "deleted_billing_keys": self.deleted_billing_keys,
                "card_behaviours": {
                    cu: {**asdict(b), "nths": sorted(b.nths)} for cu, b in self.card_behaviours.items()
                },
                "charge_counts": self.charge_counts,
                "outbox": [h.to_dict() for h in self.outbox],
                "schedule_notice_urls": self.schedule_notice_urls,
                "payment_notice_urls": self.payment_notice_urls,
            }
            result: dict[str, Any] = orjson.loads(orjson.dumps(state, option=orjson.OPT_SORT_KEYS))
            return result

    # ------------------------------------------------------------------ wiring
    def transport(self) -> httpx.BaseTransport:
        """An in-process httpx transport serving this world (no sockets)."""
        from portone_recon.sandbox.transport import SandboxTransport

        return SandboxTransport(self)

    def client(self, **kwargs: Any) -> Any:
        """A ``PortOneClient`` wired to this world's transport (keyword arguments are passed on)."""
        from portone_recon.api.client import PortOneClient

        kwargs.setdefault("imp_key", self.imp_key)
        kwargs.setdefault("imp_secret", self._imp_secret)
        kwargs.setdefault("api_base", "https://api.iamport.kr")
        kwargs.setdefault("transport", self.transport())
        kwargs.setdefault("sleep", lambda _s: None)
        return PortOneClient(**kwargs)


def _copy_payment(p: Json) -> Json:
    return {
        **p,
        "cancel_history": [dict(c) for c in p["cancel_history"]],
        "cancel_receipt_urls": list(p["cancel_receipt_urls"]),
    }


def days(n: float) -> timedelta:
    """Shorthand for ``timedelta(days=n)``."""
    return timedelta(days=n)
