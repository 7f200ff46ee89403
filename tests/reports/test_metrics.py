"""Report metrics and report objects, in-process against hand-written store rows (no kernel)."""

from __future__ import annotations

import sys
from datetime import date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from portone_recon._time import KST
from portone_recon.errors import ReportError
from portone_recon.reports import build_daily, build_monthly, metrics
from portone_recon.reports.formatting import duration, html_table, krw, kst, percent
from portone_recon.reports.summary import findings_at_or_above
from portone_recon.store import Store

sys.path.insert(0, str(Path(__file__).parent))
from _reports_seed import AS_OF


def test_monthly_series_counts_subscribers_mrr_and_renewals(seeded: Store) -> None:
    series, inferred = metrics.monthly_series(seeded, date(2026, 10, 1), months=3, now=AS_OF)
    assert not inferred
    assert [m.isoformat() for m in series["month_start"]] == ["2026-08-01", "2026-09-01", "2026-10-01"]
    oct_ = series.iloc[-1]
    # a (9,900) + b (19,900) + d (9,900, new on 20 Oct); c cancelled on 20 Oct
    assert int(oct_["active_end"]) == 3
    assert int(oct_["active_start"]) == 3
    assert int(oct_["new_subscribers"]) == 1
    assert int(oct_["churned"]) == 1
    assert int(oct_["mrr"]) == 39_700
    assert int(oct_["mrr_change"]) == 0
    # a, b (failed, then paid by a manual charge two days later), c (12 Oct), d
    assert int(oct_["attempted"]) == 4
    assert int(oct_["failed"]) == 1
    assert int(oct_["recovered"]) == 1
    assert int(oct_["paid"]) == 4
    assert int(oct_["unpaid"]) == 0
    assert int(oct_["paid_amount"]) == 9_900 + 19_900 + 9_900 + 9_900
    assert oct_["recovery_rate"] == 1.0
    aug = series.iloc[0]
    assert int(aug["mrr"]) == 9_900 + 19_900 + 9_900  # a, b (from 31 Jul), c


def test_failure_reasons_of_the_month(seeded: Store) -> None:
    reasons = metrics.failure_reasons(seeded, date(2026, 10, 1), now=AS_OF)
    assert reasons.to_dict("records") == [
        {"fail_reason": "카드 한도 초과", "failures": 1, "recovered": 1, "amount": 19_900}
    ]
    assert metrics.failure_reasons(seeded, date(2026, 9, 1), now=AS_OF).empty


def test_renewal_months_are_kst_calendar_months(store: Store) -> None:
    late = datetime(2026, 10, 31, 23, 30, tzinfo=KST)  # 14:30 UTC: still October in Seoul
    early = datetime(2026, 11, 1, 0, 10, tzinfo=KST)  # 31 Oct 15:10 UTC: November in Seoul
    with store.transaction() as con:
        for mu, at in (("late", late), ("early", early)):
            con.execute(
                "INSERT INTO schedules (merchant_uid, customer_uid, schedule_status, payment_status, "
                "schedule_at, amount, synced_at) VALUES (?, 'c', 'executed', 'paid', ?, 1000, now())",
                [mu, at],
            )
    oct_ = metrics.renewals(store, date(2026, 10, 1), now=AS_OF)
    nov = metrics.renewals(store, date(2026, 11, 1), now=AS_OF)
    assert list(oct_["merchant_uid"]) == ["late"]
    assert list(nov["merchant_uid"]) == ["early"]


def test_a_retry_chain_is_one_renewal(store: Store) -> None:
    base = datetime(2026, 10, 5, 10, tzinfo=KST)
    rows = [
        ("sub-x-202610", base, "failed", "[F112] 잔액부족"),
        ("sub-x-202610-r1", base + timedelta(days=1), "failed", "[F112] 잔액부족"),
        ("sub-x-202610-r2", base + timedelta(days=2), "paid", None),
        ("sub-y-202610", base, "failed", "[F113] 카드 한도초과"),
        ("sub-y-202610-r1", base + timedelta(days=1), "failed", "[F113] 카드 한도초과"),
    ]
    with store.transaction() as con:
        for mu, at, status, reason in rows:
            con.execute(
                "INSERT INTO schedules (merchant_uid, customer_uid, schedule_status, payment_status, "
                "schedule_at, amount, fail_reason, synced_at) "
                "VALUES (?, ?, 'executed', ?, ?, 9900, ?, now())",
                [mu, mu.split("-")[1], status, at, reason],
            )
    ren = metrics.renewals(store, date(2026, 10, 1), now=AS_OF).set_index("merchant_uid")
    assert sorted(ren.index) == ["sub-x-202610", "sub-y-202610"]  # retries are attempts, not renewals
    assert ren.loc["sub-x-202610", "retries"] == 2
    assert bool(ren.loc["sub-x-202610", "recovered"]) and not bool(ren.loc["sub-x-202610", "unpaid"])
    assert bool(ren.loc["sub-y-202610", "unpaid"]) and not bool(ren.loc["sub-y-202610", "recovered"])
    reasons = metrics.failure_reasons(store, date(2026, 10, 1), now=AS_OF)
    assert list(reasons["fail_reason"]) == ["[F112] 잔액부족", "[F113] 카드 한도초과"]  # ties: by reason
    assert reasons["failures"].sum() == 2


