"""A small sandbox merchant for the sync tests, and helpers comparing the store with the world."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx

from portone_recon._time import KST
from portone_recon.sandbox import CardBehaviour, SandboxWorld
from portone_recon.sandbox.variants import ApiVariant
from portone_recon.store import Store

START = datetime(2025, 1, 1, 9, 0, tzinfo=KST)


def unix(d: datetime) -> int:
    return int(d.timestamp())


def build_world(
    customers: int = 12, months: int = 8, until: datetime | None = None, variant: ApiVariant | None = None
) -> SandboxWorld:
    """Monthly subscribers with executed, failed, refunded, revoked and future schedules."""
    w = SandboxWorld(start=START, seed=7)
    if variant is not None:
        w.variant = variant
    for i in range(customers):
        cu = f"cust_{i:03d}"
        behaviour = None
        if i == customers - 1:
            behaviour = CardBehaviour.decline()
        elif i == customers - 2:
            behaviour = CardBehaviour.decline_nth(3)
        w.issue_billing_key(cu, behaviour=behaviour)
        w.create_schedules(
            cu,
            [
                {
                    "merchant_uid": f"sub_{cu}_{m:02d}",
                    "schedule_at": unix(datetime(2025, 1 + m, 5, 10, 0, tzinfo=KST)) + i * 60,
                    "amount": 8900,
                    "name": "월간 구독",
                    "currency": "KRW",
                }
                for m in range(months)
            ],
        )
    w.advance(to=until or datetime(2025, 5, 20, 12, 0, tzinfo=KST))
    paid = sorted(imp for imp, p in w.payments.items() if p["status"] == "paid")
    w.pay_again(customer_uid="cust_000", merchant_uid="addon_1", amount=3300, name="추가 구매")
    w.cancel_payment(imp_uid=paid[0], amount=2000, reason="부분 환불")
    w.cancel_payment(imp_uid=paid[1], reason="전액 환불")
    w.unschedule(customer_uid="cust_003")
    w.delete_billing_key("cust_003")
    w.unschedule(merchant_uids=["sub_cust_004_07"])
    w.advance(seconds=3600)
    return w


def world_tables(w: SandboxWorld) -> dict[str, Any]:
    """The world's state in the shape of the store's rows (unix seconds, 0 -> None)."""

    def t(v: int) -> int | None:
        return v or None

    payments = {
        p["imp_uid"]: (
            p["merchant_uid"],
            p["customer_uid"],
            p["status"],
            p["amount"],
            p["cancel_amount"],
            t(p["paid_at"]),
            t(p["failed_at"]),
            t(p["cancelled_at"]),
        )
        for p in w.payments.values()
    }
    cancels = {
        (p["imp_uid"], c["cancellation_id"]): (c["amount"], t(c["cancelled_at"]))
        for p in w.payments.values()
        for c in p["cancel_history"]
    }
    schedules = {
        s["merchant_uid"]: (
            s["customer_uid"],
            s["schedule_status"],
            s["payment_status"],
            s["imp_uid"],
            s["amount"],
            s["schedule_at"],
            t(s["executed_at"]),
            t(s["revoked_at"]),
        )
        for s in w.schedules.values()
    }
    keys = dict.fromkeys(w.billing_keys, False) | dict.fromkeys(w.deleted_billing_keys, True)
    return {"payments": payments, "cancels": cancels, "schedules": schedules, "keys": keys}


def store_tables(store: Store) -> dict[str, Any]:
    def rows(sql: str) -> list[tuple[Any, ...]]:
        with store.connect() as con:
            return con.execute(sql).fetchall()

    e = "CAST(epoch({}) AS BIGINT)"
    payments = {
        r[0]: tuple(r[1:])
        for r in rows(
            "SELECT imp_uid, merchant_uid, customer_uid, status, amount, cancel_amount, "
            f"{e.format('paid_at')}, {e.format('failed_at')}, {e.format('cancelled_at')} FROM payments"
        )
    }
    cancels = {
        (r[0], r[1]): (r[2], r[3])
        for r in rows(
            f"SELECT imp_uid, cancellation_id, amount, {e.format('cancelled_at')} FROM payment_cancellations"
        )
    }
    schedules = {
        r[0]: tuple(r[1:])
        for r in rows(
            "SELECT merchant_uid, customer_uid, schedule_status, payment_status, imp_uid, amount, "
            f"{e.format('schedule_at')}, {e.format('executed_at')}, {e.format('revoked_at')} FROM schedules"
        )
    }
    keys = {r[0]: r[1] for r in rows("SELECT customer_uid, deleted FROM billing_keys")}
    return {"payments": payments, "cancels": cancels, "schedules": schedules, "keys": keys}


def snapshot(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every synced table, every column but synced_at, sorted: equal snapshots mean equal tables."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with store.connect() as con:
        for table, key in (
            ("payments", "imp_uid"),
            ("payment_cancellations", "imp_uid, cancellation_id"),
            ("schedules", "merchant_uid"),
            ("billing_keys", "customer_uid"),
        ):
            out[table] = con.execute(
                f"SELECT * EXCLUDE (synced_at) REPLACE (raw::VARCHAR AS raw) FROM {table} ORDER BY {key}"
                if table != "payment_cancellations"
                else f"SELECT * EXCLUDE (synced_at) FROM {table} ORDER BY {key}"
            ).fetchall()
        out["cursors"] = con.execute("SELECT stream, cursor FROM sync_state ORDER BY stream").fetchall()
    return out


class Tap(httpx.BaseTransport):
    """Wraps a transport: ``before(request, n)`` runs first; ``after`` may replace the response."""

    def __init__(
        self,
        inner: httpx.BaseTransport,
        *,
        before: Callable[[httpx.Request, int], None] | None = None,
        after: Callable[[httpx.Request, httpx.Response], httpx.Response] | None = None,
    ) -> None:
        self.inner = inner
        self.before = before
        self.after = after
        self.n = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.n += 1
        if self.before is not None:
            self.before(request, self.n)
        response = self.inner.handle_request(request)
        if self.after is not None:
            response.read()
            response = self.after(request, response)
        return response
