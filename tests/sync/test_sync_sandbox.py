"""sync() end to end against the in-process sandbox, through the real PortOneClient."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest

from portone_recon._time import KST
from portone_recon.api.envelope import RawPage, fast_page_header
from portone_recon.errors import MalformedResponseError
from portone_recon.sandbox import CardBehaviour
from portone_recon.sandbox.variants import VARIANTS, ApiVariant
from portone_recon.store import Store
from portone_recon.sync import SyncReport, sync

from ._world import Tap, build_world, snapshot, store_tables, unix, world_tables


@pytest.mark.parametrize("variant", list(VARIANTS.values()), ids=list(VARIANTS))
def test_fresh_sync_matches_the_world_and_rerun_changes_nothing(store: Store, variant: ApiVariant) -> None:
    w = build_world(variant=variant)
    expected = world_tables(w)
    assert len(expected["payments"]) > 40
    assert expected["cancels"]
    assert any(v is True for v in expected["keys"].values())
    with w.client() as client:
        report = sync(client, store, progress=False)
        assert store_tables(store) == expected
        assert report["payments"].new == len(expected["payments"])
        assert report["schedules"].new == len(expected["schedules"])
        assert report["payment_cancellations"].new == len(expected["cancels"])
        before = snapshot(store)
        again = sync(client, store, progress=False)
    assert again.new == 0
    assert again.updated == 0
    assert snapshot(store) == before


def test_incremental_day_costs_calls_in_proportion_to_change(store: Store) -> None:
    w = build_world()
    with w.client() as client:
        first = sync(client, store, progress=False)
        # Activity since: the 5 June renewals run, a partial refund today on a payment paid
        # about 80 days ago (status stays "paid"), one add-on purchase, one new schedule.
        w.advance(to=datetime(2025, 6, 5, 9, 0, tzinfo=KST))
        w.advance(to=datetime(2025, 6, 25, 9, 0, tzinfo=KST))
        old = next(
            p
            for p in sorted(w.payments.values(), key=lambda p: p["paid_at"])
            if p["status"] == "paid"
            and 75 * 86400 < w.clock.now_unix - p["paid_at"] < 89 * 86400
            and not p["cancel_history"]
        )
        w.cancel_payment(imp_uid=old["imp_uid"], amount=1500, reason="부분 환불")
        w.pay_again(customer_uid="cust_001", merchant_uid="addon_2", amount=1100, name="추가 구매")
        w.create_schedules(
            "cust_001",
            [
                {
                    "merchant_uid": "extra_1",
                    "schedule_at": unix(datetime(2025, 9, 1, tzinfo=KST)),
                    "amount": 1100,
                }
            ],
        )
        w.advance(seconds=60)
        w.requests.clear()
        report = sync(client, store, progress=False)
    assert store_tables(store) == world_tables(w)
    refunded = store.query("SELECT cancel_amount, status FROM payments WHERE imp_uid = ?", [old["imp_uid"]])
    assert refunded.iloc[0]["cancel_amount"] == 1500
    assert refunded.iloc[0]["status"] == "paid"
    # The minimum for this design: getToken for PortOne's clock; the client's token expired while the
    # sandbox clock jumped 36 days (one 401 + one getToken); one call per status stream (4); one -updated
    # page; 5 schedule windows (1 h overlap + 400-day horizon); one billing-key lookup. Pages hold up to
    # 1000 items, so the period's ~25 changes fit in one page each. History (60+ payments, 400 days of
    # windows) does not enter: the first run needed 4 x 5 status windows + 9 schedule windows.
    assert report.api_calls <= 14, _calls(w)
    assert report.api_calls < first.api_calls
    assert report["payments"].new == len(w.payments) - first["payments"].new
    assert report["payment_cancellations"].new == 1


def _calls(w: Any) -> str:
    return "\n".join(f"{r['method']} {r['path']} {r['status']}" for r in w.requests)


def test_a_500_on_one_page_is_retried(store: Store) -> None:
    w = build_world()
    w.faults.script([500], route="GET /payments/status/*")
    with w.client() as client:
        sync(client, store, progress=False)
    assert [r["status"] for r in w.requests if r["path"].startswith("/payments/status")].count(500) == 1
    assert store_tables(store) == world_tables(w)


def test_a_token_expiring_mid_sync_is_refreshed_once(store: Store) -> None:
    w = build_world()

    def expire_once(request: httpx.Request, n: int) -> None:
        if n == 8:
            w.expire_token()

    with w.client(transport=Tap(w.transport(), before=expire_once)) as client:
        sync(client, store, progress=False, now=w.clock.now)
    statuses = [(r["path"], r["status"]) for r in w.requests]
    # every request in flight with the expired token gets one 401 (up to ``concurrency`` of them) ...
    assert 1 <= [s for _, s in statuses].count(401) <= 4
    # ... and they share one refresh
    assert [p for p, _ in statuses].count("/users/getToken") == 2  # the first token, one refresh
    assert store_tables(store) == world_tables(w)


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda items: items[0].pop("imp_uid"), "response.list[0].imp_uid"),
        (lambda items: items[1].update(amount="8900"), "response.list[1].amount"),
    ],
)
def test_unreadable_record_is_quarantined_and_the_sync_goes_on(store: Store, mutate: Any, field: str) -> None:
    w = build_world()
    with w.client() as client:
        sync(client, store, progress=False)
    before = snapshot(store)
    w.advance(to=datetime(2025, 6, 6, tzinfo=KST))  # new paid payments exist now

    def corrupt(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        if request.url.path != "/payments/status/paid" or request.url.params.get("sorting") == "-updated":
            return response
        body = orjson.loads(response.content)
        if len(body["response"]["list"]) > 1:
            mutate(body["response"]["list"])
        return httpx.Response(response.status_code, content=orjson.dumps(body), request=request)

    with w.client(transport=Tap(w.transport(), after=corrupt)) as client:
        report = sync(client, store, progress=False)
    assert report.quarantined == 1
    assert "1 quarantined" in repr(report)
    assert "1 record(s) could not be read and were quarantined" in report._repr_html_()
    assert report.to_dict()["quarantined"] == 1
    after = snapshot(store)
    cursors, old = dict(after["cursors"]), dict(before["cursors"])
    assert cursors["payments:paid"] > old["payments:paid"]  # the stream went on and its cursor moved
    assert cursors["schedules"] > old["schedules"]  # later streams ran
    q = store.query("SELECT endpoint, reason FROM quarantine")
    assert q.iloc[0]["endpoint"] == "/payments/status/{payment_status}"
    assert q.iloc[0]["reason"].startswith(field + ":")
    # everything else of the run is stored: only the one record differs from PortOne
    mine, theirs = store_tables(store), world_tables(w)
    assert len(set(theirs["payments"]) - set(mine["payments"])) <= 1
    # fixed upstream: a full pass re-reads it; a record with a readable key leaves the quarantine
    with w.client() as client:
        sync(client, store, progress=False, since=datetime(2025, 5, 1, tzinfo=KST))
    assert store_tables(store) == world_tables(w)
    left = store.query("SELECT count(*) AS n FROM quarantine").iloc[0]["n"]
    assert left == (1 if field.endswith("imp_uid") else 0)  # no key: only a person can clear it


def test_a_body_broken_inside_its_list_fails_naming_the_page(store: Store) -> None:
    # The envelope head and tail are intact, so the client spools the bytes without decoding them;
    # DuckDB then cannot read the page, and the error still names the endpoint (nothing is written).
    w = build_world()
    w.advance(to=datetime(2025, 6, 6, tzinfo=KST))

    def corrupt(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        if request.url.path != "/payments/status/paid" or b'"amount":' not in response.content:
            return response
        return httpx.Response(
            response.status_code,
            content=response.content.replace(b'"amount":', b'"amount":@', 1),
            request=request,
        )

    with (
        w.client(transport=Tap(w.transport(), after=corrupt)) as client,
        pytest.raises(MalformedResponseError) as info,
    ):
        sync(client, store, progress=False)
    assert info.value.field == "<body>"
    assert info.value.endpoint == "/payments/status/{payment_status}"
    assert "not JSON" in str(info.value)
    assert store.counts()["payments"] == len(
        [p for p in w.payments.values() if p["status"] == "ready"]
    )  # only the stream before payments:paid committed


def _only_ready_changed(before: dict[str, Any], after: dict[str, Any]) -> bool:
    b = {r[0]: r for r in before["payments"]}
    return all(b.get(r[0]) == r or r[4] == "ready" for r in after["payments"])


def test_backfill_never_moves_a_cursor_backwards(store: Store) -> None:
    w = build_world()
    with w.client() as client:
        sync(client, store, progress=False)
        cursors = dict(snapshot(store)["cursors"])
        report = sync(client, store, since="2025-02-01", until="2025-03-01", progress=False)
    assert isinstance(report, SyncReport)
    assert dict(snapshot(store)["cursors"]) == cursors
    assert store_tables(store) == world_tables(w)


def test_backfill_on_empty_store_then_incremental_has_no_gap(store: Store) -> None:
    w = build_world()
    with w.client() as client:
        sync(client, store, since="2025-01-01", until="2025-03-01", progress=False)
        paid_cursor = dict(snapshot(store)["cursors"])["payments:paid"]
        assert paid_cursor == datetime(2025, 3, 1, tzinfo=KST)
        sync(client, store, progress=False)
    assert store_tables(store) == world_tables(w)


def test_report_renders(store: Store) -> None:
    w = build_world(customers=6)
    with w.client() as client:
        report = sync(client, store, progress=False)
    text = repr(report)
    assert "\n" not in text
    assert text.startswith("SyncReport(payments +")
    html = report._repr_html_()
    assert "<table>" in html and "payments:paid" in html
    d = report.to_dict()
    assert orjson.loads(orjson.dumps(d)) == d
    assert d["tables"]["payments"]["new"] == report["payments"].new
    assert d["api_calls"] == report.api_calls > 0


def test_lookback_limits_the_first_run(store: Store) -> None:
    w = build_world()
    with w.client() as client:
        sync(client, store, lookback=timedelta(days=30), progress=False)
    oldest = store.query(
        "SELECT min(CASE status WHEN 'paid' THEN paid_at WHEN 'failed' THEN failed_at "
        "WHEN 'cancelled' THEN cancelled_at ELSE started_at END) m FROM payments"
    ).iloc[0]["m"]
    assert oldest.to_pydatetime() >= w.clock.now - timedelta(days=30)
    assert store.query("SELECT count(*) n FROM payments").iloc[0]["n"] < len(w.payments)


def test_retry_of_an_old_failed_schedule_is_caught(store: Store) -> None:
    """A schedule due months ago (before the listing range) changes when its failed charge is retried."""
    w = build_world()
    failed = sorted(
        (s for s in w.schedules.values() if s["payment_status"] == "failed"), key=lambda s: s["schedule_at"]
    )[0]
    assert failed["schedule_at"] < w.clock.now_unix - 90 * 86400
    with w.client() as client:
        sync(client, store, progress=False)
        w.card_behaviours[failed["customer_uid"]] = CardBehaviour.approve()
        w.advance(seconds=86400)
        payment = w.retry_schedule(failed["merchant_uid"])
        assert payment["status"] == "paid"
        w.advance(seconds=60)
        report = sync(client, store, progress=False)
    assert store_tables(store) == world_tables(w)
    row = store.query(
        "SELECT payment_status, imp_uid FROM schedules WHERE merchant_uid = ?", [failed["merchant_uid"]]
    )
    assert row.iloc[0]["payment_status"] == "paid"
    assert row.iloc[0]["imp_uid"] == payment["imp_uid"]
    schedules = next(s for s in report.streams if s.stream == "schedules")
    assert "re-fetched 1 past schedule" in schedules.note


def test_no_secret_or_token_in_report_state_or_errors(store: Store) -> None:
    w = build_world(customers=6)
    with w.client() as client:
        report = sync(client, store, progress=False)
    token = w._token
    assert token
    with store.connect() as con:
        state = str(con.execute("SELECT * FROM sync_state").fetchall())
    for text in (repr(report), str(report.to_dict()), report._repr_html_(), state):
        assert "sandbox_secret" not in text
        assert token not in text


class _ShiftingClient:
    """Delegates to a real client; the first paid listing loses one row, as offset paging does when a
    row leaves the listing while it is walked."""

    def __init__(self, inner: Any, mode: str) -> None:
        self.inner = inner
        self.mode = mode
        self.paid_listings = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    @property
    def api_calls(self) -> int:
        return int(self.inner.api_calls)

    def iter_payment_pages(self, status: str, since: Any, until: Any, **kw: Any) -> Any:
        pages = self.inner.iter_payment_pages(status, since, until, **kw)
        if status != "paid":
            yield from pages
            return
        self.paid_listings += 1
        for page in pages:
            if self.paid_listings == 1 and page.items:
                yield self._short(page)
            else:
                yield page

    def _short(self, page: RawPage) -> RawPage:
        """The page without its first item: decoded items, or body bytes read by the fast path."""
        common = {"endpoint": page.endpoint, "params": page.params, "total": page.total, "next": page.next}
        if self.mode == "items":
            return RawPage(**common, items=page.items[1:], page=page.page, previous=page.previous)
        envelope = {"total": page.total, "previous": page.previous, "next": page.next, "list": page.items[1:]}
        body = orjson.dumps({"code": 0, "message": None, "response": envelope})
        head = fast_page_header(body, b"imp_uid")
        assert head is not None
        return RawPage(**common, keys=head[3], body=body, page=page.page, previous=page.previous)


@pytest.mark.parametrize("mode", ["items", "body"])
def test_a_window_that_comes_back_short_is_listed_again(store: Store, mode: str) -> None:
    w = build_world(customers=6)
    with w.client() as client:
        shifting = _ShiftingClient(client, mode)
        sync(shifting, store, progress=False)  # type: ignore[arg-type]
    assert shifting.paid_listings > 1  # each short window listed once more
    assert store_tables(store) == world_tables(w)


def test_progress_shows_a_line_when_asked_and_nothing_when_quiet(
    store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    w = build_world(customers=6)
    with w.client() as client:
        sync(client, store, progress=True)
        shown = capsys.readouterr().err
        sync(client, store, progress=False)
        quiet = capsys.readouterr().err
    assert "sync" in shown and "items" in shown
    assert quiet == ""


def test_an_unreadable_re_fetched_schedule_is_quarantined_and_the_run_completes(store: Store) -> None:
    w = build_world()
    with w.client() as client:
        sync(client, store, progress=False)
    executed = sorted(
        (s for s in w.schedules.values() if s["payment_status"] == "paid"), key=lambda s: s["schedule_at"]
    )[0]
    w.cancel_payment(imp_uid=executed["imp_uid"], reason="전액 환불")  # its schedule changes too
    w.advance(seconds=3600)

    def corrupt(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        if request.url.path != f"/subscribe/payments/schedule/{executed['merchant_uid']}":
            return response
        body = orjson.loads(response.content)
        body["response"]["schedule_status"] = "paused"  # a status this reader does not know
        return httpx.Response(response.status_code, content=orjson.dumps(body), request=request)

    with w.client(transport=Tap(w.transport(), after=corrupt)) as client:
        report = sync(client, store, progress=False)
    assert any(r["path"] == f"/subscribe/payments/schedule/{executed['merchant_uid']}" for r in w.requests)
    assert report.quarantined == 1
    q = store.query("SELECT source, record_key, endpoint, reason FROM quarantine").iloc[0]
    assert (q["source"], q["record_key"]) == ("schedules", executed["merchant_uid"])
    assert q["endpoint"] == "/subscribe/payments/schedule/{merchant_uid}"
    assert "schedule_status" in q["reason"] and "paused" in q["reason"]
    assert [s.stream for s in report.streams][-1] == "billing_keys"  # the run went on to the end
