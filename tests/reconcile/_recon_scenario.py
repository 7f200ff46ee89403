"""Copy a sandbox world (and a scenario's orders/subscriptions) into a store, the way sync would.

Used until/unless ``portone_recon.sync.sync`` is wired in: the column mapping is schema 0001's
(unix seconds -> TIMESTAMPTZ, ``0`` -> NULL), rows go in with ``INSERT ... SELECT`` from Arrow.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pyarrow as pa

from portone_recon.store import Store

_TS = pa.timestamp("us", tz="UTC")


def _ts(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromtimestamp(int(value), tz=UTC)


def _table(rows: Iterable[dict[str, Any]], spec: dict[str, tuple[str, pa.DataType]]) -> pa.Table:
    cols: dict[str, list[Any]] = {name: [] for name in spec}
    for row in rows:
        for name, (src, typ) in spec.items():
            value = row.get(src)
            cols[name].append(_ts(value) if typ == _TS else value)
    return pa.table({name: pa.array(cols[name], type=spec[name][1]) for name in spec})


_PAYMENT = {
    "imp_uid": ("imp_uid", pa.string()),
    "merchant_uid": ("merchant_uid", pa.string()),
    "customer_uid": ("customer_uid", pa.string()),
    "customer_uid_usage": ("customer_uid_usage", pa.string()),
    "status": ("status", pa.string()),
    "amount": ("amount", pa.int64()),
    "cancel_amount": ("cancel_amount", pa.int64()),
    "currency": ("currency", pa.string()),
    "pay_method": ("pay_method", pa.string()),
    "channel": ("channel", pa.string()),
    "pg_provider": ("pg_provider", pa.string()),
    "pg_tid": ("pg_tid", pa.string()),
    "name": ("name", pa.string()),
    "card_name": ("card_name", pa.string()),
    "card_number": ("card_number", pa.string()),
    "buyer_name": ("buyer_name", pa.string()),
    "fail_reason": ("fail_reason", pa.string()),
    "started_at": ("started_at", _TS),
    "paid_at": ("paid_at", _TS),
    "failed_at": ("failed_at", _TS),
    "cancelled_at": ("cancelled_at", _TS),
    "sandbox": ("sandbox", pa.bool_()),
}
_CANCEL = {
    "imp_uid": ("imp_uid", pa.string()),
    "cancellation_id": ("cancellation_id", pa.string()),
    "pg_tid": ("pg_tid", pa.string()),
    "amount": ("amount", pa.int64()),
    "cancelled_at": ("cancelled_at", _TS),
    "reason": ("reason", pa.string()),
}
_SCHEDULE = {
    "merchant_uid": ("merchant_uid", pa.string()),
    "customer_uid": ("customer_uid", pa.string()),
    "schedule_status": ("schedule_status", pa.string()),
    "payment_status": ("payment_status", pa.string()),
    "imp_uid": ("imp_uid", pa.string()),
    "schedule_at": ("schedule_at", _TS),
    "executed_at": ("executed_at", _TS),
    "revoked_at": ("revoked_at", _TS),
    "amount": ("amount", pa.int64()),
    "currency": ("currency", pa.string()),
    "name": ("name", pa.string()),
    "fail_reason": ("fail_reason", pa.string()),
}
_KEY = {
    "customer_uid": ("customer_uid", pa.string()),
    "pg_provider": ("pg_provider", pa.string()),
    "card_name": ("card_name", pa.string()),
    "card_number": ("card_number", pa.string()),
    "inserted": ("inserted", _TS),
    "updated": ("updated", _TS),
    "deleted": ("deleted", pa.bool_()),
}


#: The time axis of each payment status stream (what `sync --since` lists a payment by).
_AXIS = {"ready": "started_at", "paid": "paid_at", "failed": "failed_at", "cancelled": "cancelled_at"}


def load_world(store: Store, world: Any, synced_at: datetime, *, since: datetime | None = None) -> None:
    """Write the world's payments, cancellations, schedules and billing keys into ``store``.

    With ``since``: what ``sync --since`` leaves: only payments whose status-stream time and schedules whose
    schedule_at are at or after it, and ``sync_state`` saying each stream covers ``[since, synced_at)``.
    """
    payments = list(world.payments.values())
    schedules = list(world.schedules.values())
    if since is not None:
        cut = int(since.timestamp())
        payments = [p for p in payments if int(p[_AXIS[p["status"]]] or 0) >= cut]
        schedules = [s for s in schedules if int(s["schedule_at"]) >= cut]
    cancels = [
        {
            **c,
            "imp_uid": p["imp_uid"],
            "cancellation_id": c.get("cancellation_id") or f"{c.get('pg_tid')}@{c.get('cancelled_at')}",
        }
        for p in payments
        for c in p.get("cancel_history") or []
    ]
    keys = [{**k, "deleted": False} for k in world.billing_keys.values()]
    keys += [{**k, "deleted": True} for k in world.deleted_billing_keys.values()]
    tables = {
        "payments": _table(payments, _PAYMENT),
        "payment_cancellations": _table(cancels, _CANCEL),
        "schedules": _table(schedules, _SCHEDULE),
        "billing_keys": _table(keys, _KEY),
    }
    with store.transaction() as con:
        for name, arrow in tables.items():
            con.register("_src", arrow)
            cols = ", ".join(arrow.column_names)
            con.execute(f"INSERT INTO {name} ({cols}, synced_at) SELECT {cols}, ? FROM _src", [synced_at])
            con.unregister("_src")
        if since is not None:
            for stream in (*(f"payments:{s}" for s in _AXIS), "schedules"):
                con.execute(
                    "INSERT INTO sync_state (stream, cursor, last_success, covered_from) VALUES (?, ?, ?, ?)",
                    [stream, synced_at, synced_at, since],
                )


def load_local(store: Store, orders: pd.DataFrame, subscriptions: pd.DataFrame) -> None:
    """Load the scenario's local orders and subscriptions (through portone_recon.orders when present)."""
    try:
        from portone_recon.orders import load_orders, load_subscriptions
    except ImportError:  # pragma: no cover - the orders engineer's module is there today
        load_orders = load_subscriptions = None  # type: ignore[assignment]
    if load_orders is not None and load_subscriptions is not None:
        load_orders(store, orders, source_name="scenario", progress=False)
        if len(subscriptions):
            load_subscriptions(store, subscriptions, source_name="scenario", progress=False)
        return
    with store.transaction() as con:  # pragma: no cover
        con.register("_o", orders)
        con.execute(
            "INSERT INTO orders (merchant_uid, customer_uid, amount, status, imp_uid, paid_at,"
            " refunded_amount, source, loaded_at) SELECT merchant_uid, customer_uid, amount, status,"
            " imp_uid, paid_at, refunded_amount, 'scenario', now() FROM _o"
        )
        con.register("_s", subscriptions)
        con.execute(
            "INSERT INTO subscriptions (customer_uid, status, amount, interval_months, anchor_day,"
            " started_at, cancelled_at, source, loaded_at) SELECT customer_uid, status, amount,"
            " interval_months, anchor_day, started_at, cancelled_at, 'scenario', now() FROM _s"
        )
