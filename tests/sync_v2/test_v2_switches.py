"""Each UNCONFIRMED V2 behaviour the sync relies on, played both ways by the sandbox: the store and the
findings are the same under either reading, or (where a reading hides what the sync needs) the loss is
the one stated and nothing else changes.

A merchant is read through V2 alone (a V2 merchant) or through V1 and V2 (a migrating one: the V2 sync
reads only ``version: "V2"``), once with the played reading and once with the other.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from portone_recon.api import PortOneClient
from portone_recon.api.v2 import PortOneV2Client
from portone_recon.config import Settings
from portone_recon.reconcile import reconcile
from portone_recon.sandbox.scenario import Scenario, generate_merchant
from portone_recon.sandbox.v2_api import SandboxV2
from portone_recon.store import Store
from portone_recon.sync import sync
from portone_recon.sync.v2 import sync_v2

sys.path.insert(0, str(Path(__file__).parent.parent / "reconcile"))
from _recon_scenario import load_local

Reading = Callable[[SandboxV2], None]

#: What each table is compared on (the time a row was written differs between two syncs).
TABLES = {
    "payments": ("imp_uid", "synced_at"),
    "payment_cancellations": ("imp_uid, cancellation_id", "synced_at"),
    "schedules": ("merchant_uid", "synced_at"),
    "billing_keys": ("customer_uid", "synced_at"),
    "v2_billing_keys": ("billing_key", "synced_at"),
    "quarantine": ("source, raw_hash", "first_seen, last_seen"),
}


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return generate_merchant(300, 8, seed=33)


def _v1_customers(sc: Scenario) -> list[str]:
    customers = sorted({p["customer_uid"] for p in sc.world.payments.values() if p.get("customer_uid")})
    return customers[::2]


def _store(
    sc: Scenario,
    path: Path,
    reading: Reading | None = None,
    *,
    mixed: bool = False,
    v2_only_of_mixed: bool = False,
) -> tuple[Store, SandboxV2]:
    """A store of ``sc`` read through V2 (and V1 first when ``mixed``) with ``reading`` played."""
    v1_customers = _v1_customers(sc) if mixed or v2_only_of_mixed else []
    v2 = SandboxV2(sc.world, v1_customers=v1_customers)
    if reading is not None:
        reading(v2)
    store = Store(path)
    if mixed:
        w = sc.world
        with PortOneClient(
            imp_key=w.imp_key, imp_secret=w.imp_secret, transport=w.transport(), sleep=lambda s: None
        ) as c:
            sync(c, store, progress=False)
    settings = Settings(api_secret="sandbox_v2_secret", v2_api_base="https://v2.invalid")
    with PortOneV2Client(settings, transport=v2.transport(), sleep=lambda s: None) as client:
        sync_v2(client, store, now=sc.as_of, only_v2=mixed)
    return store, v2


def _table(store: Store, table: str) -> pd.DataFrame:
    key, skip = TABLES[table]
    df = store.query(f"SELECT * EXCLUDE ({skip}) FROM {table} ORDER BY {key}")
    return df.reset_index(drop=True)


def _findings(store: Store, sc: Scenario) -> pd.DataFrame:
    load_local(store, sc.orders, sc.subscriptions)
    found = reconcile(store, as_of=sc.as_of, grace="15min", progress=False).findings
    return found.sort_values(["kind", "finding_id"]).reset_index(drop=True)


def _same_store(a: Store, b: Store, *, tables: tuple[str, ...] = tuple(TABLES)) -> None:
    for table in tables:
        pd.testing.assert_frame_equal(_table(a, table), _table(b, table), obj=table)


def _ready(v2: SandboxV2) -> None:
    v2.ready_before_time_to_pay = True


def _issuance(v2: SandboxV2) -> None:
    v2.issuance_listed = True


def _short_windows(v2: SandboxV2) -> None:
    v2.max_window_days = 31


def _listed(v2: SandboxV2, **flt: Any) -> list[dict[str, Any]]:
    """What ``GET /payments`` lists over the whole world under ``v2``'s reading."""
    settings = Settings(api_secret="sandbox_v2_secret", v2_api_base="https://v2.invalid")
    now = datetime.fromtimestamp(v2.world.now, UTC)
    with PortOneV2Client(settings, transport=v2.transport(), sleep=lambda s: None) as c:
        return list(c.payments(now - timedelta(days=800), now, **flt))


