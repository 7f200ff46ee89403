"""The V2 objects read in SQL, by the rules of the reference readers in :mod:`portone_recon.api.v2.records`.

For one listing's items (a relation of ``n, idx, item``), :func:`select_sql` splits each item once into its
fields' JSON texts (``json_transform`` to a struct of ``JSON``) and derives from those texts both the typed
columns the store keeps and a ``bad`` flag: a JSON type is read from a text's first character (``"``
string, ``{`` object, ``[`` array), amounts must be integers (minor units) whose major value fits
``DECIMAL(18, 4)``, times must match :data:`~portone_recon.api.v2.records.RFC3339_PATTERN`, a currency
:data:`~portone_recon.api.v2.records.CURRENCY_PATTERN`. :func:`cancellations_sql` reads a payment's
``cancellations[]`` as ``read_cancellations`` does. The tests run every odd record through both readers.

The SQL is built from constants here (never from input).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from portone_recon.api.v2.records import (
    CURRENCY_PATTERN,
    MAJOR_LIMIT,
    PAYMENT_STATUS,
    RFC3339_PATTERN,
    SCHEDULE_STATUS,
    THREE_DECIMAL,
    ZERO_DECIMAL,
)

PAYMENT_COLS: tuple[tuple[str, str], ...] = (
    ("imp_uid", "VARCHAR"),
    ("merchant_uid", "VARCHAR"),
    ("customer_uid", "VARCHAR"),
    ("customer_uid_usage", "VARCHAR"),
    ("status", "VARCHAR"),
    ("amount", "BIGINT"),
    ("amount_exact", "DECIMAL(18, 4)"),
    ("cancel_amount", "BIGINT"),
    ("cancel_amount_exact", "DECIMAL(18, 4)"),
    ("currency", "VARCHAR"),
    ("pay_method", "VARCHAR"),
    ("channel", "VARCHAR"),
    ("pg_provider", "VARCHAR"),
    ("pg_tid", "VARCHAR"),
    ("name", "VARCHAR"),
    ("card_name", "VARCHAR"),
    ("card_number", "VARCHAR"),
    ("buyer_name", "VARCHAR"),
    ("buyer_email", "VARCHAR"),
    ("buyer_tel", "VARCHAR"),
    ("custom_data", "VARCHAR"),
    ("fail_reason", "VARCHAR"),
    ("cancel_reason", "VARCHAR"),
    ("started_at", "TIMESTAMPTZ"),
    ("paid_at", "TIMESTAMPTZ"),
    ("failed_at", "TIMESTAMPTZ"),
    ("cancelled_at", "TIMESTAMPTZ"),
    ("sandbox", "BOOLEAN"),
    ("api_version", "VARCHAR"),
    ("status_v2", "VARCHAR"),
    ("store_id", "VARCHAR"),
    ("billing_key", "VARCHAR"),
    ("schedule_id", "VARCHAR"),
    ("webhook_status", "VARCHAR"),
    ("status_changed_at", "TIMESTAMPTZ"),
)
SCHEDULE_COLS: tuple[tuple[str, str], ...] = (
    ("merchant_uid", "VARCHAR"),
    ("customer_uid", "VARCHAR"),
    ("schedule_status", "VARCHAR"),
    ("payment_status", "VARCHAR"),
    ("schedule_at", "TIMESTAMPTZ"),
    ("executed_at", "TIMESTAMPTZ"),
    ("revoked_at", "TIMESTAMPTZ"),
    ("amount", "BIGINT"),
    ("amount_exact", "DECIMAL(18, 4)"),
    ("currency", "VARCHAR"),
    ("name", "VARCHAR"),
    ("custom_data", "VARCHAR"),
    ("buyer_name", "VARCHAR"),
    ("buyer_email", "VARCHAR"),
    ("buyer_tel", "VARCHAR"),
    ("schedule_id", "VARCHAR"),
    ("billing_key", "VARCHAR"),
    ("status_v2", "VARCHAR"),
    ("store_id", "VARCHAR"),
)
CANCEL_COLS: tuple[tuple[str, str], ...] = (
    ("imp_uid", "VARCHAR"),
    ("cancellation_id", "VARCHAR"),
    ("pg_tid", "VARCHAR"),
    ("amount", "BIGINT"),
    ("amount_exact", "DECIMAL(18, 4)"),
    ("cancelled_at", "TIMESTAMPTZ"),
    ("reason", "VARCHAR"),
    ("receipt_url", "VARCHAR"),
)
KEY_COLS: tuple[tuple[str, str], ...] = (
    ("billing_key", "VARCHAR"),
    ("customer_uid", "VARCHAR"),
    ("status", "VARCHAR"),
    ("pg_provider", "VARCHAR"),
    ("card_name", "VARCHAR"),
    ("card_number", "VARCHAR"),
    ("issued_at", "TIMESTAMPTZ"),
    ("deleted_at", "TIMESTAMPTZ"),
    ("store_id", "VARCHAR"),
)

_BACKSLASH = "\\"


def _q(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _list(values: Sequence[str]) -> str:
    return "(" + ", ".join(_q(v) for v in values) + ")"


def _spec(fields: Sequence[str]) -> str:
    return _q(orjson.dumps(dict.fromkeys(fields, "JSON")).decode())


# -- expressions over a field's JSON text (NULL when absent or null) ------------------------------


def _is_str(v: str) -> str:
    return f"starts_with({v}, '\"')"


def _str(v: str) -> str:
    """The value of a JSON string text; NULL for anything else."""
    return (
        f"CASE WHEN starts_with({v}, '\"') THEN CASE WHEN contains({v}, '{_BACKSLASH}') "
        f"THEN json_extract_string({v}, '$') ELSE {v}[2:-2] END END"
    )


def _bad_opt_str(v: str) -> str:
    return f"({v} IS NOT NULL AND NOT {_is_str(v)})"


def _bad_req_str(v: str) -> str:
    return f"({v} IS NULL OR NOT {_is_str(v)} OR {v} = '\"\"')"


def _bad_obj(v: str) -> str:
    return f"({v} IS NOT NULL AND NOT starts_with({v}, '{{'))"


def _sub(v: str, fields: Sequence[str]) -> str:
    """The fields of object text ``v`` (NULL struct when ``v`` is no object)."""
    return f"CASE WHEN starts_with({v}, '{{') THEN json_transform({v}, {_spec(fields)}) END"


def _falsy(v: str) -> str:
    """Python's falsiness of a JSON value (absent, null, "", 0, false, [], {})."""
    return f"({v} IS NULL OR {v} IN ('\"\"', 'false', '[]', '{{}}') OR TRY_CAST({v} AS DOUBLE) = 0)"


