"""The incremental policy: near-future schedules, the periodic full pass, billing keys, -updated scan."""

from __future__ import annotations

from datetime import datetime, timedelta

from portone_recon._time import KST
from portone_recon.store import Store
from portone_recon.sync import SyncReport, sync
from portone_recon.sync.report import StreamResult

from ._world import build_world, store_tables, unix, world_tables


def _stream(report: SyncReport, name: str) -> StreamResult:
    return next(s for s in report.streams if s.stream == name)


def _calls(w: object, path: str) -> int:
    return sum(1 for r in w.requests if r["path"].startswith(path))  # type: ignore[attr-defined]


def test_far_booking_and_deleted_key_wait_for_the_full_pass_then_match(store: Store) -> None:
    w = build_world()
    with w.client() as client:
        sync(client, store, progress=False)
        w.advance(seconds=86400)
        far = unix(w.clock.now + timedelta(days=200))
        w.create_schedules("cust_001", [{"merchant_uid": "far_1", "schedule_at": far, "amount": 1100}])
        w.delete_billing_key("cust_002")  # no failed charge yet: only the full pass can see it
        w.advance(seconds=60)
        w.requests.clear()
        report = sync(client, store, progress=False)
        ids = set(store.query("SELECT merchant_uid FROM schedules")["merchant_uid"])
        assert "far_1" not in ids  # beyond until + 40 days: not read on a day-to-day run
        assert "near future only" in _stream(report, "schedules").note
        # cust_002 has charges booked ahead: its key is checked daily, and the deletion is recorded only
        # once its own GET confirms it
        assert store.query("SELECT deleted FROM billing_keys WHERE customer_uid = 'cust_002'").iloc[0, 0]
        assert _calls(w, "/subscribe/customers/cust_002") == 1
        assert report["billing_keys"].updated == 1
        full = sync(client, store, progress=False, full=True)
    assert store_tables(store) == world_tables(w)
    assert full["schedules"].new == 1


def test_full_pass_runs_by_itself_once_it_is_due(store: Store) -> None:
    w = build_world()
    with w.client() as client:
        sync(client, store, progress=False)
        far = unix(w.clock.now + timedelta(days=300))
        w.create_schedules("cust_001", [{"merchant_uid": "far_2", "schedule_at": far, "amount": 1100}])
        w.advance(seconds=8 * 86400)  # more than full_every (7 days)
        report = sync(client, store, progress=False)
    assert "near future only" not in _stream(report, "schedules").note
    assert store_tables(store) == world_tables(w)


def test_updated_scan_skips_what_the_paid_stream_read(store: Store) -> None:
    w = build_world()
    with w.client() as client:
        sync(client, store, progress=False)
        w.advance(to=datetime(2025, 6, 5, 12, 0, tzinfo=KST))  # renewals: new paid payments
        w.advance(seconds=60)
        w.requests.clear()
        report = sync(client, store, progress=False)
    assert store_tables(store) == world_tables(w)
    scans = [r for r in w.requests if dict(r["query"]).get("sorting") == "-updated"]
    assert scans, "the refund scan still runs"
    # It only covers payments paid before the paid stream's range (new payments are read once).
    lo = unix(_stream(report, "payments:paid").range_from)
    assert all(int(dict(r["query"])["to"]) <= lo for r in scans)