@pytest.mark.parametrize("mixed", [False, True], ids=["v2", "mixed"])
def test_ready_payments_before_time_to_pay_leave_store_and_findings_alone(
    scenario: Scenario, tmp_path: Path, mixed: bool
) -> None:
    played, _ = _store(scenario, tmp_path / "a.duckdb", mixed=mixed)
    other, v2 = _store(scenario, tmp_path / "b.duckdb", _ready, mixed=mixed)
    # The other reading does list every booked schedule as a READY payment with an id of its own.
    ready = [p for p in _listed(v2, version="V2") if p["status"] == "READY"]
    booked = {
        mu
        for mu, s in scenario.world.schedules.items()
        if s["schedule_status"] == "scheduled" and v2.is_v2_customer(s["customer_uid"])
    }
    assert booked and booked <= {p["id"] for p in ready}
    assert all("scheduleId" in p and p["amount"]["paid"] == 0 for p in ready)
    _same_store(played, other)
    pd.testing.assert_frame_equal(_findings(played, scenario), _findings(other, scenario))


@pytest.mark.parametrize("mixed", [False, True], ids=["v2", "mixed"])
def test_listed_issuance_transactions_are_issuances_not_payments(
    scenario: Scenario, tmp_path: Path, mixed: bool
) -> None:
    issued = {i for i, p in scenario.world.payments.items() if p.get("customer_uid_usage") == "issue"}
    assert issued, "the scenario records issuance transactions"
    played, _ = _store(scenario, tmp_path / "a.duckdb", mixed=mixed)
    other, v2 = _store(scenario, tmp_path / "b.duckdb", _issuance, mixed=mixed)
    listed = {p["transactionId"]: p for p in _listed(v2)}
    assert issued <= set(listed) and {listed[i]["amount"]["total"] for i in issued} == {0}
    pd.testing.assert_frame_equal(_findings(played, scenario), _findings(other, scenario))
    rows = other.query("SELECT imp_uid, customer_uid_usage, source_api FROM payments")
    usage = dict(zip(rows["imp_uid"], rows["customer_uid_usage"], strict=True))
    assert len(rows) == len(set(rows["imp_uid"])) == len(scenario.world.payments)  # each once
    assert {usage[i] for i in issued} == {"issue"}
    # Apart from the issuance rows (now read through V2 too), the store is the played reading's.
    rest = (
        "SELECT * EXCLUDE (synced_at) FROM payments WHERE coalesce(customer_uid_usage, '') <> 'issue' "
        "ORDER BY imp_uid"
    )
    pd.testing.assert_frame_equal(played.query(rest), other.query(rest))
    _same_store(played, other, tables=("schedules", "billing_keys", "v2_billing_keys", "quarantine"))


@pytest.mark.parametrize("shown", ["own_id", "hidden"])
def test_v1_keys_through_v2_leave_a_mixed_store_alone(scenario: Scenario, tmp_path: Path, shown: str) -> None:
    played, _ = _store(scenario, tmp_path / "a.duckdb", mixed=True)

    def reading(v2: SandboxV2) -> None:
        v2.v1_keys = shown  # type: ignore[assignment]

    other, _ = _store(scenario, tmp_path / "b.duckdb", reading, mixed=True)
    _same_store(played, other)
    pd.testing.assert_frame_equal(_findings(played, scenario), _findings(other, scenario))


def test_v1_payment_ids_through_v2_leave_a_mixed_store_alone(scenario: Scenario, tmp_path: Path) -> None:
    played, _ = _store(scenario, tmp_path / "a.duckdb", mixed=True)

    def reading(v2: SandboxV2) -> None:
        v2.v1_payment_id = "imp_uid"

    other, v2 = _store(scenario, tmp_path / "b.duckdb", reading, mixed=True)
    v1 = [p for p in _listed(v2, version="V1") if p["status"] == "PAID"]
    assert v1 and all(p["id"] == p["transactionId"] for p in v1)
    _same_store(played, other)
    pd.testing.assert_frame_equal(_findings(played, scenario), _findings(other, scenario))


@pytest.mark.parametrize("mixed", [False, True], ids=["v2", "mixed"])
def test_a_short_longest_window_is_split_into_the_same_store(
    scenario: Scenario, tmp_path: Path, mixed: bool
) -> None:
    played, _ = _store(scenario, tmp_path / "a.duckdb", mixed=mixed)
    other, v2 = _store(scenario, tmp_path / "b.duckdb", _short_windows, mixed=mixed)
    refused = Counter(r["path"] for r in v2.requests if r["status"] == 400)
    # 90 days refused, 45 refused, 22.5 accepted: the client keeps the shorter span, so a listing is
    # refused at most twice (the payments, and the schedules fetched beside them before the span was
    # learned); the billing keys, listed after, are never refused
    assert refused["/payments"] == 2 and refused["/payment-schedules"] <= 2
    assert set(refused) <= {"/payments", "/payment-schedules"}
    assert any(r["path"] == "/payment-schedules" and r["status"] == 200 for r in v2.requests)
    _same_store(played, other)
    pd.testing.assert_frame_equal(_findings(played, scenario), _findings(other, scenario))