def _rx(v: str) -> str:
    """The RFC 3339 parts of a JSON string text (empty parts when it does not match; NULL if no string)."""
    return f"regexp_extract({_str(v)}, {_q('^' + RFC3339_PATTERN + '$')}, ['d', 'c', 'f', 'o'])"


def _time(r: str) -> str:
    """The instant of RFC 3339 parts ``r`` (from :func:`_rx`); NULL when none or not a real instant."""
    offset = f"CASE WHEN {r}.o IN ('Z', 'z') THEN '+00:00' ELSE {r}.o END"
    return (
        f"CASE WHEN {r}.d <> '' AND NOT starts_with({r}.d, '0000') THEN TRY_CAST({r}.d || ' ' || {r}.c || "
        f"left({r}.f, 7) || {offset} AS TIMESTAMPTZ) END"
    )


def _int(v: str) -> str:
    """A JSON integer text as BIGINT; NULL for anything else (a fraction, a string, out of range)."""
    return f"CASE WHEN regexp_full_match({v}, '-?[0-9]+') THEN TRY_CAST({v} AS BIGINT) END"


def _exponent(currency: str) -> str:
    return (
        f"CASE WHEN {currency} IN {_list(sorted(ZERO_DECIMAL))} THEN 0 "
        f"WHEN {currency} IN {_list(sorted(THREE_DECIMAL))} THEN 3 ELSE 2 END"
    )


def _in_range(minor: str, e: str) -> str:
    limit = (
        f"CASE {e} WHEN 0 THEN {MAJOR_LIMIT} WHEN 3 THEN {MAJOR_LIMIT * 1000} ELSE {MAJOR_LIMIT * 100} END"
    )
    return f"({minor} > -({limit}) AND {minor} < {limit})"


def _exact(minor: str, e: str) -> str:
    scale = f"CASE {e} WHEN 0 THEN 1.0000 WHEN 3 THEN 0.0010 ELSE 0.0100 END"
    return f"TRY_CAST({minor} * {scale} AS DECIMAL(18, 4))"


def _whole(minor: str, e: str) -> str:
    scale = f"CASE {e} WHEN 0 THEN 1 WHEN 3 THEN 1000 ELSE 100 END"
    return f"CASE WHEN {minor} % {scale} = 0 THEN {minor} // {scale} END"


