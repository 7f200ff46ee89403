"""The V2 sync writes the same tables as V1: one model, each payment once, unreadable records quarantined."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from v2_world import START, mixed_world

from portone_recon.api import PortOneClient
from portone_recon.api.v2 import PortOneV2Client
from portone_recon.config import Settings
from portone_recon.sandbox import SandboxWorld
from portone_recon.sandbox.v2_api import SandboxV2
from portone_recon.store import Store
from portone_recon.sync import sync
from portone_recon.sync import v2 as v2_sync
from portone_recon.sync.v2 import sync_v2

PAY = (
    "imp_uid, merchant_uid, customer_uid, status, amount, cancel_amount, currency, paid_at, failed_at, "
    "sandbox, name"
)
SCH = "merchant_uid, customer_uid, schedule_status, payment_status, imp_uid, schedule_at, amount, fail_reason"


def _now(w: SandboxWorld) -> datetime:
    return datetime.fromtimestamp(w.now, UTC)


def _v1(w: SandboxWorld, path: Path) -> Store:
    store = Store(path)
    with PortOneClient(imp_key=w.imp_key, imp_secret=w.imp_secret, api_base="https://v1.invalid",
                       transport=w.transport(), sleep=lambda s: None) as c:  # fmt: skip
        sync(c, store, progress=False, lookback=timedelta(days=200))
    return store


def _v2(v2: SandboxV2, path: Path, *, only_v2: bool = False, since: datetime | None = None) -> Store:
    store = Store(path)
    settings = Settings(api_secret="sandbox_v2_secret", v2_api_base="https://v2.invalid")
    with PortOneV2Client(settings, transport=v2.transport(), sleep=lambda s: None) as c:
        sync_v2(c, store, since, now=_now(v2.world), only_v2=only_v2, lookback=timedelta(days=200))
    return store


def _rows(store: Store, cols: str, table: str, key: str) -> pd.DataFrame:
    return store.query(f"SELECT {cols} FROM {table} ORDER BY {key}")


def test_a_v2_merchant_gets_the_same_rows_as_through_v1(tmp_path: Path) -> None:
    w, v2 = mixed_world(v2_only=True)
    a = _v1(w, tmp_path / "v1.duckdb")
    b = _v2(v2, tmp_path / "v2.duckdb")
    pd.testing.assert_frame_equal(_rows(a, PAY, "payments", "imp_uid"), _rows(b, PAY, "payments", "imp_uid"))
    pd.testing.assert_frame_equal(
        _rows(a, SCH, "schedules", "merchant_uid"), _rows(b, SCH, "schedules", "merchant_uid")
    )
    ka = _rows(a, "customer_uid, deleted", "billing_keys", "customer_uid")
    kb = _rows(b, "customer_uid, deleted", "billing_keys", "customer_uid")
    pd.testing.assert_frame_equal(ka, kb)
    cancels = "SELECT imp_uid, amount FROM payment_cancellations ORDER BY imp_uid"
    pd.testing.assert_frame_equal(a.query(cancels), b.query(cancels))
    assert set(b.query("SELECT DISTINCT source_api FROM payments")["source_api"]) == {"v2"}
    # A second run changes nothing.
    again = _v2(v2, tmp_path / "v2.duckdb")
    assert again.query("SELECT count(*) AS n FROM payments")["n"][0] == len(w.payments)


def test_a_mixed_store_holds_each_payment_once(tmp_path: Path) -> None:
    w, v2 = mixed_world()
    gone = sorted(c for c in w.billing_keys if not c.startswith("v1_"))[0]
    w.delete_billing_key(gone)  # a V2 key deleted: the V1 lookup leaves it out too and proves it
    path = tmp_path / "mixed.duckdb"
    _v1(w, path)
    store = _v2(v2, path, only_v2=True)
    n = store.query("SELECT count(*) AS n, count(DISTINCT imp_uid) AS d FROM payments")
    assert int(n["n"][0]) == int(n["d"][0]) == len(w.payments)
    by = store.query(
        "SELECT customer_uid LIKE 'v1_%' AS v1, source_api, count(*) AS n FROM payments "
        "GROUP BY ALL ORDER BY ALL"
    )
    assert by.to_dict("records") == [
        {"v1": False, "source_api": "v2", "n": int(by[~by.v1]["n"].sum())},
        {"v1": True, "source_api": "v1", "n": int(by[by.v1]["n"].sum())},
    ]
    # A V2-stored key's deletion is its own record's word, whatever a V1 lookup proved before.
    key = store.query(
        "SELECT source_api, deleted, deleted_proof FROM billing_keys WHERE customer_uid = ?", [gone]
    )
    assert key.to_dict("records") == [{"source_api": "v2", "deleted": True, "deleted_proof": None}]
    # Without V1 credentials, V2 alone reads the V1 payments too (version V1), still once each.
    solo = _v2(v2, tmp_path / "solo.duckdb")
    row = solo.query("SELECT count(*) AS n, count(*) FILTER (WHERE api_version = 'V1') AS v1 FROM payments")
    assert int(row["n"][0]) == len(w.payments) and int(row["v1"][0]) > 0


def test_unreadable_v2_records_are_quarantined_and_the_rest_stored(tmp_path: Path) -> None:
    w, v2 = mixed_world(v2_only=True)
    original = v2.render_payment
    # not the payment partially refunded just now: its status change puts it in the next listing too
    victim = sorted(i for i, p in w.payments.items() if not p["cancel_amount"])[0]

    def render(p: dict) -> dict:
        out = original(p)
        if p["imp_uid"] == victim:
            out["status"] = "PAUSED_BY_A_FUTURE_FEATURE"
        return out

    v2.render_payment = render  # type: ignore[method-assign]
    store = _v2(v2, tmp_path / "q.duckdb")
    q = store.query("SELECT source, record_key, reason FROM quarantine")
    assert q.to_dict("records") == [
        {
            "source": "payments",
            "record_key": victim,
            "reason": "status 'PAUSED_BY_A_FUTURE_FEATURE' is not a payment status this version knows",
        }
    ]
    assert int(store.query("SELECT count(*) AS n FROM payments")["n"][0]) == len(w.payments) - 1
    v2.render_payment = original  # type: ignore[method-assign]
    store = _v2(v2, tmp_path / "q.duckdb")  # incremental: the old record is not listed again
    assert store.query("SELECT count(*) AS n FROM quarantine")["n"][0] == 1
    store = _v2(v2, tmp_path / "q.duckdb", since=START - timedelta(days=1))  # read again, cleanly
    assert store.query("SELECT count(*) AS n FROM quarantine")["n"][0] == 0


def test_a_card_change_is_a_new_key_not_a_churn(tmp_path: Path) -> None:
    w, v2 = mixed_world(v2_only=True)
    w.delete_billing_key("v2_cust_2")
    store = _v2(v2, tmp_path / "k.duckdb")
    assert store.query("SELECT deleted FROM billing_keys WHERE customer_uid = 'v2_cust_2'")["deleted"][0]
    w.advance(to=START + timedelta(days=71))
    w.issue_billing_key("v2_cust_2")
    store = _v2(v2, tmp_path / "k.duckdb")
    assert not store.query("SELECT deleted FROM billing_keys WHERE customer_uid = 'v2_cust_2'")["deleted"][0]


def test_the_v2_secret_is_in_no_artifact(tmp_path: Path) -> None:
    w, _ = mixed_world(v2_only=True)
    secret = "v2-live-secret-Qx81zz"
    v2 = SandboxV2(w, api_secret=secret)
    store = Store(tmp_path / "s.duckdb")
    settings = Settings(api_secret=secret, v2_api_base="https://v2.invalid")
    with PortOneV2Client(settings, transport=v2.transport(), sleep=lambda s: None) as c:
        report = sync_v2(c, store, now=_now(w), lookback=timedelta(days=200))
        assert secret not in repr(c) and secret not in repr(settings) and secret not in repr(report)
    store.checkpoint()
    assert secret.encode() not in (tmp_path / "s.duckdb").read_bytes()
    assert all(secret not in str(r) for r in v2.requests)


def test_small_chunks_store_the_same_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    w, v2 = mixed_world(v2_only=True)
    whole = _v2(v2, tmp_path / "whole.duckdb")
    monkeypatch.setattr(v2_sync, "CHUNK", 7)  # many pieces, windows sharing bounds across pieces
    pieces = _v2(v2, tmp_path / "pieces.duckdb")
    for cols, table, key in (
        (PAY, "payments", "imp_uid"),
        ("imp_uid, amount", "payment_cancellations", "imp_uid"),
    ):
        pd.testing.assert_frame_equal(_rows(whole, cols, table, key), _rows(pieces, cols, table, key))
    assert len(_rows(pieces, PAY, "payments", "imp_uid")) == len(w.payments) > 7
