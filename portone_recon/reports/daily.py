"""The daily reconciliation report: what ``notebooks/daily_reconciliation.ipynb`` shows.

:func:`build_daily` does the work (optional sync, reconcile or pick the stored run, read findings,
history and the fix plan); the :class:`DailyReport` it returns renders each section as HTML or a
chart, and writes ``summary.json``. The notebook only calls these.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from portone_recon._time import KST, now_kst, parse_instant
from portone_recon.errors import ReportError
from portone_recon.reports import _integrations as integ
from portone_recon.reports import charts, metrics
from portone_recon.reports.formatting import (
    SEVERITIES,
    SEVERITY_LABELS,
    html_output,
    html_table,
    krw,
    kst,
    kv_table,
)
from portone_recon.reports.kinds import kind_info, ordered_kinds
from portone_recon.reconcile.result import count_quarantined
from portone_recon.reports.summary import SummaryMixin
from portone_recon.store import Store

#: Evidence columns in the order a reader checks them (all-empty ones are dropped per kind).
EVIDENCE_COLUMNS = (
    "is_new",
    "customer_uid",
    "merchant_uid",
    "imp_uid",
    "schedule_merchant_uid",
    "portone_status",
    "local_status",
    "portone_amount",
    "local_amount",
    "amount_at_risk",
    "event_at",
    "age",
    "first_seen",
    "suggested_action",
    "detail",
    "finding_id",
)
EVIDENCE_LABELS = {"is_new": "신규", "age": "경과"}
#: Korean headers of the summary tables (the DataFrames keep English names for code).
TABLE_LABELS = {
    "severity": "심각도",
    "kind": "종류",
    "title": "설명",
    "findings": "건수",
    "new": "신규",
    "resolved": "해결됨",
    "amount_at_risk": "위험 금액",
    "day": "날짜 (KST)",
    "open_findings": "미해결",
    "critical": "치명",
    "high": "높음",
    "medium": "보통",
    "low": "낮음",
}
_MONEY_LABEL = frozenset({"위험 금액"})


def _labelled(df: pd.DataFrame) -> str:
    return html_table(df.rename(columns=TABLE_LABELS), money=_MONEY_LABEL)


def _html(text: str) -> Any:
    return html_output(text)


def _as_of(value: str | datetime | None) -> datetime:
    if value is None or value == "":
        return now_kst()
    try:
        return parse_instant(value)
    except ValueError as exc:
        raise ReportError(f"as_of: {exc}") from None


def open_report_store(db: str | Path) -> Store:
    """The store a report reads; a missing file is an error (a report never creates an empty one)."""
    path = Path(db)
    if not path.exists():
        raise ReportError(f"{path}: no such store; run `portone-recon sync` (or `demo`) first")
    return Store(path)


@dataclass(frozen=True, eq=False)
class DailyReport(SummaryMixin):
    """Everything the daily report shows, for one reconciliation run."""

    db: str
    as_of: datetime
    run: dict[str, Any]
    findings: pd.DataFrame
    resolved: pd.DataFrame
    trend: pd.DataFrame
    trend_days: int = 30
    plan: pd.DataFrame | None = None
    plan_note: str = ""
    reconciled: bool = False
    synced: bool = False
    notes: tuple[str, ...] = field(default=())

    # -- numbers ---------------------------------------------------------------------------------

    @property
    def run_id(self) -> str:
        return str(self.run["run_id"])

    @property
    def previous_run_id(self) -> str | None:
        prev = self.run.get("previous_run_id")
        return None if prev is None else str(prev)

    @property
    def finding_count(self) -> int:
        return len(self.findings)

    @property
    def amount_at_risk(self) -> int:
        return int(self.findings["amount_at_risk"].fillna(0).sum()) if len(self.findings) else 0

    @property
    def new_count(self) -> int:
        return int(self.findings["is_new"].sum()) if len(self.findings) else 0

    @property
    def resolved_count(self) -> int:
        return len(self.resolved)

    def kinds(self) -> list[str]:
        """Every kind with a section: all known kinds plus any other seen in this run."""
        seen = [str(k) for k in self.findings["kind"].unique()] if len(self.findings) else []
        return ordered_kinds(seen)

    def counts_by_kind(self) -> dict[str, int]:
        counts = self.findings["kind"].value_counts() if len(self.findings) else pd.Series(dtype="int64")
        return {k: int(counts.get(k, 0)) for k in self.kinds()}

    def counts_by_severity(self) -> dict[str, int]:
        counts = self.findings["severity"].value_counts() if len(self.findings) else pd.Series(dtype="int64")
        return {s: int(counts.get(s, 0)) for s in SEVERITIES}

    def by_severity(self) -> pd.DataFrame:
        """Findings by severity: count, new, KRW at risk."""
        rows = []
        for sev in SEVERITIES:
            part = self.findings[self.findings["severity"] == sev] if len(self.findings) else self.findings
            rows.append(
                {
                    "severity": f"{SEVERITY_LABELS[sev]} ({sev})",
                    "findings": len(part),
                    "new": int(part["is_new"].sum()) if len(part) else 0,
                    "amount_at_risk": int(part["amount_at_risk"].fillna(0).sum()) if len(part) else 0,
                }
            )
        return pd.DataFrame(rows)

    def by_kind(self) -> pd.DataFrame:
        """Findings by kind: title, severity, count, new, KRW at risk, resolved since the previous run."""
        rows = []
        for kind in self.kinds():
            part = self.findings[self.findings["kind"] == kind] if len(self.findings) else self.findings
            gone = self.resolved[self.resolved["kind"] == kind] if len(self.resolved) else self.resolved
            info = kind_info(kind, str(part["severity"].iloc[0]) if len(part) else None)
            rows.append(
                {
                    "kind": kind,
                    "title": info.title,
                    "severity": info.severity,
                    "findings": len(part),
                    "new": int(part["is_new"].sum()) if len(part) else 0,
                    "resolved": len(gone),
                    "amount_at_risk": int(part["amount_at_risk"].fillna(0).sum()) if len(part) else 0,
                }
            )
        return pd.DataFrame(rows)

    # -- sections ----------------------------------------------------------------------------------

    def headline_html(self) -> str:
        """The headline: run, totals, KRW at risk, new vs resolved, then counts by severity."""
        prev = self.previous_run_id or "없음 (첫 실행)"
        facts = {
            "기준 시각 (as_of, KST)": kst(self.run.get("as_of") or self.as_of, fmt="%Y-%m-%d %H:%M:%S"),
            "대사 실행 ID (run_id)": self.run_id,
            "이전 실행 ID": prev,
            "총 발견 항목": f"{self.finding_count:,}건",
            "위험 금액 (KRW at risk)": krw(self.amount_at_risk),
            "신규 (이전 실행 대비)": f"{self.new_count:,}건",
            "해결됨 (이전 실행 대비)": f"{self.resolved_count:,}건",
        }
        notes = list(self.notes)
        if self.run.get("subscriptions_inferred"):
            notes.append(
                "구독 정보(subscriptions)가 적재되지 않아 활성 구독을 결제 이력으로 추정했습니다 "
                "(빌링키 유효, 최근 결제가 한 주기+유예 이내, 로컬 해지 없음)."
            )
        if not self.reconciled:
            notes.append(
                "이 보고서는 저장소에 기록된 최근 대사 결과를 보여줍니다 (보고서에서 새로 대사하지 않음)."
            )
        note_html = "".join(f"<p><i>{html.escape(n)}</i></p>" for n in notes)
        return (
            f"<h3>요약</h3>{kv_table(facts)}{note_html}"
            f"<h4>심각도별</h4>{_labelled(self.by_severity())}"
            f"<h4>종류별</h4>{_labelled(self.by_kind())}"
        )

    def headline(self) -> Any:
        return _html(self.headline_html())

    def evidence(self, kind: str) -> pd.DataFrame:
        """The rows of one kind with the evidence columns that hold something (plus age at as_of)."""
        if not len(self.findings):
            return pd.DataFrame(columns=list(EVIDENCE_COLUMNS))
        part = self.findings[self.findings["kind"] == kind].copy()
        part["age"] = self.as_of - part["event_at"] if "event_at" in part else pd.NaT
        cols = [c for c in EVIDENCE_COLUMNS if c in part.columns and (c == "is_new" or part[c].notna().any())]
        part = part.sort_values(["amount_at_risk", "event_at"], ascending=[False, True], na_position="last")
        return part[cols].rename(columns=EVIDENCE_LABELS).reset_index(drop=True)

    def kind_section_html(self, kind: str, *, max_rows: int = 100) -> str:
        """One kind: title, rule, what to do, count and KRW at risk, and the evidence table."""
        rows = self.evidence(kind)
        sev = None
        if len(self.findings):
            part = self.findings[self.findings["kind"] == kind]
            sev = str(part["severity"].iloc[0]) if len(part) else None
        info = kind_info(kind, sev)
        total = int(rows["amount_at_risk"].fillna(0).sum()) if "amount_at_risk" in rows and len(rows) else 0
        head = (
            f"<h3>{html.escape(info.title)} <code>{html.escape(kind)}</code> "
            f"— {SEVERITY_LABELS.get(info.severity, info.severity)}</h3>"
            f"<p><b>규칙:</b> {html.escape(info.rule)}</p>"
            f"<p><b>조치:</b> {html.escape(info.what_to_do)}</p>"
        )
        if not len(rows):
            return head + "<p>발견 항목 없음 (0건).</p>"
        new = int(rows["신규"].sum()) if "신규" in rows else 0
        stats = f"<p><b>{len(rows):,}건</b> (신규 {new:,}건), 위험 금액 <b>{krw(total)}</b></p>"
        return head + stats + html_table(rows, max_rows=max_rows)

    def kind_sections(self) -> list[Any]:
        return [_html(self.kind_section_html(k)) for k in self.kinds()]

    def trend_chart(self) -> Any:
        """Open findings per day over ``trend_days`` (PNG)."""
        return charts.image(charts.trend_chart(self.trend, as_of=self.as_of, days=self.trend_days))

    def trend_table_html(self) -> str:
        shown = self.trend.drop(columns=["run_id"], errors="ignore").copy()
        if not len(shown):
            return "<p>기간 내 대사 실행 기록이 없습니다.</p>"
        shown["day"] = [f"{pd.Timestamp(d):%Y-%m-%d}" for d in shown["day"]]
        return _labelled(shown)

    def trend_table(self) -> Any:
        return _html(self.trend_table_html())

    def plan_html(self, *, max_rows: int = 200) -> str:
        """The fix plan ``fix plan`` would produce for this run (nothing is sent by a report)."""
        if self.plan is None:
            return f"<p><i>{html.escape(self.plan_note or '조치 계획 없음.')}</i></p>"
        if not len(self.plan):
            return "<p>조치할 항목이 없습니다 (계획 0건).</p>"
        counts = self.plan["kind"].value_counts() if "kind" in self.plan else pd.Series(dtype="int64")
        parts = ", ".join(f"{k} {int(n):,}건" for k, n in counts.items())
        intro = (
            f"<p>계획된 조치 <b>{len(self.plan):,}건</b>: {html.escape(parts)}. "
            "보고서는 아무것도 전송하지 않습니다.</p>"
        )
        return intro + html_table(self.plan, max_rows=max_rows)

    def plan_section(self) -> Any:
        return _html(self.plan_html())

    # -- outputs ---------------------------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        """The facts ``summary.json`` carries (counts, KRW at risk, run ids, as_of)."""
        by_kind = self.by_kind()
        return {
            "report": "daily",
            "as_of": self.as_of.astimezone(KST).isoformat(),
            "run_id": self.run_id,
            "previous_run_id": self.previous_run_id,
            "reconciled": self.reconciled,
            "synced": self.synced,
            "subscriptions_inferred": bool(self.run.get("subscriptions_inferred") or False),
            "finding_count": self.finding_count,
            "counts_by_kind": self.counts_by_kind(),
            "counts_by_severity": self.counts_by_severity(),
            "amount_at_risk": self.amount_at_risk,
            "amount_at_risk_by_kind": dict(
                zip(by_kind["kind"].astype(str), (int(v) for v in by_kind["amount_at_risk"]), strict=True)
            ),
            "new": self.new_count,
            "resolved": self.resolved_count,
            "planned_actions": None if self.plan is None else len(self.plan),
        }

    def __repr__(self) -> str:
        return (
            f"DailyReport(run_id={self.run_id!r}, as_of={kst(self.as_of)!r}, findings={self.finding_count}, "
            f"amount_at_risk={self.amount_at_risk}, new={self.new_count}, resolved={self.resolved_count})"
        )

    def _repr_html_(self) -> str:
        try:
            return self.headline_html()
        except Exception as exc:  # a repr must never raise
            return f"<b>DailyReport</b> <i>unavailable ({html.escape(type(exc).__name__)})</i>"


def build_daily(
    db: str | Path,
    *,
    as_of: str | datetime | None = None,
    grace: str = "15min",
    sync: bool = False,
    reconcile: bool = True,
    trend_days: int = 30,
) -> DailyReport:
    """Build the daily report.

    Args:
        db: the DuckDB store.
        as_of: instant (ISO text; a date alone is 00:00 KST); None is now.
        grace: reconciliation grace period (``15min``).
        sync: pull PortOne first (credentials from PORTONE_* in the environment).
        reconcile: run reconciliation now; False shows the latest stored run at or before ``as_of``.
        trend_days: days of history in the trend chart.
    """
    when = _as_of(as_of)
    store = open_report_store(db)
    notes: list[str] = []
    plan: pd.DataFrame | None = None
    plan_note = ""
    if sync:
        integ.sync_store(store)
    if reconcile:
        run_id = str(integ.reconcile_store(store, when, grace).run_id)
    else:
        found = metrics.latest_run_id(store, when)
        if found is None:
            raise ReportError(
                f"{store.path}: no reconciliation run at or before {kst(when)} KST; "
                "run `portone-recon reconcile` or build the report with reconcile=True"
            )
        run_id = found
    try:
        plan = integ.plan_frame(integ.plan_for_run(store, run_id))
    except ReportError as exc:  # the actions area is optional for reading a report
        plan_note = f"조치 계획을 만들 수 없습니다: {exc}"
    with store.connect() as con:
        held = count_quarantined(con)
    if held:
        notes.append(
            f"PortOne 기록 {held:,}건을 읽을 수 없어 격리했습니다 (quarantine 테이블: endpoint, 사유, 원본 JSON). "
            "이 기록은 대사되지 않았습니다."
        )
    run = metrics.run_info(store, run_id)
    prev = run.get("previous_run_id")
    prev_id = None if prev is None else str(prev)
    return DailyReport(
        db=str(store.path),
        as_of=when,
        run=run,
        findings=metrics.run_findings(store, run_id, prev_id),
        resolved=metrics.resolved_findings(store, run_id, prev_id),
        trend=metrics.findings_trend(store, when, trend_days),
        trend_days=trend_days,
        plan=plan,
        plan_note=plan_note,
        reconciled=reconcile,
        synced=sync,
        notes=tuple(notes),
    )