# -- the three objects -------------------------------------------------------------------------------


@dataclass(frozen=True)
class V2Entity:
    """How one V2 object is read in SQL: three SELECT levels over ``n, idx, item``.

    ``split`` adds the item's top-level field texts (``f``) and sub-objects; ``parse`` the values that
    need a second look (RFC 3339 parts, minor amounts, string values read more than once); ``values`` what
    is built from those (instants); ``columns`` (name -> SQL) and
    ``bad`` (true when the reference reader refuses the item). ``key`` names the field quarantined rows
    are filed under.
    """

    name: str
    endpoint: str
    cols: tuple[tuple[str, str], ...]
    split: str
    parse: str
    columns: dict[str, str]
    bad: str
    key: str
    extra: str = ""
    values: str = ""


_PAY_TOP = [
    "status",
    "id",
    "transactionId",
    "currency",
    "amount",
    "customer",
    "channel",
    "method",
    "failure",
    "origin",
    "cancellations",
    "billingKey",
    "scheduleId",
    "pgTxId",
    "orderName",
    "customData",
    "requestedAt",
    "paidAt",
    "failedAt",
    "cancelledAt",
    "statusChangedAt",
    "version",
    "storeId",
    "webhooks",
]
_PAY_TIMES = {
    "started_at": "requestedAt",
    "paid_at": "paidAt",
    "failed_at": "failedAt",
    "cancelled_at": "cancelledAt",
    "status_changed_at": "statusChangedAt",
}
_METHOD_NAMES = {"EasyPay": "easy_pay", "VirtualAccount": "vbank", "Transfer": "trans", "Mobile": "phone"}


def _method_name(v: str) -> str:
    """``PaymentMethodCard`` -> ``card`` from the type's string value ``v``; an unknown case lower-cased."""
    short = f"(CASE WHEN starts_with({v}, 'PaymentMethod') THEN {v}[14:] ELSE {v} END)"
    cases = " ".join(f"WHEN {_q(k)} THEN {_q(val)}" for k, val in _METHOD_NAMES.items())
    return f"CASE WHEN coalesce({v}, '') = '' THEN NULL ELSE CASE {short} {cases} ELSE lower({short}) END END"


#: The object entries of ``webhooks[]`` (NULL when it is no array).
_HOOK_OBJECTS = (
    "CASE WHEN starts_with(f.webhooks, '[') THEN "
    "list_filter(TRY_CAST(f.webhooks AS JSON[]), lambda h: json_type(h) = 'OBJECT') END"
)


def _hooks(objs: str) -> str:
    """webhook_status: SUCCEEDED when any delivery succeeded, else the last object entry's status."""
    status = "CASE WHEN json_type(h, '$.status') = 'VARCHAR' THEN h ->> 'status' END"
    last = f"{objs}[-1]"
    return (
        f"CASE WHEN list_contains(list_transform({objs}, lambda h: {status}), 'SUCCEEDED') THEN 'SUCCEEDED' "
        f"WHEN json_type({last}, '$.status') = 'VARCHAR' THEN {last} ->> 'status' END"
    )


def _cancel_reason() -> str:
    """The reason of the last SUCCEEDED cancellation that has a string reason."""
    ok = (
        "list_filter(TRY_CAST(f.cancellations AS JSON[]), lambda x: json_type(x, '$.status') = 'VARCHAR' "
        "AND x ->> 'status' = 'SUCCEEDED' AND json_type(x, '$.reason') = 'VARCHAR')"
    )
    return f"CASE WHEN starts_with(f.cancellations, '[') THEN {ok}[-1] ->> 'reason' END"


