"""The fix-up report: what ``notebooks/fixup.ipynb`` shows.

It reconciles, plans fixes for the chosen kinds and shows the plan; only with ``apply=True`` does it
apply the plan (through :func:`portone_recon.actions.apply`, which re-checks PortOne and journals each
action) and show the journal. Credentials come from the environment inside the kernel.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from portone_recon._time import KST
from portone_recon.actions.apply import DEFAULT_MAX_ACTIONS, DEFAULT_MAX_AMOUNT
from portone_recon.errors import ActionError, ConfigError, ReportError
from portone_recon.reports import _integrations as integ
from portone_recon.reports.daily import _as_of, open_report_store
from portone_recon.reports.formatting import html_output, html_table, krw, kst, kv_table
from portone_recon.reports.summary import SummaryMixin


def _html(text: str) -> Any:
    return html_output(text)


def _counts(frame: pd.DataFrame, column: str) -> dict[str, int]:
    if column not in frame or frame.empty:
        return {}
    return {str(k): int(v) for k, v in frame[column].value_counts().items()}


@dataclass(frozen=True, eq=False)
class FixupReport(SummaryMixin):
    """A fix plan for some kinds and, when applied, the journal of what was done."""

    db: str
    as_of: datetime
    run_id: str
    kinds: tuple[str, ...] | None
    findings: dict[str, int]
    counts_by_severity: dict[str, int]
    plan: pd.DataFrame
    applied: bool
    max_actions: int
    max_amount: int
    journal: pd.DataFrame | None = None
    held: pd.DataFrame | None = None
    refused: str | None = None
    #: Severities of the findings nobody has acknowledged (what ``--fail-on`` counts); None: unknown.
    open_counts_by_severity: dict[str, int] | None = None

    @property
    def plan_amount(self) -> int:
        return int(self.plan["amount"].fillna(0).sum()) if "amount" in self.plan and len(self.plan) else 0

    def plan_html(self, *, max_rows: int = 500) -> str:
        facts = {
            "기준 시각 (KST)": kst(self.as_of),
            "대사 실행 ID": self.run_id,
            "대상 종류": ", ".join(self.kinds) if self.kinds else "전체",
            "계획된 조치": f"{len(self.plan):,}건",
            "관련 금액": krw(self.plan_amount),
            "최대 결제·예약 요청 수 (max_actions)": f"{self.max_actions:,}",
            "최대 금액 (max_amount)": krw(self.max_amount),
            "모드": "적용 (apply)" if self.applied else "계획만 (전송 없음)",
        }
        body = (
            html_table(self.plan, max_rows=max_rows) if len(self.plan) else "<p>조치할 항목이 없습니다.</p>"
        )
        held = ""
        if self.held is not None and len(self.held):
            held = (
                "<h4>보류된 조치 (담당자 검토 필요)</h4><p>같은 고객의 구독에 검토가 필요한 "
                "발견 항목이 열려 있어 결제·예약을 보내지 않습니다. "
                "항목을 확인(ack)하면 다음 계획에 포함됩니다.</p>" + html_table(self.held, max_rows=max_rows)
            )
        return f"<h3>조치 계획</h3>{kv_table(facts)}{body}{held}"

    def plan_section(self) -> Any:
        return _html(self.plan_html())

    def journal_html(self, *, max_rows: int = 500) -> str:
        if self.refused:
            return (
                f"<h3>적용 거부: 아무것도 전송하지 않았습니다</h3><p><b>{html.escape(self.refused)}</b></p>"
            )
        if not self.applied or self.journal is None:
            return (
                "<p><i>apply=False: 아무것도 전송하지 않았습니다. "
                "적용하려면 apply=True 로 실행하세요.</i></p>"
            )
        counts = _counts(self.journal, "status")
        parts = ", ".join(f"{k} {v:,}건" for k, v in counts.items()) or "0건"
        return f"<h3>적용 결과 (journal)</h3><p>{html.escape(parts)}</p>" + html_table(
            self.journal, max_rows=max_rows
        )

    def journal_section(self) -> Any:
        return _html(self.journal_html())

    def summary(self) -> dict[str, Any]:
        return {
            "report": "fixup",
            "as_of": self.as_of.astimezone(KST).isoformat(),
            "run_id": self.run_id,
            "kinds": list(self.kinds) if self.kinds else None,
            "finding_count": sum(self.findings.values()),
            "counts_by_kind": self.findings,
            "counts_by_severity": self.counts_by_severity,
            "planned_actions": len(self.plan),
            "planned_by_kind": _counts(self.plan, "kind"),
            "plan_amount": self.plan_amount,
            "applied": self.applied,
            "max_actions": self.max_actions,
            "max_amount": self.max_amount,
            "held_actions": 0 if self.held is None else len(self.held),
            "apply_refused": self.refused,
            "journal_by_status": _counts(self.journal, "status") if self.journal is not None else None,
            **(
                {"open_counts_by_severity": self.open_counts_by_severity}
                if self.open_counts_by_severity is not None
                else {}
            ),
        }

    def __repr__(self) -> str:
        return (
            f"FixupReport(run_id={self.run_id!r}, planned={len(self.plan)}, applied={self.applied}, "
            f"journal={None if self.journal is None else len(self.journal)})"
        )

    def _repr_html_(self) -> str:
        try:
            return self.plan_html() + self.journal_html()
        except Exception as exc:  # a repr must never raise
            return f"<b>FixupReport</b> <i>unavailable ({html.escape(type(exc).__name__)})</i>"


def build_fixup(
    db: str | Path,
    *,
    as_of: str | datetime | None = None,
    grace: str = "15min",
    kinds: list[str] | tuple[str, ...] | None = None,
    apply: bool = False,
    max_actions: int = DEFAULT_MAX_ACTIONS,
    max_amount: int = DEFAULT_MAX_AMOUNT,
) -> FixupReport:
    """Reconcile, plan fixes for ``kinds`` (None: every fixable kind) and apply them only if ``apply``.

    Args:
        db: the DuckDB store.
        as_of: reconciliation instant (ISO text; None is now).
        grace: reconciliation grace period.
        kinds: finding kinds to fix.
        apply: send the plan to PortOne (credentials from PORTONE_* in the kernel's environment).
        max_actions: cap on money-moving requests sent in this run (apply's default).
        max_amount: cap on money charged or booked per currency in this run (apply's default).
    """
    if max_actions < 0 or max_amount < 0:
        raise ReportError(f"max_actions and max_amount must be >= 0, got {max_actions}, {max_amount}")
    when = _as_of(as_of)
    store = open_report_store(db)
    result = integ.reconcile_store(store, when, grace)
    kind_list = list(kinds) if kinds else None
    plan_obj = integ.plan_for_run(store, str(result.run_id), kind_list)
    # The client apply would send with: the plan's requests are shown in the form it sends them.
    client = integ.fixup_client_from_env(store)
    findings = getattr(result, "findings", pd.DataFrame())
    journal: pd.DataFrame | None = None
    refused: str | None = None
    try:
        plan = integ.plan_frame(plan_obj, client)
        if apply:
            if client is None:
                raise ConfigError("report fixup apply needs PortOne credentials (PORTONE_* settings)")
            try:
                journal = integ.apply_plan(
                    plan_obj, client, store, max_actions=max_actions, max_amount=max_amount, dry_run=False
                )
            except (
                ActionError
            ) as exc:  # over a cap, or a refused plan: nothing was sent, and the report says so
                refused = str(exc)
    finally:
        close = getattr(client, "close", None)
        if callable(close):
            close()
    return FixupReport(
        db=str(store.path),
        as_of=when,
        run_id=str(result.run_id),
        kinds=tuple(kind_list) if kind_list else None,
        findings=_counts(findings, "kind"),
        counts_by_severity=_counts(findings, "severity"),
        plan=plan,
        applied=apply,
        max_actions=max_actions,
        max_amount=max_amount,
        journal=journal,
        held=integ.held_frame(plan_obj),
        refused=refused,
        open_counts_by_severity=_counts(result.open, "severity") if hasattr(result, "open") else None,
    )