@pytest.mark.parametrize("shown", ["own_id", "hidden"])
def test_v1_keys_through_v2_alone_keep_the_findings(scenario: Scenario, tmp_path: Path, shown: str) -> None:
    """A migrating merchant synced with its V2 secret only: V1 keys under their own id, or not at all."""
    played, _ = _store(scenario, tmp_path / "a.duckdb", v2_only_of_mixed=True)

    def reading(v2: SandboxV2) -> None:
        v2.v1_keys = shown  # type: ignore[assignment]

    other, v2 = _store(scenario, tmp_path / "b.duckdb", reading, v2_only_of_mixed=True)
    pd.testing.assert_frame_equal(_findings(played, scenario), _findings(other, scenario))
    v1 = set(_v1_customers(scenario))
    keys = _table(other, "billing_keys").set_index("customer_uid")["billing_key"]
    before = _table(played, "billing_keys").set_index("customer_uid")["billing_key"]
    if shown == "hidden":  # what cannot be known: the V1 customers' keys
        assert set(before.index) - set(keys.index) == v1 & set(before.index) != set()
        assert all(keys[cu] == before[cu] for cu in keys.index)
    else:
        assert set(keys.index) == set(before.index)
        assert {keys[cu] for cu in v1 & set(keys.index)} == {
            v2.billing_key_of(cu) for cu in v1 & set(keys.index)
        }
        assert all(keys[cu] != cu for cu in v1 & set(keys.index))


def test_v1_payment_ids_through_v2_alone_are_matched_by_the_orders_imp_uid(
    scenario: Scenario, tmp_path: Path
) -> None:
    """V2 secret only, V1 payments under their imp_uid: the order that recorded that imp_uid names the
    payment's order; a V1 payment whose order never learnt it (a lost webhook, a cancelled order) reads
    as a payment without an order, and nothing else changes."""
    played, _ = _store(scenario, tmp_path / "a.duckdb", v2_only_of_mixed=True)

    def reading(v2: SandboxV2) -> None:
        v2.v1_payment_id = "imp_uid"

    other, _ = _store(scenario, tmp_path / "b.duckdb", reading, v2_only_of_mixed=True)
    a, b = _findings(played, scenario), _findings(other, scenario)
    cols = ["kind", "finding_id", "imp_uid"]
    merged = a[cols].merge(b[cols], how="outer", indicator=True)
    lost = merged[merged["_merge"] == "left_only"]
    gained = merged[merged["_merge"] == "right_only"]
    assert len(lost) > 0 and len(b) - len(gained) == len(a) - len(lost)
    orders = scenario.orders.set_index("merchant_uid")
    v1 = set(_v1_customers(scenario))
    pays = {p["imp_uid"]: p for p in scenario.world.payments.values()}
    for kind, imp in zip(lost["kind"], lost["imp_uid"], strict=True):
        p = pays[imp]
        assert kind in ("missed_webhook", "charged_after_cancel") and p["customer_uid"] in v1
        assert pd.isna(orders.loc[p["merchant_uid"], "imp_uid"])  # the order never learnt it
    assert set(gained["kind"]) == {"unknown_payment"} and set(gained["imp_uid"]) == set(lost["imp_uid"])
    # Every other finding is the same, detail and all, except that a V1 payment no order recorded now
    # names its imp_uid where its merchant_uid was, and says why.
    both = a.merge(b, on=["kind", "finding_id"], suffixes=("", "_b"))
    assert len(both) == len(a) - len(lost)
    x, y = both["merchant_uid"], both["merchant_uid_b"]
    moved = both[~((x == y) | (x.isna() & y.isna()))]
    assert len(moved) > 0 and set(moved["kind"]) == {"unknown_payment"}
    assert (moved["merchant_uid_b"] == moved["imp_uid"]).all()
    assert moved["detail_b"].str.contains("merchant_uid is not known").all()
    rest = both.drop(index=moved.index)
    for col in (c for c in a.columns if f"{c}_b" in rest):
        pd.testing.assert_series_equal(rest[col], rest[f"{col}_b"], check_names=False)
