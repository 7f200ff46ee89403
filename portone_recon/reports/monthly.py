"""The monthly subscriptions report: what ``notebooks/monthly_subscriptions.ipynb`` shows.

Active subscribers, MRR and its month-over-month change, renewals attempted / paid / failed, top
failure reasons, recovery after retry and churn, with a 13-month history for the charts.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from portone_recon._time import KST, instant_arg, now_kst, refuse_far_future
from portone_recon.errors import ReportError
from portone_recon.reports import charts, metrics
from portone_recon.reports.daily import open_report_store
from portone_recon.reports.formatting import html_output, html_table, krw, kst, kv_table, percent
from portone_recon.reports.summary import SummaryMixin

SERIES_LABELS = {
    "month_start": "월",
    "active_start": "월초 활성",
    "active_end": "월말 활성",
    "new_subscribers": "신규",
    "churned": "이탈",
    "churn_rate": "이탈률",
    "mrr": "MRR",
    "mrr_change": "MRR 증감",
    "attempted": "결제 시도",
    "paid": "결제 성공",
    "failed": "실패",
    "recovered": "실패 후 회복",
    "unpaid": "미결제",
    "stuck": "미실행 예약",
    "paid_amount": "결제 금액",
    "unpaid_amount": "미결제 금액",
}


def _html(text: str) -> Any:
    return html_output(text)


@dataclass(frozen=True, eq=False)
class MonthlyReport(SummaryMixin):
    """Monthly subscription KPIs for ``month`` with the history before it."""

    db: str
    month: date
    as_of: datetime
    series: pd.DataFrame
    reasons: pd.DataFrame
    subscriptions_inferred: bool

    @property
    def row(self) -> dict[str, Any]:
        """The KPIs of ``month`` itself (the last row of the series)."""
        rows = self.series[self.series["month_start"] == self.month]
        if rows.empty:
            raise ReportError(f"no data row for {self.month:%Y-%m}")
        return {str(k): v for k, v in rows.iloc[0].to_dict().items()}

    @property
    def partial(self) -> bool:
        """Whether ``month`` had not ended at ``as_of``."""
        return metrics.month_end(self.month) > self.as_of

    def kpis(self) -> dict[str, Any]:
        r = self.row
        return {
            "active_subscribers": int(r["active_end"]),
            "active_at_start": int(r["active_start"]),
            "new_subscribers": int(r["new_subscribers"]),
            "churned": int(r["churned"]),
            "churn_rate": None if pd.isna(r["churn_rate"]) else float(r["churn_rate"]),
            "mrr": int(r["mrr"]),
            "mrr_change": None if pd.isna(r["mrr_change"]) else int(r["mrr_change"]),
            "mrr_change_pct": None if pd.isna(r["mrr_change_pct"]) else float(r["mrr_change_pct"]),
            "renewals_attempted": int(r["attempted"]),
            "renewals_paid": int(r["paid"]),
            "renewals_failed": int(r["failed"]),
            "recovered_after_retry": int(r["recovered"]),
            "renewals_unpaid": int(r["unpaid"]),
            "schedules_not_executed": int(r["stuck"]),
            "renewal_revenue": int(r["paid_amount"]),
            "unpaid_amount": int(r["unpaid_amount"]),
            "recovery_rate": None if pd.isna(r["recovery_rate"]) else float(r["recovery_rate"]),
        }

    def headline_html(self) -> str:
        k = self.kpis()
        change = k["mrr_change"]
        change_text = "비교 불가" if change is None else f"{'+' if change >= 0 else ''}{change:,}원"
        if k["mrr_change_pct"] is not None:
            change_text += f" ({'+' if k['mrr_change_pct'] >= 0 else ''}{percent(k['mrr_change_pct'])})"
        facts = {
            "대상 월": f"{self.month:%Y-%m}" + (" (진행 중)" if self.partial else ""),
            "기준 시각 (KST)": kst(self.as_of),
            "활성 구독자 (월말)": f"{k['active_subscribers']:,}명",
            "MRR (월말)": krw(k["mrr"]),
            "MRR 전월 대비": change_text,
            "정기결제 시도": f"{k['renewals_attempted']:,}건",
            "정기결제 성공": f"{k['renewals_paid']:,}건 ({krw(k['renewal_revenue'])})",
            "정기결제 실패 (1회 이상)": f"{k['renewals_failed']:,}건",
            "실패 후 회복": f"{k['recovered_after_retry']:,}건"
            + (f" (회복률 {percent(k['recovery_rate'])})" if k["recovery_rate"] is not None else ""),
            "미결제": f"{k['renewals_unpaid']:,}건 ({krw(k['unpaid_amount'])})",
            "예약 미실행": f"{k['schedules_not_executed']:,}건",
            "신규 구독자": f"{k['new_subscribers']:,}명",
            "이탈 구독자": f"{k['churned']:,}명"
            + (f" (이탈률 {percent(k['churn_rate'])})" if k["churn_rate"] is not None else ""),
        }
        note = ""
        if self.subscriptions_inferred:
            note = (
                "<p><i>구독 정보(subscriptions)가 적재되지 않아 구독자·MRR을 결제 이력으로 추정했습니다: "
                "최근 33일 안에 결제된 빌링키 고객을 활성으로, 그 결제 금액을 MRR로 봅니다.</i></p>"
            )
        return f"<h3>{self.month:%Y-%m} 구독 요약</h3>{kv_table(facts)}{note}"

    def headline(self) -> Any:
        return _html(self.headline_html())

    def history_html(self) -> str:
        shown = self.series[list(SERIES_LABELS)].copy()
        shown["month_start"] = [f"{m:%Y-%m}" for m in shown["month_start"]]
        shown["churn_rate"] = [percent(v) for v in shown["churn_rate"]]
        return html_table(
            shown.rename(columns=SERIES_LABELS), money={"MRR", "MRR 증감", "결제 금액", "미결제 금액"}
        )

    def history(self) -> Any:
        return _html(self.history_html())

    def reasons_html(self) -> str:
        if self.reasons.empty:
            return "<p>이 달에 실패한 정기결제가 없습니다.</p>"
        shown = self.reasons.rename(
            columns={"fail_reason": "실패 사유", "failures": "실패", "recovered": "회복", "amount": "금액"}
        )
        return html_table(shown, money={"금액"})

    def reasons_table(self) -> Any:
        return _html(self.reasons_html())

    def mrr_chart(self) -> Any:
        return charts.image(charts.mrr_chart(self.series))

    def subscribers_chart(self) -> Any:
        return charts.image(charts.subscribers_chart(self.series))

    def renewals_chart(self) -> Any:
        return charts.image(charts.renewals_chart(self.series))

    def reasons_chart(self) -> Any:
        return charts.image(
            charts.reasons_chart(self.reasons, title=f"{self.month:%Y-%m} 정기결제 실패 사유")
        )

    def summary(self) -> dict[str, Any]:
        return {
            "report": "monthly",
            "month": f"{self.month:%Y-%m}",
            "as_of": self.as_of.astimezone(KST).isoformat(),
            "partial_month": self.partial,
            "subscriptions_inferred": self.subscriptions_inferred,
            **self.kpis(),
            "top_failure_reasons": [
                {"fail_reason": str(reason), "failures": int(n)}
                for reason, n in zip(self.reasons["fail_reason"], self.reasons["failures"], strict=True)
            ],
            # Monthly reports carry no findings: cron's --fail-on never trips on them.
            "counts_by_severity": {},
        }

    def __repr__(self) -> str:
        k = self.kpis()
        return (
            f"MonthlyReport(month='{self.month:%Y-%m}', active={k['active_subscribers']}, mrr={k['mrr']}, "
            f"paid={k['renewals_paid']}, failed={k['renewals_failed']}, churned={k['churned']})"
        )

    def _repr_html_(self) -> str:
        try:
            return self.headline_html()
        except Exception as exc:  # a repr must never raise
            return f"<b>MonthlyReport</b> <i>unavailable ({html.escape(type(exc).__name__)})</i>"


def build_monthly(
    db: str | Path, *, month: str | date | None = None, as_of: str | datetime | None = None, months: int = 13
) -> MonthlyReport:
    """Build the monthly report.

    Args:
        db: the DuckDB store.
        month: ``YYYY-MM``; None is the last complete month before ``as_of``.
        as_of: the instant the data stands at (ISO text; None is now). Schedules after it are not due.
        months: months of history in the tables and charts (including ``month``).
    """
    try:
        when = now_kst() if as_of in (None, "") else refuse_far_future(instant_arg(as_of, "as_of"), "as_of")
    except ValueError as exc:
        raise ReportError(str(exc)) from None
    first = metrics.default_month(when) if month in (None, "") else metrics.parse_month(month)
    if months < 1:
        raise ReportError(f"months must be >= 1, got {months}")
    store = open_report_store(db)
    series, inferred = metrics.monthly_series(store, first, months=months, now=when)
    reasons = metrics.failure_reasons(store, first, now=when)
    return MonthlyReport(
        db=str(store.path),
        month=first,
        as_of=when,
        series=series,
        reasons=reasons,
        subscriptions_inferred=inferred,
    )
