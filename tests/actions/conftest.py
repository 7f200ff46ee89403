"""A small merchant with one problem of each fixable kind, built through the client (in-process or served).

Customers (as_of 2026-11-27 06:00 KST):
  cus_a  paid 2026-11-03 renewal, local order still pending     -> missed_webhook + missing_next_schedule
  cus_b  2026-11-25 renewal declined (card declines 2nd charge)  -> unpaid_renewal (retry, then rebook)
  cus_c  two December schedules                                  -> duplicate_schedule (the -x one)
  cus_d  December schedule, subscription cancelled               -> orphan_schedule
  cus_e  paid 9,900 but the local order says 10,900              -> a reverify that must refuse
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pandas as pd
import pytest

from portone_recon import _time
from portone_recon._time import KST
from portone_recon.actions import StoredRecon
from portone_recon.sandbox.process import serve_in_subprocess
from portone_recon.store import Store

#: The finding kinds the loop tests plan and apply (the kinds their worlds produce).
FIXABLE = (
    "missed_webhook",
    "missing_next_schedule",
    "unpaid_renewal",
    "duplicate_schedule",
    "orphan_schedule",
)

START = datetime(2026, 10, 20, 9, 0, tzinfo=KST)
AS_OF = datetime(2026, 11, 27, 6, 0, tzinfo=KST)
APPROVE = "4242-4242-4242-4242"
DECLINE_2ND = "4000-0000-0000-0341"


def at(day: str, hour: int = 10) -> int:
    return int(datetime.fromisoformat(f"{day}T{hour:02d}:00:00").replace(tzinfo=KST).timestamp())


def entry(mu: str, day: str, amount: int, hour: int = 10) -> dict[str, Any]:
    return {
        "merchant_uid": mu,
        "schedule_at": at(day, hour),
        "amount": amount,
        "name": "월간 구독",
        "currency": "KRW",
    }


SUBSCRIPTIONS = pd.DataFrame(
    [
        {"customer_uid": "cus_a", "status": "active", "amount": 9900, "anchor_day": 3},
        {"customer_uid": "cus_b", "status": "active", "amount": 14900, "anchor_day": 25},
        {"customer_uid": "cus_c", "status": "active", "amount": 4900, "anchor_day": 10},
        {"customer_uid": "cus_d", "status": "cancelled", "amount": 4900, "anchor_day": 5},
        {"customer_uid": "cus_e", "status": "active", "amount": 10900, "anchor_day": 7},
    ]
)


def build_merchant(client: Any, advance: Callable[[datetime], None]) -> dict[str, str]:
    """Create the customers' keys and schedules at PortOne and run the clock to AS_OF."""
    for cu, card in (
        ("cus_a", APPROVE),
        ("cus_b", DECLINE_2ND),
        ("cus_c", APPROVE),
        ("cus_d", APPROVE),
        ("cus_e", APPROVE),
    ):
        client.issue_billing_key(cu, card_number=card, expiry="2030-12", birth="900101")
    client.create_schedules("cus_a", [entry("sub-cus_a-202611", "2026-11-03", 9900)])
    client.create_schedules(
        "cus_b",
        [entry("sub-cus_b-202610", "2026-10-25", 14900), entry("sub-cus_b-202611", "2026-11-25", 14900)],
    )
    client.create_schedules(
        "cus_c",
        [entry("sub-cus_c-202612", "2026-12-10", 4900), entry("sub-cus_c-202612-x", "2026-12-10", 4900, 11)],
    )
    client.create_schedules("cus_d", [entry("sub-cus_d-202612", "2026-12-05", 4900)])
    client.create_schedules("cus_e", [entry("sub-cus_e-202611", "2026-11-07", 9900)])
    advance(AS_OF)
    a = client.fetch_schedule("sub-cus_a-202611")
    b = client.fetch_schedule("sub-cus_b-202611")
    e = client.fetch_schedule("sub-cus_e-202611")
    assert a.payment_status == "paid" and b.payment_status == "failed" and e.payment_status == "paid"
    return {"imp_a": a.imp_uid, "imp_b": b.imp_uid, "imp_e": e.imp_uid}


def load_local(store: Store) -> None:
    """The merchant's orders as the store holds them."""
    rows = [
        ("sub-cus_a-202611", "cus_a", 9900, "pending", None),
        ("sub-cus_b-202610", "cus_b", 14900, "paid", "2026-10-25T10:00:00+09:00"),
        ("sub-cus_b-202611", "cus_b", 14900, "failed", None),
        ("sub-cus_e-202611", "cus_e", 10900, "pending", None),
    ]
    frame = pd.DataFrame(rows, columns=["merchant_uid", "customer_uid", "amount", "status", "paid_at"])
    frame["paid_at"] = pd.to_datetime(frame["paid_at"], utc=True)
    with store.transaction() as con:
        con.register("_orders", frame)
        con.execute(
            "INSERT INTO orders (merchant_uid, customer_uid, amount, currency, status, status_raw, imp_uid, "
            "paid_at, refunded_amount, source, loaded_at) "
            "SELECT merchant_uid, customer_uid, amount, 'KRW', status, status, NULL, paid_at, 0, 'test', "
            "now() FROM _orders"
        )
        con.unregister("_orders")


