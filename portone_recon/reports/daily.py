"""The daily reconciliation report: what ``notebooks/daily_reconciliation.ipynb`` shows.

:func:`build_daily` does the work (optional sync, reconcile or pick the stored run, read findings,
history and the fix plan); the :class:`DailyReport` it returns renders each section as HTML or a
chart, and writes ``summary.json``. The notebook only calls these.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from portone_recon._time import KST, instant_arg, now_kst, parse_instant, refuse_far_future
from portone_recon.errors import ConfigError, ReportError
from portone_recon.reconcile.resolution import how_resolved
from portone_recon.reconcile.result import amount_at_risk_once, count_quarantined, coverage_notes
from portone_recon.reconcile.triage import active_triage, with_triage
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
from portone_recon.reports.sources import SourceSummary
from portone_recon.reports.summary import SummaryMixin
from portone_recon.store import Store

#: Evidence columns in the order a reader checks them (all-empty ones are dropped per kind).
EVIDENCE_COLUMNS = (
    "is_new",
    "triage_state",
    "customer_uid",
    "subscription_id",
    "merchant_uid",
    "imp_uid",
    "schedule_merchant_uid",
    "period_start",
    "period_end",
    "portone_status",
    "local_status",
    "portone_amount",
    "local_amount",
    "amount_at_risk",
    "currency",
    "event_at",
    "age",
    "first_seen",
    "suggested_action",
    "detail",
    "also_kind",
    "finding_id",
)
EVIDENCE_LABELS = {"is_new": "신규", "age": "경과", "triage_state": "확인 상태"}
#: Triage states as the report says them.
TRIAGE_LABELS = {"acknowledged": "확인함", "explained": "설명됨", "wont_fix": "조치 안 함"}
#: Headers of the workflow tables (new today, still open, acknowledged, resolved).
WORKFLOW_LABELS = {
    "age_days": "경과 일수",
    "first_seen": "최초 발견 (KST)",
    "severity": "심각도",
    "kind": "종류",
    "customer_uid": "customer_uid",
    "merchant_uid": "merchant_uid",
    "amount_at_risk": "위험 금액",
    "event_at": "발생 (KST)",
    "triage_state": "상태",
    "triage_by": "담당",
    "triage_until": "다시 볼 날 (이후 미확인)",
    "triage_note": "메모",
    "resolved_how": "해결 경위",
    "finding_id": "finding_id",
    "detail": "detail",
}
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
    "open": "미확인",
    "acknowledged": "확인됨",
    "critical": "치명",
    "high": "높음",
    "medium": "보통",
    "low": "낮음",
}
_MONEY_LABEL = frozenset({"위험 금액"})


def _labelled(df: pd.DataFrame) -> str:
    return html_table(df.rename(columns=TABLE_LABELS), money=_MONEY_LABEL)


#: The identifiers at the end of each workflow row: the text that explains it comes first, so a laptop
#: screen shows it and the ids scroll into view.
_IDS = ("customer_uid", "merchant_uid", "event_at", "first_seen", "finding_id")


def _open_in(part: pd.DataFrame) -> int:
    if not len(part):
        return 0
    return int(part["triage_state"].isna().sum()) if "triage_state" in part else len(part)


def _by_severity(part: pd.DataFrame) -> pd.DataFrame:
    """Most severe first, then the largest amount at risk."""
    if not len(part):
        return part
    rank = {sev: i for i, sev in enumerate(SEVERITIES)}
    order = part.assign(_rank=[rank.get(str(v), len(rank)) for v in part["severity"]])
    return order.sort_values(["_rank", "amount_at_risk"], ascending=[True, False]).drop(columns="_rank")


def _how_text(row: Mapping[Any, Any]) -> str:
    action = row.get("fixed_by_action")
    if isinstance(action, str) and action:
        when = kst(row.get("fixed_at"))
        return f"조치로 해결: {action} ({row.get('fixed_by_action_id')}{', ' + when if when else ''})"
    return "데이터에서 사라짐 (조치 기록 없음: 늦은 웹훅, 수기 수정, 동기화 등)"


def _html(text: str) -> Any:
    return html_output(text)


def _as_of(value: str | datetime | None) -> datetime:
    if value is None or value == "":
        return now_kst()
    try:
        return refuse_far_future(instant_arg(value, "as_of"), "as_of")
    except ValueError as exc:
        raise ReportError(str(exc)) from None


def open_report_store(db: str | Path) -> Store:
    """The store a report reads; a missing file is an error (a report never creates an empty one)."""
    path = Path(db)
    if not path.exists():
        raise ReportError(f"{path}: no such store; run `portone-recon sync` (or `demo`) first")
    return Store(path)


#: Columns of the held-actions table, in the order a person reads them.
_HELD_LEAD = ("kind", "customer_uid", "subscription_id", "key", "amount", "reason", "held_by_kind", "held_by")


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
    held: pd.DataFrame | None = None
    reconciled: bool = False
    synced: bool = False
    notes: tuple[str, ...] = field(default=())
    sources: SourceSummary | None = None

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
        """KRW at risk, each merchant_uid's money once (other currencies are never summed in)."""
        return amount_at_risk_once(self.findings) if len(self.findings) else 0

    @property
    def new_count(self) -> int:
        return int(self.findings["is_new"].sum()) if len(self.findings) else 0

    @property
    def resolved_count(self) -> int:
        return len(self.resolved)

    @property
    def open_findings(self) -> pd.DataFrame:
        """Findings nobody has acknowledged, explained or marked won't-fix (what the alert counts)."""
        if not len(self.findings) or "triage_state" not in self.findings:
            return self.findings
        return self.findings[self.findings["triage_state"].isna()]

    @property
    def acknowledged_findings(self) -> pd.DataFrame:
        """Findings with a triage decision in effect."""
        if not len(self.findings) or "triage_state" not in self.findings:
            return self.findings.iloc[0:0]
        return self.findings[self.findings["triage_state"].notna()]

    @property
    def open_count(self) -> int:
        return len(self.open_findings)

    @property
    def acknowledged_count(self) -> int:
        return len(self.acknowledged_findings)

    def open_counts_by_severity(self) -> dict[str, int]:
        part = self.open_findings
        counts = part["severity"].value_counts() if len(part) else pd.Series(dtype="int64")
        return {sev: int(counts.get(sev, 0)) for sev in SEVERITIES}

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
                    "open": _open_in(part),
                    "new": int(part["is_new"].sum()) if len(part) else 0,
                    "amount_at_risk": amount_at_risk_once(part) if len(part) else 0,
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
                    "open": _open_in(part),
                    "new": int(part["is_new"].sum()) if len(part) else 0,
                    "resolved": len(gone),
                    "amount_at_risk": amount_at_risk_once(part) if len(part) else 0,
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
            "미확인 (알림 대상)": f"{self.open_count:,}건",
            "확인됨 (확인·설명·조치 안 함)": f"{self.acknowledged_count:,}건",
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
        coverage = self.run.get("coverage")
        if isinstance(coverage, str) and coverage:
            notes.extend(f"대사 범위 밖 (not judged): {n}" for n in coverage_notes(json.loads(coverage)))
        if not self.reconciled:
            notes.append(
                "이 보고서는 저장소에 기록된 최근 대사 결과를 보여줍니다 (보고서에서 새로 대사하지 않음)."
            )
        note_html = "".join(f"<p><i>{html.escape(n)}</i></p>" for n in notes)
        return (
            f"<h3>요약</h3>{kv_table(facts)}{note_html}"
            f"<h4>심각도별</h4>{_labelled(self.by_severity())}"
            f"<h4>종류별</h4>{_labelled(self.by_kind())}"
            f"{self.sources_html()}"
        )

    def sources_html(self) -> str:
        """What the store was read from, per PortOne API (empty when not read)."""
        if self.sources is None:
            return ""
        return f"<h4>PortOne에서 읽은 데이터 (API별, 저장소 현재)</h4>{self.sources.html()}"

    def headline(self) -> Any:
        return _html(self.headline_html())

    # -- the analyst's day -------------------------------------------------------------------------

    def new_today(self) -> pd.DataFrame:
        """Findings the previous run did not report, most severe and largest first."""
        part = self.findings[self.findings["is_new"].astype(bool)] if len(self.findings) else self.findings
        cols: tuple[str, ...] = ("severity", "kind", "amount_at_risk", "detail")
        if len(part) and "triage_state" in part and part["triage_state"].notna().any():
            cols = (*cols, "triage_state")  # acknowledged on the day it appeared
        return self._workflow(_by_severity(part), (*cols, *_IDS))

    def still_open(self) -> pd.DataFrame:
        """Open findings seen before today, oldest first (age in days since first seen)."""
        part = self.open_findings
        if len(part):
            rank = {sev: i for i, sev in enumerate(SEVERITIES)}
            part = (
                part[~part["is_new"].astype(bool)]
                .assign(_rank=lambda d: [rank.get(str(v), len(rank)) for v in d["severity"]])
                .sort_values(["first_seen", "_rank", "amount_at_risk"], ascending=[True, True, False])
                .drop(columns="_rank")
            )
        return self._workflow(part, ("age_days", "severity", "kind", "amount_at_risk", "detail", *_IDS))

    def acknowledged(self) -> pd.DataFrame:
        """Findings with a decision in effect: state, who, until when, the note."""
        part = _by_severity(self.acknowledged_findings)
        cols = ("triage_state", "triage_by", "triage_until", "triage_note", "age_days", "severity", "kind")
        return self._workflow(part, (*cols, "amount_at_risk", *_IDS))

    def resolved_how(self) -> pd.DataFrame:
        """Findings of the previous run gone now, and how: by which fix-up action, or from the data."""
        part = self.resolved.copy()
        if len(part):
            part["resolved_how"] = [_how_text(r) for r in part.to_dict(orient="records")]
        cols = ("severity", "kind", "amount_at_risk", "resolved_how")
        return self._workflow(_by_severity(part), (*cols, *_IDS))

    def _workflow(self, part: pd.DataFrame, cols: tuple[str, ...]) -> pd.DataFrame:
        shown = (
            part[[c for c in cols if c in part.columns]].copy() if len(part) else pd.DataFrame(columns=cols)
        )
        if "severity" in shown:
            shown["severity"] = [SEVERITY_LABELS.get(str(v), str(v)) for v in shown["severity"]]
        if "triage_state" in shown:
            shown["triage_state"] = [
                TRIAGE_LABELS.get(str(v), str(v)) if isinstance(v, str) else "" for v in shown["triage_state"]
            ]
        if "triage_until" in shown:
            shown["triage_until"] = [
                v.isoformat() if hasattr(v, "isoformat") else "" for v in shown["triage_until"]
            ]
        return shown.rename(columns=WORKFLOW_LABELS).reset_index(drop=True)

    def workflow_html(self, *, max_rows: int = 100) -> str:
        """The four lists an analyst works through: new today, still open, acknowledged, resolved."""
        money = frozenset({"위험 금액"})
        parts = []
        sections = (
            ("오늘 새로 발견", self.new_today(), "이전 실행에 없던 항목입니다."),
            (
                "계속 미확인 (오래된 순)",
                self.still_open(),
                "이전 실행부터 이어지는, 아무도 확인하지 않은 항목입니다 "
                "(먼저 발견된 것부터, 같은 날은 심각한 순). "
                "portone-recon ack 로 확인·설명하면 알림에서 빠집니다.",
            ),
            (
                "확인됨 (메모·담당·기한)",
                self.acknowledged(),
                "확인·설명·조치 안 함으로 표시된 항목입니다. "
                "보고서에는 남지만 --fail-on 알림에는 세지 않습니다. "
                "기한(다시 볼 날)이 지나면 다시 미확인이 됩니다.",
            ),
            (
                "이전 실행 이후 해결됨",
                self.resolved_how(),
                "조치 기록(actions)에 성공한 조치가 있으면 그 조치로, "
                "없으면 데이터에서 사라진 것으로 표시합니다.",
            ),
        )
        for title, table, intro in sections:
            head = f"<h3>{html.escape(title)} ({len(table):,}건)</h3><p>{html.escape(intro)}</p>"
            body = html_table(table, money=money, max_rows=max_rows) if len(table) else "<p>없음.</p>"
            parts.append(head + body)
        return "".join(parts)

    def workflow(self) -> Any:
        return _html(self.workflow_html())

    def evidence(self, kind: str) -> pd.DataFrame:
        """The rows of one kind with the evidence columns that hold something (plus age at as_of)."""
        if not len(self.findings):
            return pd.DataFrame(columns=list(EVIDENCE_COLUMNS))
        part = self.findings[self.findings["kind"] == kind].copy()
        part["age"] = self.as_of - part["event_at"] if "event_at" in part else pd.NaT
        if "triage_state" in part:
            part["triage_state"] = [
                TRIAGE_LABELS.get(v, v) if isinstance(v, str) else None for v in part["triage_state"]
            ]
        cols = [c for c in EVIDENCE_COLUMNS if c in part.columns and (c == "is_new" or part[c].notna().any())]
        if "currency" in cols and (part["currency"].fillna("KRW") == "KRW").all():
            cols.remove("currency")  # only worth a column when some amount is not KRW
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
        # What a person reads first: what, for whom, how much and why; the request in full last.
        lead = [
            "kind",
            "customer_uid",
            "subscription_id",
            "key",
            "amount",
            "finding_kind",
            "reason",
            "request",
        ]
        shown = self.plan[[c for c in lead if c in self.plan]]
        return intro + html_table(shown, max_rows=max_rows) + self.held_html(max_rows=max_rows)

    def held_html(self, *, max_rows: int = 200) -> str:
        """Money-moving actions held back for a person, each with the finding that holds it."""
        if self.held is None or not len(self.held):
            return ""
        return (
            f"<h4>보류된 조치 {len(self.held):,}건 (담당자 검토 필요)</h4>"
            "<p>같은 고객의 구독에 검토가 필요한 발견 항목(held_by)이 열려 있어 자동 결제·예약을 계획하지 "
            "않았습니다. 항목을 확인(ack)하거나 설명하면 다음 계획에 포함됩니다.</p>"
            + html_table(self.held[[c for c in _HELD_LEAD if c in self.held]], max_rows=max_rows)
        )

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
            "open": self.open_count,
            "acknowledged": self.acknowledged_count,
            "open_counts_by_severity": self.open_counts_by_severity(),
            "resolved_by_action": int(self.resolved["fixed_by_action"].notna().sum())
            if "fixed_by_action" in self.resolved
            else 0,
            "planned_actions": None if self.plan is None else len(self.plan),
            "held_actions": None if self.held is None else len(self.held),
            "sources": None if self.sources is None else self.sources.summary(),
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
    held: pd.DataFrame | None = None
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
    # Each planned request in the form apply would send it (V2 for a customer whose key is V2's); a
    # report reads the store, so settings it cannot use only cost the V2 form, never the report.
    try:
        client = integ.fixup_client_from_env(store)
    except ConfigError:
        client = None
    try:
        plan_obj = integ.plan_for_run(store, run_id)
        plan = integ.plan_frame(plan_obj, client)
        held = integ.held_frame(plan_obj)
    except ReportError as exc:  # the actions area is optional for reading a report
        plan_note = f"조치 계획을 만들 수 없습니다: {exc}"
    finally:
        close = getattr(client, "close", None)
        if callable(close):
            close()
    with store.connect() as con:
        quarantined = count_quarantined(con)
    if quarantined:
        notes.append(
            f"PortOne 기록 {quarantined:,}건을 읽을 수 없어 격리했습니다 "
            "(quarantine 테이블: endpoint, 사유, 원본 JSON). "
            "이 기록은 대사되지 않았습니다."
        )
    run = metrics.run_info(store, run_id)
    prev = run.get("previous_run_id")
    prev_id = None if prev is None else str(prev)
    run_as_of = parse_instant(run["as_of"]) if run.get("as_of") is not None else when
    decided = active_triage(store, at=run_as_of)
    findings = with_triage(metrics.run_findings(store, run_id, prev_id), decided, run_as_of)
    resolved = how_resolved(store, metrics.resolved_findings(store, run_id, prev_id))
    return DailyReport(
        db=str(store.path),
        as_of=when,
        run=run,
        findings=findings,
        resolved=resolved,
        trend=metrics.findings_trend(store, when, trend_days),
        trend_days=trend_days,
        plan=plan,
        plan_note=plan_note,
        held=held,
        reconciled=reconcile,
        synced=sync,
        notes=tuple(notes),
        sources=SourceSummary.read(store),
    )