def _payments() -> V2Entity:
    split = (
        f"{_sub('f.amount', ['total', 'cancelled'])} AS am, "
        f"{_sub('f.customer', ['id', 'name', 'email', 'phoneNumber'])} AS cu, "
        f"{_sub('f.channel', ['pgProvider', 'type'])} AS ch, "
        f"{_sub('f.method', ['type', 'card'])} AS me, "
        f"{_sub('f.failure', ['reason'])} AS fa, "
        f"{_sub('f.origin', ['platformType'])} AS og"
    )
    times = ", ".join(f"{_rx('f.' + src)} AS rx_{col}" for col, src in _PAY_TIMES.items())
    strings = ", ".join(
        f"{_str(v)} AS s_{name}"
        for name, v in (
            ("status", "f.status"),
            ("currency", "f.currency"),
            ("version", "f.version"),
            ("billing_key", "f.billingKey"),
            ("schedule_id", "f.scheduleId"),
            ("method", "me.type"),
        )
    )
    parse = (
        f"{_sub('cu.name', ['full'])} AS cn, {_sub('me.card', ['name', 'number'])} AS cd, "
        f"{_int('am.total')} AS m_total, {_int('am.cancelled')} AS m_cancelled, "
        f"{_exponent(_str('f.currency'))} AS e, {_HOOK_OBJECTS} AS hooks, {times}, {strings}"
    )
    values = ", ".join(f"{_time('rx_' + col)} AS t_{col}" for col in _PAY_TIMES)
    cur = "s_currency"
    cancelled = "coalesce(m_cancelled, 0)"
    statuses = _list(sorted(PAYMENT_STATUS))
    mapping = " ".join(f"WHEN {_q(k)} THEN {_q(v)}" for k, v in PAYMENT_STATUS.items())
    billing_key, schedule_id = "s_billing_key", "s_schedule_id"
    columns = {
        "imp_uid": _str("f.transactionId"),
        "merchant_uid": _str("f.id"),
        "customer_uid": _str("cu.id"),
        # as _usage: a zero amount no schedule made is a billing-key issuance
        "customer_uid_usage": (
            f"CASE WHEN m_total = 0 AND coalesce({schedule_id}, '') = '' THEN 'issue' "
            f"WHEN coalesce({billing_key}, '') = '' THEN NULL WHEN coalesce({schedule_id}, '') <> '' "
            "THEN 'payment.scheduled' ELSE 'payment' END"
        ),
        "status": f"CASE s_status {mapping} END",
        "amount": _whole("m_total", "e"),
        "amount_exact": _exact("m_total", "e"),
        "cancel_amount": _whole(cancelled, "e"),
        "cancel_amount_exact": _exact(cancelled, "e"),
        "currency": cur,
        "pay_method": _method_name("s_method"),
        "channel": f"nullif(lower({_str('og.platformType')}), '')",
        "pg_provider": _str("ch.pgProvider"),
        "pg_tid": _str("f.pgTxId"),
        "name": _str("f.orderName"),
        "card_name": _str("cd.name"),
        "card_number": _str("cd.number"),
        "buyer_name": f"coalesce({_str('cu.name')}, {_str('cn.full')})",
        "buyer_email": _str("cu.email"),
        "buyer_tel": _str("cu.phoneNumber"),
        "custom_data": _str("f.customData"),
        "fail_reason": _str("fa.reason"),
        "cancel_reason": _cancel_reason(),
        **{col: f"t_{col}" for col in _PAY_TIMES},
        "sandbox": "coalesce(ch.type = '\"TEST\"', false)",
        "api_version": "CASE WHEN s_version IN ('V1', 'V2') THEN s_version END",
        "status_v2": "s_status",
        "store_id": _str("f.storeId"),
        "billing_key": billing_key,
        "schedule_id": schedule_id,
        "webhook_status": _hooks("hooks"),
    }
    bad = [
        f"NOT coalesce(s_status IN {statuses}, false)",
        f"NOT coalesce(regexp_full_match({cur}, {_q(CURRENCY_PATTERN)}), false)",
        *(_bad_obj(f"f.{o}") for o in ("amount", "customer", "channel", "method", "failure", "origin")),
        f"m_total IS NULL OR NOT {_in_range('m_total', 'e')}",
        f"(am.cancelled IS NOT NULL AND (m_cancelled IS NULL OR NOT {_in_range('m_cancelled', 'e')}))",
        "(f.cancellations IS NOT NULL AND NOT starts_with(f.cancellations, '['))",
        _bad_req_str("f.transactionId"),
        _bad_req_str("f.id"),
        *(_bad_opt_str(v) for v in ("cu.id", "f.billingKey", "f.scheduleId", "f.pgTxId", "f.orderName")),
        *(_bad_opt_str(v) for v in ("f.customData", "f.storeId")),
        *(f"(f.{src} IS NOT NULL AND t_{col} IS NULL)" for col, src in _PAY_TIMES.items()),
    ]
    return V2Entity(
        name="payments",
        endpoint="/payments",
        cols=PAYMENT_COLS,
        split=split,
        parse=parse,
        columns=columns,
        bad=" OR ".join(f"coalesce({b}, true)" for b in bad),
        key="transactionId",
        extra=", f.cancellations AS cancellations",
        values=values,
    )