def finding(kind: str, **kw: Any) -> dict[str, Any]:
    """One finding row as reconcile reports it; unnamed evidence columns are empty."""
    row: dict[str, Any] = {
        "kind": kind,
        "severity": "high",
        "customer_uid": None,
        "merchant_uid": None,
        "imp_uid": None,
        "schedule_merchant_uid": None,
        "portone_status": None,
        "local_status": None,
        "portone_amount": None,
        "local_amount": None,
        "amount_at_risk": 0,
        "event_at": pd.NaT,
        "suggested_action": None,
        "detail": "",
        "finding_id": f"f_{kind}_{kw.get('customer_uid', '')}",
    }
    row.update(kw)
    return row


def findings(ids: dict[str, str]) -> pd.DataFrame:
    """What reconcile reports for this merchant (built by hand, so these tests stand alone)."""

    def f(kind: str, fid: str, **kw: Any) -> dict[str, Any]:
        return finding(kind, finding_id=fid, **kw)

    return pd.DataFrame(
        [
            f(
                "missed_webhook",
                "f1",
                customer_uid="cus_a",
                merchant_uid="sub-cus_a-202611",
                imp_uid=ids["imp_a"],
                portone_amount=9900,
                local_amount=9900,
            ),
            f(
                "missing_next_schedule",
                "f2",
                customer_uid="cus_a",
                local_amount=9900,
                schedule_merchant_uid="sub-cus_a-202611",
                event_at=pd.Timestamp("2026-11-03 10:00", tz=KST),
            ),
            f(
                "unpaid_renewal",
                "f3",
                customer_uid="cus_b",
                schedule_merchant_uid="sub-cus_b-202611",
                portone_status="failed",
                portone_amount=14900,
                event_at=pd.Timestamp("2026-11-25 10:00", tz=KST),
            ),
            f(
                "duplicate_schedule",
                "f4",
                customer_uid="cus_c",
                schedule_merchant_uid="sub-cus_c-202612-x",
                portone_amount=4900,
                detail="2 schedules booked in one billing period; keep sub-cus_c-202612, revoke this one "
                "(2026-12-10 11:00 KST, 4,900 KRW)",
            ),
            f("orphan_schedule", "f5", customer_uid="cus_d", schedule_merchant_uid="sub-cus_d-202612"),
            f(
                "missed_webhook",
                "f6",
                customer_uid="cus_e",
                merchant_uid="sub-cus_e-202611",
                imp_uid=ids["imp_e"],
                portone_amount=9900,
                local_amount=10900,
            ),
        ]
    )


def writes(log: list[dict[str, Any]]) -> list[str]:
    """The write requests in a sandbox request log (token requests excluded)."""
    return [
        f"{r['method']} {r['path']}"
        for r in log
        if r["method"] in ("POST", "PUT", "DELETE")
        and not str(r["path"]).startswith(("/users/getToken", "/__"))
    ]


class WallClock:
    """The wall clock apply and ``fix plan`` read (``portone_recon._time.now_kst``), for tests: a fixed
    instant, or the sandbox world's clock once a test has a world."""

    def __init__(self) -> None:
        self.fixed = AS_OF
        self.world: Any = None

    def __call__(self) -> datetime:
        return self.world.clock.now if self.world is not None else self.fixed


@pytest.fixture(autouse=True)
def wall(monkeypatch: pytest.MonkeyPatch) -> WallClock:
    clock = WallClock()
    monkeypatch.setattr(_time, "now_kst", clock)
    return clock


@pytest.fixture
def world(wall: WallClock) -> Any:
    from portone_recon.sandbox import SandboxWorld

    w = SandboxWorld(start=START, seed=7)
    wall.world = w
    return w


def store_run(
    store: Store, frame: pd.DataFrame, as_of: datetime = AS_OF, run_id: str = "run_test"
) -> StoredRecon:
    """Store hand-built findings as a reconciliation run (what ``reconcile`` would have stored)."""
    with store.transaction() as con:
        cols = [str(r[0]) for r in con.execute("DESCRIBE findings").fetchall()]
        rows = frame.copy()
        rows["run_id"] = run_id
        for c in cols:
            if c not in rows:
                rows[c] = None
        rows = rows[cols]
        con.execute(
            "INSERT INTO recon_runs (run_id, as_of, grace_seconds, started_at, finding_count) "
            "VALUES (?, ?, 900, ?, ?)",
            [run_id, as_of, as_of, len(rows)],
        )
        con.register("_f", rows)
        con.execute(f"INSERT INTO findings ({', '.join(cols)}) SELECT {', '.join(cols)} FROM _f")
        con.unregister("_f")
    return StoredRecon(run_id, as_of, frame)


def load_subs(store: Store) -> None:
    """The merchant's subscriptions table (started before the first renewal)."""
    frame = SUBSCRIPTIONS.copy()
    with store.transaction() as con:
        con.register("_subs", frame)
        con.execute(
            "INSERT INTO subscriptions (customer_uid, status, status_raw, amount, interval_months, "
            "anchor_day, started_at, cancelled_at, source, loaded_at) "
            "SELECT customer_uid, status, status, amount, 1, anchor_day, "
            "TIMESTAMPTZ '2026-10-01 00:00:00+09', "
            "CASE WHEN status = 'cancelled' THEN TIMESTAMPTZ '2026-11-20 00:00:00+09' END, 'test', now() "
            "FROM _subs"
        )
        con.unregister("_subs")


@pytest.fixture
def served() -> Iterator[dict[str, Any]]:
    with serve_in_subprocess("--seed", "7", "--start", START.isoformat()) as info:
        yield info