def test_subscribers_are_inferred_without_a_subscriptions_table(seeded: Store) -> None:
    with seeded.transaction() as con:
        con.execute("DELETE FROM subscriptions")
    report = build_monthly(seeded.path, month="2026-10", as_of=AS_OF)
    assert report.subscriptions_inferred
    assert "추정" in report.headline_html()
    # a paid charge in the 33 days before 1 Nov: a (5 Oct), b (30 Sep), c (12 Oct), d (20 Oct)
    k = report.kpis()
    assert k["active_subscribers"] == 4
    assert k["mrr"] == 9_900 * 3 + 19_900


def test_monthly_report_object(seeded: Store) -> None:
    report = build_monthly(seeded.path, month="2026-10", as_of=AS_OF, months=4)
    assert len(report.series) == 4
    assert not report.partial
    assert report.kpis()["mrr"] == 39_700
    assert "39,700원" in report.headline_html()
    assert "MonthlyReport(month='2026-10'" in repr(report)
    assert report.to_dict()["renewals_failed"] == 1
    current = build_monthly(seeded.path, month="2026-11", as_of=AS_OF, months=2)
    assert current.partial and "(진행 중)" in current.headline_html()
    with pytest.raises(ReportError, match="YYYY-MM"):
        build_monthly(seeded.path, month="2026-13", as_of=AS_OF)


def test_daily_report_from_a_stored_run(seeded: Store) -> None:
    report = build_daily(seeded.path, as_of=AS_OF, reconcile=False)
    assert report.run_id == "run-2"
    assert report.previous_run_id == "run-1"
    assert report.finding_count == 3
    assert report.amount_at_risk == 9_900 + 15_000 + 19_900
    assert report.new_count == 2  # f-3, f-4 (f-1 was already open in run-1)
    assert report.resolved_count == 1  # f-2
    assert report.counts_by_severity() == {"critical": 1, "high": 2, "medium": 0, "low": 0}
    counts = report.counts_by_kind()
    assert counts["missed_webhook"] == 1 and counts["phantom_paid"] == 0
    assert len(counts) >= 11  # every kind has a section, even empty ones
    head = report.headline_html()
    assert "44,800원" in head and "run-2" in head
    section = report.kind_section_html("missed_webhook")
    assert "&lt;b&gt;escaped&lt;/b&gt;" in section  # evidence is escaped
    assert "9,900" in section
    assert "0건" in report.kind_section_html("duplicate_charge")
    # the trend: the latest run of each KST day
    assert [str(d)[:10] for d in report.trend["day"]] == ["2026-11-26", "2026-11-27"]
    assert list(report.trend["open_findings"]) == [2, 3]
    assert "DailyReport(run_id='run-2'" in repr(report)


def test_daily_report_needs_a_run_at_or_before_as_of(seeded: Store) -> None:
    with pytest.raises(ReportError, match="no reconciliation run at or before"):
        build_daily(seeded.path, as_of=AS_OF - timedelta(days=3), reconcile=False)
    with pytest.raises(ReportError, match="no such store"):
        build_daily(seeded.path.with_name("missing.duckdb"), reconcile=False)


def test_fail_on_thresholds() -> None:
    summary = {"counts_by_severity": {"critical": 0, "high": 2, "medium": 1, "low": 0}}
    assert findings_at_or_above(summary, "low") == 3
    assert findings_at_or_above(summary, "medium") == 3
    assert findings_at_or_above(summary, "high") == 2
    assert findings_at_or_above(summary, "critical") == 0
    assert findings_at_or_above(summary, "none") == 0
    assert findings_at_or_above({"counts_by_severity": {}}, "low") == 0


def test_formatting_helpers() -> None:
    assert krw(1234567) == "1,234,567원"
    assert krw(None) == ""
    assert kst(datetime(2026, 10, 31, 15, 30, tzinfo=KST).astimezone(tz=None)) == "2026-10-31 15:30"
    assert kst(pd.Timestamp("2026-10-31T14:30:00Z")) == "2026-10-31 23:30"
    assert duration(timedelta(days=3, hours=4, minutes=5)) == "3일 4시간"
    assert duration(timedelta(minutes=7)) == "7분"
    assert percent(0.1234) == "12.3%"
    assert percent(float("nan")) == ""
    table = html_table(pd.DataFrame({"amount": [1000, 25000], "detail": ["<x>", "y"]}), max_rows=1)
    assert "1,000" in table and "&lt;x&gt;" in table and "1건 더 있음" in table


def test_every_reconcile_kind_has_report_text() -> None:
    from portone_recon.reconcile import FINDING_KINDS
    from portone_recon.reports.kinds import KIND_SEVERITY, kind_info

    assert set(KIND_SEVERITY) == set(FINDING_KINDS)
    for kind in FINDING_KINDS:
        info = kind_info(kind)
        assert info.title != kind and info.rule and info.what_to_do  # Korean text from kinds.json


def test_daily_report_shows_quarantined_records_on_their_own_line(seeded: Store) -> None:
    with seeded.transaction() as con:
        con.execute(
            "INSERT INTO quarantine (source, record_key, endpoint, reason, raw, raw_hash, first_seen, "
            "last_seen) VALUES ('schedules', 'sched_1', '/subscribe/payments/schedule', "
            "'response.list[3].schedule_at: expected unix seconds', '{}', 1, now(), now())"
        )
    report = build_daily(seeded.path, as_of=AS_OF, reconcile=False)
    assert "PortOne 기록 1건을 읽을 수 없어 격리했습니다" in report.headline_html()
