"""The result of one reconciliation run: counts, KRW at risk, evidence, what changed since the last run."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from portone_recon._time import KST
from portone_recon.reconcile.kinds import (
    AMOUNT_AT_RISK,
    FINDING_KINDS,
    KIND_SEVERITY,
    SEVERITIES,
    SEVERITY_RANK,
    severity_rank,
)

#: Columns of ``ReconResult.findings`` (and ``new`` / ``resolved``), in order.
FINDING_COLUMNS: tuple[str, ...] = (
    "kind",
    "severity",
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
    "suggested_action",
    "detail",
    "finding_id",
    "first_seen",
)

_MONEY_COLUMNS = ("portone_amount", "local_amount", "amount_at_risk")
_TIME_COLUMNS = ("event_at", "first_seen")
_TOP_ROWS = 10


def _krw(value: Any) -> str:
    try:
        return f"₩{int(value):,}"
    except (TypeError, ValueError):
        return ""


def _kst(value: Any) -> str:
    if value is None or value is pd.NaT or (isinstance(value, float) and pd.isna(value)):
        return ""
    if isinstance(value, datetime):
        return value.astimezone(KST).strftime("%Y-%m-%d %H:%M KST") if value.tzinfo else str(value)
    return str(value)


def _cell(column: str, value: Any) -> str:
    if column in _MONEY_COLUMNS:
        return _krw(value)
    if column in _TIME_COLUMNS:
        return _kst(value)
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    return str(value)


def format_age(value: Any) -> str:
    """A timedelta as '3d 04h', '2h 05m' or '12m' ('' when missing)."""
    if value is None or value is pd.NaT or not isinstance(value, timedelta):
        return ""
    seconds = int(value.total_seconds())
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    days, rem = divmod(seconds, 86400)
    hours, rem = divmod(rem, 3600)
    minutes = rem // 60
    if days:
        return f"{sign}{days}d {hours:02d}h"
    if hours:
        return f"{sign}{hours}h {minutes:02d}m"
    return f"{sign}{minutes}m"


@dataclass(frozen=True, eq=False)
class ReconResult:
    """One reconciliation run.

    Attributes:
        run_id: the id of the run in ``recon_runs``.
        as_of: the instant reconciled at (Asia/Seoul).
        grace: how long fresh events were given before becoming findings.
        subscriptions_inferred: no subscriptions were loaded; "active" and anchor days were inferred.
        duration_s: seconds the run took.
        findings: every finding (columns :data:`FINDING_COLUMNS`), most severe first.
        new: findings not in the previous run.
        resolved: findings of the previous run that are gone now.
        previous_run_id: the run compared with (None for the first run).
        kinds: the kinds that were checked.
        timings: wall seconds of each step of the run ("prepare _recon_subs", "rule missed_webhook", ...,
            "total"); see :meth:`timings_frame`.
    """

    run_id: str
    as_of: datetime
    grace: timedelta
    subscriptions_inferred: bool
    duration_s: float
    findings: pd.DataFrame = field(repr=False)
    new: pd.DataFrame = field(repr=False)
    resolved: pd.DataFrame = field(repr=False)
    previous_run_id: str | None = None
    kinds: tuple[str, ...] = FINDING_KINDS
    timings: dict[str, float] = field(default_factory=dict, repr=False)
    #: PortOne records the sync could not read (``quarantine`` table): unreconciled, so shown on their own.
    quarantined: int = 0

    # -- numbers -------------------------------------------------------------------------------

    @property
    def counts(self) -> dict[str, int]:
        """Number of findings per kind (every checked kind, zeros included)."""
        vc = self.findings["kind"].value_counts()
        return {k: int(vc.get(k, 0)) for k in self.kinds}

    @property
    def counts_by_severity(self) -> dict[str, int]:
        """Number of findings per severity, most severe first."""
        vc = self.findings["severity"].value_counts()
        return {s: int(vc.get(s, 0)) for s in reversed(SEVERITIES)}

    @property
    def amount_at_risk(self) -> int:
        """Total KRW at risk over all findings (see ``kinds.AMOUNT_AT_RISK`` for each kind's meaning)."""
        return int(self.findings["amount_at_risk"].fillna(0).sum()) if len(self.findings) else 0

    @property
    def amount_at_risk_by_kind(self) -> dict[str, int]:
        """KRW at risk per kind."""
        sums: dict[str, int] = {}
        for kind, value in zip(self.findings["kind"], self.findings["amount_at_risk"], strict=True):
            if value is not None and not pd.isna(value):
                sums[str(kind)] = sums.get(str(kind), 0) + int(value)
        return {k: sums.get(k, 0) for k in self.kinds}

    def by_kind(self) -> pd.DataFrame:
        """One row per kind: severity, count, new, resolved, KRW at risk, what the amount means."""
        new = self.new["kind"].value_counts()
        resolved = self.resolved["kind"].value_counts()
        at_risk = self.amount_at_risk_by_kind
        rows = [
            {
                "kind": k,
                "severity": KIND_SEVERITY[k],
                "count": self.counts[k],
                "new": int(new.get(k, 0)),
                "resolved": int(resolved.get(k, 0)),
                "amount_at_risk": at_risk[k],
                "amount_means": AMOUNT_AT_RISK[k],
            }
            for k in self.kinds
        ]
        return pd.DataFrame(rows)

    @property
    def max_severity(self) -> str | None:
        """The most severe severity found (None when clean)."""
        if not len(self.findings):
            return None
        return str(max(self.findings["severity"], key=lambda s: SEVERITY_RANK.get(str(s), -1)))

    def has_findings(self, at_least: str = "low") -> bool:
        """Whether a finding of severity ``at_least`` or more severe exists."""
        floor = severity_rank(at_least)
        return any(SEVERITY_RANK.get(s, -1) >= floor for s in self.findings["severity"])

    def __getitem__(self, kind: str) -> pd.DataFrame:
        """The findings of one kind, e.g. ``result["missed_webhook"]``."""
        if kind not in FINDING_KINDS:
            raise KeyError(f"unknown finding kind {kind!r}; kinds: {', '.join(FINDING_KINDS)}")
        return self.findings[self.findings["kind"] == kind].reset_index(drop=True)

    def __len__(self) -> int:
        return len(self.findings)

    def timings_frame(self) -> pd.DataFrame:
        """One row per step of the run (prepare statements, rules, storing, fetching): seconds and share.

        The "total" row is the whole run; the shares are of that total.
        """
        total = self.timings.get("total") or sum(self.timings.values()) or 1.0
        rows = [
            {"step": k, "seconds": round(v, 4), "share": round(v / total, 4)} for k, v in self.timings.items()
        ]
        return pd.DataFrame(rows, columns=["step", "seconds", "share"])

    # -- export --------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (no rows; see :meth:`findings_records` for those)."""
        return {
            "run_id": self.run_id,
            "as_of": self.as_of.isoformat(),
            "grace_seconds": int(self.grace.total_seconds()),
            "subscriptions_inferred": self.subscriptions_inferred,
            "duration_s": round(self.duration_s, 3),
            "previous_run_id": self.previous_run_id,
            "finding_count": len(self.findings),
            "counts": self.counts,
            "counts_by_severity": self.counts_by_severity,
            "amount_at_risk": self.amount_at_risk,
            "amount_at_risk_by_kind": self.amount_at_risk_by_kind,
            "new": len(self.new),
            "resolved": len(self.resolved),
            "kinds": list(self.kinds),
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
        }

    def findings_records(self, which: str = "findings") -> list[dict[str, Any]]:
        """Rows as JSON-ready dicts (times ISO 8601 with +09:00, age in seconds, amounts int or None).

        Args:
            which: "findings", "new" or "resolved".
        """
        df = {"findings": self.findings, "new": self.new, "resolved": self.resolved}[which]
        out: list[dict[str, Any]] = []
        for rec in df.to_dict(orient="records"):
            row: dict[str, Any] = {}
            for key, value in rec.items():
                if value is None or value is pd.NaT or (not isinstance(value, str) and pd.isna(value)):
                    row[str(key)] = None
                elif isinstance(value, pd.Timestamp | datetime):
                    row[str(key)] = value.astimezone(KST).isoformat()
                elif isinstance(value, pd.Timedelta | timedelta):
                    row[str(key)] = int(value.total_seconds())
                elif key in _MONEY_COLUMNS:
                    row[str(key)] = int(value)
                else:
                    row[str(key)] = value
            out.append(row)
        return out

    def to_json(self) -> str:
        """The findings as one JSON array (what ``portone-recon reconcile --format json`` prints)."""
        return json.dumps(self.findings_records(), ensure_ascii=False, indent=1)

    def to_excel(self, path: str | Path) -> Path:
        """Write an .xlsx for finance: a summary sheet, then one sheet per kind.

        KRW columns carry thousands separators; times are KST wall-clock (Excel has no time zones, so the
        headers say "(KST)").
        """
        from portone_recon.reconcile._excel import write_excel

        return write_excel(self, Path(path))

    def excel_frame(self, df: pd.DataFrame) -> pd.DataFrame:
        """``df`` made Excel-safe: naive KST times, age as text, headers that say KST."""
        out = df.copy()
        for col in _TIME_COLUMNS:
            if col in out and isinstance(out[col].dtype, pd.DatetimeTZDtype):
                out[col] = out[col].dt.tz_convert(KST).dt.tz_localize(None)
        if "age" in out:
            out["age"] = [format_age(v) for v in out["age"]]
        return out.rename(columns={"event_at": "event_at (KST)", "first_seen": "first_seen (KST)"})

    # -- display -------------------------------------------------------------------------------

    def headline(self) -> str:
        """One line: findings by severity, KRW at risk, new / resolved."""
        sev = ", ".join(f"{n} {s}" for s, n in self.counts_by_severity.items() if n)
        text = (
            f"{len(self.findings)} finding(s)"
            + (f" ({sev})" if sev else "")
            + f", {_krw(self.amount_at_risk)} at risk; {len(self.new)} new, {len(self.resolved)} resolved"
            + f" as of {_kst(self.as_of)}"
        )
        if self.subscriptions_inferred:
            text += " [subscriptions inferred]"
        if self.quarantined:
            text += f"; {quarantine_line(self.quarantined)}"
        return text

    def __repr__(self) -> str:
        return f"<ReconResult {self.run_id}: {self.headline()}>"

    def _repr_html_(self) -> str:
        try:
            return self._html()
        except Exception as exc:  # a repr must never raise
            return (
                f"<b>ReconResult</b> {html.escape(self.run_id)} (<i>display failed: {type(exc).__name__}</i>)"
            )

    def _html(self) -> str:
        esc = html.escape
        head = f"<b>Reconciliation</b> <code>{esc(self.run_id)}</code>: {esc(self.headline())}"
        if self.subscriptions_inferred:
            head += (
                "<br><i>No subscriptions were loaded: 'active' and anchor days were inferred from PortOne "
                "data (billing key, last paid renewal, local cancellations).</i>"
            )
        if self.quarantined:
            head += f"<br><b style='color:#b00'>{esc(quarantine_line(self.quarantined))}</b>"
        td = "<td style='text-align:right'>"
        rows = "".join(
            f"<tr><td>{esc(str(r['kind']))}</td><td>{esc(str(r['severity']))}</td>{td}{int(r['count']):,}</td>"
            f"{td}{int(r['new']):,}</td>{td}{int(r['resolved']):,}</td>{td}{esc(_krw(r['amount_at_risk']))}</td></tr>"
            for r in self.by_kind().to_dict(orient="records")
            if r["count"] or r["new"] or r["resolved"]
        )
        table = (
            "<table><tr><th>kind</th><th>severity</th><th>count</th><th>new</th><th>resolved</th>"
            f"<th>KRW at risk</th></tr>{rows}</table>"
            if rows
            else "<p>No findings.</p>"
        )
        top = ""
        if len(self.findings):
            shown = self.findings.head(_TOP_ROWS)
            cols = (
                "kind",
                "severity",
                "customer_uid",
                "merchant_uid",
                "amount_at_risk",
                "event_at",
                "detail",
            )
            body = "".join(
                "<tr>" + "".join(f"<td>{esc(_cell(c, rec[c]))}</td>" for c in cols) + "</tr>"
                for rec in shown.to_dict(orient="records")
            )
            more = len(self.findings) - len(shown)
            top = (
                f"<details open><summary>top {len(shown)} finding(s)"
                + (f" of {len(self.findings):,}" if more > 0 else "")
                + "</summary><table><tr>"
                + "".join(f"<th>{c}</th>" for c in cols)
                + f"</tr>{body}</table></details>"
            )
        return f"<div>{head}{table}{top}</div>"


def quarantine_line(count: int) -> str:
    """The line a result shows for PortOne records the sync could not read (never reconciled)."""
    return (
        f"{count} PortOne record(s) quarantined: not reconciled until read cleanly "
        "(see the quarantine table: endpoint, reason, raw JSON)"
    )


def count_quarantined(con: Any) -> int:
    """Records held in ``quarantine`` (0 for a store without the table)."""
    try:
        row = con.execute("SELECT count(*) FROM quarantine").fetchone()
    except duckdb.Error:
        return 0
    return int(row[0]) if row else 0