def _schedules() -> V2Entity:
    executed = f"CASE WHEN {_falsy('f.completedAt')} THEN f.startedAt ELSE f.completedAt END"
    split = f"{_sub('f.customer', ['id', 'name', 'email', 'phoneNumber'])} AS cu, ({executed}) AS executed"
    parse = (
        f"{_sub('cu.name', ['full'])} AS cn, {_int('f.totalAmount')} AS m_total, "
        f"{_exponent(_str('f.currency'))} AS e, {_str('f.currency')} AS s_currency, "
        f"{_str('f.status')} AS s_status, {_rx('f.timeToPay')} AS rx_at, {_rx('executed')} AS rx_executed, "
        f"{_rx('f.revokedAt')} AS rx_revoked"
    )
    values = (
        f"{_time('rx_at')} AS t_at, {_time('rx_executed')} AS t_executed, {_time('rx_revoked')} AS t_revoked"
    )
    cur, status = "s_currency", "s_status"
    sched = " ".join(f"WHEN {_q(k)} THEN {_q(v[0])}" for k, v in SCHEDULE_STATUS.items())
    pay = " ".join(f"WHEN {_q(k)} THEN {_q(v[1])}" for k, v in SCHEDULE_STATUS.items() if v[1])
    columns = {
        "merchant_uid": _str("f.paymentId"),
        "customer_uid": _str("cu.id"),
        "schedule_status": f"CASE {status} {sched} END",
        "payment_status": f"CASE {status} {pay} END",
        "schedule_at": "t_at",
        "executed_at": "t_executed",
        "revoked_at": "t_revoked",
        "amount": _whole("m_total", "e"),
        "amount_exact": _exact("m_total", "e"),
        "currency": cur,
        "name": _str("f.orderName"),
        "custom_data": _str("f.customData"),
        "buyer_name": f"coalesce({_str('cu.name')}, {_str('cn.full')})",
        "buyer_email": _str("cu.email"),
        "buyer_tel": _str("cu.phoneNumber"),
        "schedule_id": _str("f.id"),
        "billing_key": _str("f.billingKey"),
        "status_v2": status,
        "store_id": _str("f.storeId"),
    }
    bad = [
        f"NOT coalesce({status} IN {_list(sorted(SCHEDULE_STATUS))}, false)",
        f"NOT coalesce(regexp_full_match({cur}, {_q(CURRENCY_PATTERN)}), false)",
        f"m_total IS NULL OR NOT {_in_range('m_total', 'e')}",
        _bad_obj("f.customer"),
        _bad_req_str("f.paymentId"),
        _bad_req_str("f.id"),
        _bad_req_str("cu.id"),
        _bad_req_str("f.billingKey"),
        "t_at IS NULL",
        "(executed IS NOT NULL AND t_executed IS NULL)",
        "(f.revokedAt IS NOT NULL AND t_revoked IS NULL)",
        _bad_opt_str("f.orderName"),
        _bad_opt_str("f.storeId"),
    ]
    return V2Entity(
        name="schedules",
        endpoint="/payment-schedules",
        cols=SCHEDULE_COLS,
        split=split,
        parse=parse,
        columns=columns,
        bad=" OR ".join(f"coalesce({b}, true)" for b in bad),
        key="paymentId",
        values=values,
    )


def _billing_keys() -> V2Entity:
    first = "TRY_CAST(f.channels AS JSON[])[1]"
    card = (
        "list_filter(TRY_CAST(f.methods AS JSON[]), lambda m: json_type(m, '$.card') = 'OBJECT')[1] "
        "-> '$.card'"
    )
    split = (
        f"{_sub('f.customer', ['id'])} AS cu, "
        f"CASE WHEN starts_with(f.channels, '[') AND json_type({first}) = 'OBJECT' "
        f"THEN json_transform({first}, {_spec(['pgProvider'])}) END AS ch, "
        f"CASE WHEN starts_with(f.methods, '[') THEN json_transform({card}, {_spec(['name', 'number'])}) "
        "END AS cd"
    )
    parse = f"{_rx('f.issuedAt')} AS rx_issued, {_rx('f.deletedAt')} AS rx_deleted"
    status = _str("f.status")
    columns = {
        "billing_key": _str("f.billingKey"),
        "customer_uid": _str("cu.id"),
        "status": status,
        "pg_provider": _str("ch.pgProvider"),
        "card_name": _str("cd.name"),
        "card_number": _str("cd.number"),
        "issued_at": _time("rx_issued"),
        "deleted_at": _time("rx_deleted"),
        "store_id": _str("f.storeId"),
    }
    bad = [
        f"NOT coalesce({status} IN ('ISSUED', 'DELETED'), false)",
        _bad_obj("f.customer"),
        _bad_req_str("f.billingKey"),
        _bad_opt_str("cu.id"),
        f"{_time('rx_issued')} IS NULL",
        f"(f.deletedAt IS NOT NULL AND {_time('rx_deleted')} IS NULL)",
        f"({status} = 'DELETED' AND f.deletedAt IS NULL)",
        _bad_opt_str("f.storeId"),
    ]
    return V2Entity(
        name="billing_keys",
        endpoint="/billing-keys",
        cols=KEY_COLS,
        split=split,
        parse=parse,
        columns=columns,
        bad=" OR ".join(f"coalesce({b}, true)" for b in bad),
        key="billingKey",
    )


