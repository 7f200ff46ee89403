"""The V2 re-read of refundable payments: a second partial refund of an old payment reaches the store under
either reading of whether it moves ``statusChangedAt``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from v2_world import START, mixed_world

from portone_recon.api.v2 import PortOneV2Client
from portone_recon.config import Settings
from portone_recon.sandbox import SandboxWorld
from portone_recon.sandbox.v2_api import SandboxV2
from portone_recon.store import Store
from portone_recon.sync import SyncReport
from portone_recon.sync.report import StreamResult
from portone_recon.sync.v2 import sync_v2

PAY = (
    "imp_uid, merchant_uid, customer_uid, status, status_v2, amount, cancel_amount, currency, paid_at, "
    "status_changed_at, raw"
)
CAN = "imp_uid, cancellation_id, amount, cancelled_at, reason"


def _sync(v2: SandboxV2, path: Path, **kwargs: Any) -> tuple[Store, SyncReport]:
    store = Store(path)
    settings = Settings(api_secret="sandbox_v2_secret", v2_api_base="https://v2.invalid", concurrency=3)
    now = datetime.fromtimestamp(v2.world.now, UTC)
    with PortOneV2Client(settings, transport=v2.transport(), sleep=lambda s: None) as c:
        report = sync_v2(c, store, now=now, lookback=timedelta(days=200), **kwargs)
    return store, report


def _stream(report: SyncReport) -> StreamResult:
    return next(s for s in report.streams if s.stream == "v2:refundable")


def _cancelled(store: Store, imp_uid: str) -> int:
    return int(store.query("SELECT cancel_amount FROM payments WHERE imp_uid = ?", [imp_uid]).iloc[0, 0])


def _old_paid(w: SandboxWorld) -> dict[str, Any]:
    return min(
        (p for p in w.payments.values() if p["status"] == "paid" and not p["cancel_amount"]),
        key=lambda p: (p["paid_at"], p["imp_uid"]),
    )


def _tables(store: Store) -> tuple[pd.DataFrame, pd.DataFrame]:
    return (
        store.query(f"SELECT {PAY} FROM payments ORDER BY imp_uid"),
        store.query(f"SELECT {CAN} FROM payment_cancellations ORDER BY imp_uid, cancellation_id"),
    )


def _reread_ids(v2: SandboxV2) -> list[str]:
    return [r["path"].removeprefix("/payments/") for r in v2.requests if r["path"].startswith("/payments/")]


@pytest.mark.parametrize("moves", [True, False], ids=["second-cancel-moves-status-time", "it-does-not"])
def test_a_second_partial_refund_of_a_four_month_old_payment_reaches_the_store(
    tmp_path: Path, moves: bool
) -> None:
    w, v2 = mixed_world(v2_only=True)
    v2.partial_cancel_moves_status_time = moves
    path = tmp_path / "v2.duckdb"
    _, first = _sync(v2, path)
    assert _stream(first).api_calls == 0  # the first run has just listed everything
    w.advance(to=START + timedelta(days=125))
    _sync(v2, path)  # the weekly pass is due (and finds nothing new)
    old = _old_paid(w)
    assert w.now - old["paid_at"] > 120 * 86400
    w.cancel_payment(imp_uid=old["imp_uid"], amount=1000, reason="첫 부분 환불")
    w.advance(seconds=3600)
    store, _ = _sync(v2, path)
    assert _cancelled(store, old["imp_uid"]) == 1000  # a status transition: the listing shows it
    w.advance(seconds=86400)
    _sync(v2, path)  # a day later: the first refund is behind the listing's overlap

    w.cancel_payment(imp_uid=old["imp_uid"], amount=2000, reason="두 번째 부분 환불")
    w.advance(seconds=3600)
    v2.requests.clear()
    store, daily = _sync(v2, path)
    assert _stream(daily).api_calls == 0  # not due: no re-read on a daily run
    # The listing sees the second refund only if it moved statusChangedAt.
    assert _cancelled(store, old["imp_uid"]) == (3000 if moves else 1000)

    w.advance(seconds=8 * 86400)
    v2.requests.clear()
    store, weekly = _sync(v2, path)
    reread = _stream(weekly)
    assert _cancelled(store, old["imp_uid"]) == 3000
    assert reread.api_calls == len(_reread_ids(v2)) >= 1
    listed = next(s for s in weekly.streams if s.stream == "v2:payments").range_from
    assert listed is not None
    # Every partially cancelled V2 payment with money left was read again (a PAID one needs no re-read:
    # any cancel changes its status), except those this run's listing has just read (under "moves", the
    # old payment itself: its second refund moved it into the listing).
    refundable = {
        p["merchant_uid"]
        for p in w.payments.values()
        if p["status"] == "paid" and 0 < p["cancel_amount"] < p["amount"]
        and v2.status_changed_at(p) < listed.timestamp()
    }  # fmt: skip
    assert (old["merchant_uid"] in _reread_ids(v2)) == (not moves)
    assert sorted(_reread_ids(v2)) == sorted(refundable)
    assert reread.tables["payment_cancellations"].new == (0 if moves else 1)

    fresh, _ = _sync(v2, tmp_path / "fresh.duckdb")
    for got, want in zip(_tables(store), _tables(fresh), strict=True):
        pd.testing.assert_frame_equal(got, want)


def test_full_runs_the_re_read_on_a_daily_run(tmp_path: Path) -> None:
    w, v2 = mixed_world(v2_only=True)
    path = tmp_path / "v2.duckdb"
    _sync(v2, path)
    old = _old_paid(w)
    w.cancel_payment(imp_uid=old["imp_uid"], amount=500, reason="부분 환불")
    w.cancel_payment(imp_uid=old["imp_uid"], amount=700, reason="추가 부분 환불")
    w.advance(seconds=3600)
    store, daily = _sync(v2, path)
    assert _stream(daily).api_calls == 0
    w.advance(seconds=86400)
    _sync(v2, path)
    w.cancel_payment(imp_uid=old["imp_uid"], amount=300, reason="세 번째 부분 환불")
    w.advance(seconds=3600)
    store, daily = _sync(v2, path)
    assert _cancelled(store, old["imp_uid"]) == 1200  # the default reading: the listing misses it
    store, forced = _sync(v2, path, full=True)
    assert _stream(forced).api_calls >= 1
    assert _cancelled(store, old["imp_uid"]) == 1500
    n = store.query("SELECT count(*) FROM payment_cancellations WHERE imp_uid = ?", [old["imp_uid"]])
    assert int(n.iloc[0, 0]) == 3


def test_an_unreadable_re_read_answer_is_quarantined_and_the_rest_stored(tmp_path: Path) -> None:
    w, v2 = mixed_world(v2_only=True)
    path = tmp_path / "v2.duckdb"
    _sync(v2, path)
    victim = _old_paid(w)
    other = min(
        (p for p in w.payments.values() if p["status"] == "paid" and p["imp_uid"] != victim["imp_uid"]),
        key=lambda p: p["imp_uid"],
    )
    for p in (victim, other):  # partially cancelled: what the pass reads again
        w.cancel_payment(imp_uid=p["imp_uid"], amount=100, reason="부분 환불")
    w.advance(seconds=3600)
    _sync(v2, path)
    w.advance(seconds=86400)
    _sync(v2, path)  # the refunds are behind the listing's overlap now
    original = v2.render_payment

    def render(p: dict[str, Any]) -> dict[str, Any]:
        out = original(p)
        if p["imp_uid"] == victim["imp_uid"]:
            out["amount"]["cancelled"] = "a lot"
        return out

    v2.render_payment = render  # type: ignore[method-assign]
    w.advance(seconds=3600)
    store, report = _sync(v2, path, full=True)
    q = store.query("SELECT record_key, endpoint, stream, reason FROM quarantine")
    assert q.to_dict("records") == [
        {
            "record_key": victim["imp_uid"],
            "endpoint": "/payments/{paymentId}",
            "stream": "v2:refundable",
            "reason": "amount.cancelled must be an integer amount (minor units), got 'a lot'",
        }
    ]
    assert report.quarantined == 1
    assert _stream(report).items > 1
    v2.render_payment = original  # type: ignore[method-assign]
    store, _ = _sync(v2, path, full=True)  # read cleanly: it leaves quarantine
    assert int(store.query("SELECT count(*) FROM quarantine").iloc[0, 0]) == 0