PAYMENTS = _payments()
SCHEDULES = _schedules()
BILLING_KEYS = _billing_keys()
_TOP = {
    "payments": _PAY_TOP,
    "schedules": [
        "status",
        "id",
        "paymentId",
        "billingKey",
        "customer",
        "totalAmount",
        "currency",
        "timeToPay",
        "completedAt",
        "startedAt",
        "revokedAt",
        "orderName",
        "customData",
        "storeId",
    ],
    "billing_keys": [
        "status",
        "billingKey",
        "customer",
        "channels",
        "methods",
        "issuedAt",
        "deletedAt",
        "storeId",
    ],
}


def select_sql(entity: V2Entity, source: str) -> str:
    """SELECT n, idx, the typed columns, raw, raw_hash, record_key, bad FROM ``source`` (n, idx, item)."""
    cols = ", ".join(f"{sql} AS {name}" for name, sql in entity.columns.items())
    return (
        f"SELECT n, idx, {cols}, item AS raw, hash(item::VARCHAR) AS raw_hash, "
        f"CASE WHEN is_object THEN {_str('f.' + entity.key)} END AS record_key{entity.extra}, "
        f"NOT is_object OR {entity.bad} AS bad FROM ("
        + (f"SELECT *, {entity.values} FROM (" if entity.values else "")
        + f"SELECT *, {entity.parse} FROM ("
        f"SELECT *, {entity.split} FROM ("
        f"SELECT n, idx, item, starts_with(item::VARCHAR, '{{') AS is_object, "
        f"json_transform(item, {_spec(_TOP[entity.name])}) AS f FROM {source})))"
        + (")" if entity.values else "")
    )


def cancellations_sql(payments: str) -> str:
    """SELECT the SUCCEEDED ``cancellations[]`` of the staged payments as ``payment_cancellations`` rows
    (one per imp_uid and cancellation id, the first listed): the rules of ``read_cancellations``."""
    fields = [
        "id",
        "status",
        "totalAmount",
        "pgCancellationId",
        "reason",
        "receiptUrl",
        "cancelledAt",
        "requestedAt",
    ]
    when = f"CASE WHEN {_falsy('g.cancelledAt')} THEN g.requestedAt ELSE g.cancelledAt END"
    return (
        f"SELECT imp_uid, {_str('g.id')} AS cancellation_id, {_str('g.pgCancellationId')} AS pg_tid, "
        f"{_whole('m', 'e')} AS amount, {_exact('m', 'e')} AS amount_exact, {_time('rx')} AS cancelled_at, "
        f"{_str('g.reason')} AS reason, {_str('g.receiptUrl')} AS receipt_url FROM ("
        f"SELECT *, {_int('g.totalAmount')} AS m, {_rx(when)} AS rx FROM ("
        f"SELECT imp_uid, {_exponent('currency')} AS e, ci, json_type(c) = 'OBJECT' AS is_object, "
        f"json_transform(c, {_spec(fields)}) AS g FROM ("
        "SELECT imp_uid, currency, generate_subscripts(cs, 1) AS ci, unnest(cs) AS c FROM ("
        f"SELECT imp_uid, currency, TRY_CAST(cancellations AS JSON[]) AS cs FROM {payments} "
        "WHERE starts_with(cancellations, '[')))))"
        f"WHERE is_object AND {_str('g.status')} = 'SUCCEEDED' AND {_is_str('g.id')} AND m IS NOT NULL "
        f"AND {_in_range('m', 'e')} "
        "QUALIFY row_number() OVER (PARTITION BY imp_uid, cancellation_id ORDER BY ci) = 1"
    )
