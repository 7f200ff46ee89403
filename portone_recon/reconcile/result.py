"""The result of one reconciliation run: counts, KRW at risk, evidence, what changed since the last run."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
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
    "subscription_id",
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
    "suggested_action",
    "detail",
    "also_kind",
    "finding_id",
    "first_seen",
)

#: Columns added after :data:`FINDING_COLUMNS`: the decision in effect (``reconcile.triage``; state None
#: while the finding is open) and whole KST days since ``first_seen``.
TRIAGE_COLUMNS: tuple[str, ...] = ("triage_state", "triage_note", "triage_by", "triage_until", "age_days")

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


def _cell(column: str, value: Any, currency: Any = "KRW") -> str:
    if column in _MONEY_COLUMNS:
        if isinstance(currency, str) and currency != "KRW":
            return "" if value is None or pd.isna(value) else f"{int(value):,} {currency}"
        return _krw(value)
    if column in _TIME_COLUMNS:
        return _kst(value)
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    return str(value)


def finding_records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Findings rows as JSON-ready dicts (times ISO 8601 with +09:00, age in seconds, days as
    YYYY-MM-DD, amounts int or None)."""
    out: list[dict[str, Any]] = []
    for rec in df.to_dict(orient="records"):
        row: dict[str, Any] = {}
        for key, value in rec.items():
            if value is None or value is pd.NaT or (not isinstance(value, str) and pd.isna(value)):
                row[str(key)] = None
            elif isinstance(value, pd.Timestamp | datetime):
                row[str(key)] = value.astimezone(KST).isoformat()
            elif isinstance(value, date):
                row[str(key)] = value.isoformat()
            elif isinstance(value, pd.Timedelta | timedelta):
                row[str(key)] = int(value.total_seconds())
            elif key in _MONEY_COLUMNS or key == "age_days":
                row[str(key)] = int(value)
            else:
                row[str(key)] = value
        out.append(row)
    return out


def amount_at_risk_once(findings: pd.DataFrame, currency: str = "KRW") -> int:
    """The money at risk in ``currency``, each merchant_uid's money counted once.

    One merchant_uid can carry findings of several kinds (e.g. a renewal that failed and was marked paid
    locally): its largest amount counts, not their sum. Findings without a merchant_uid count each.
    """
    if not len(findings):
        return 0
    cur = findings["currency"].fillna("KRW") if "currency" in findings else pd.Series("KRW", findings.index)
    df = findings.loc[cur == currency, ["merchant_uid", "finding_id", "amount_at_risk"]]
    if not len(df):
        return 0
    own = "#" + df["finding_id"].astype(str)  # no merchant_uid: the finding counts on its own
    key = df["merchant_uid"].astype(object).where(df["merchant_uid"].notna(), own)
    return int(df["amount_at_risk"].fillna(0).astype("int64").groupby(key).max().sum())


def coverage_notes(cov: dict[str, Any]) -> list[str]:
    """What a run did not judge and how to include it, one sentence each (a run's ``coverage``)."""
    notes: list[str] = []
    if cov.get("orders_before_sync"):
        notes.append(
            f"{cov['orders_before_sync']:,} orders before {str(cov.get('sync_from'))[:10]} not judged: "
            "sync `--since` earlier to include them"
        )
    if cov.get("orders_after_sync"):
        notes.append(
            f"{cov['orders_after_sync']:,} orders after the last sync ({str(cov.get('sync_to'))[:16]}) "
            "not judged: sync again to include them"
        )
    if cov.get("payments_outside_orders"):
        if cov.get("has_orders"):
            notes.append(
                f"{cov['payments_outside_orders']:,} payments before {str(cov.get('orders_from'))[:10]} "
                "(the earliest loaded order) not judged as unknown: load older orders to include them"
            )
        else:
            notes.append(
                f"{cov['payments_outside_orders']:,} payments not judged as unknown: no orders are loaded"
            )
    if cov.get("issuance_payments") or cov.get("sandbox_payments"):
        notes.append(
            f"{cov.get('issuance_payments', 0):,} billing-key issuance and "
            f"{cov.get('sandbox_payments', 0):,} test-channel payments are not charges (not judged)"
        )
    return notes


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
        findings: every finding (columns :data:`FINDING_COLUMNS` then :data:`TRIAGE_COLUMNS`), most
            severe first; :attr:`open` and :attr:`acknowledged` split it by triage.
        new: findings not in the previous run.
        resolved: findings of the previous run that are gone now.
        previous_run_id: the run compared with (None for the first run).
        kinds: the kinds that were checked.
        timings: wall seconds of each step of the run ("prepare _recon_subs", "rule missed_webhook", ...,
            "total"); see :meth:`timings_frame`.
        adhoc: a subset of kinds, or an as_of before the latest full run's: never the baseline of a later
            run's new / resolved.
        coverage: what the rules left out and why: ``orders_before_sync`` (orders older than the synced
            range, ``sync_from``), ``payments_outside_orders`` (payments older than the earliest loaded
            order, ``orders_from``), ``issuance_payments`` and ``sandbox_payments`` (never charges).
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
    adhoc: bool = False
    coverage: dict[str, Any] = field(default_factory=dict, repr=False)
    #: PortOne records the sync could not read (``quarantine`` table): unreconciled, so shown on their own.
    quarantined: int = 0

    # -- numbers -------------------------------------------------------------------------------

    @property
    def open(self) -> pd.DataFrame:
        """Findings nobody has acknowledged, explained or marked won't-fix (what alerts count)."""
        if "triage_state" not in self.findings:
            return self.findings
        return self.findings[self.findings["triage_state"].isna()].reset_index(drop=True)

    @property
    def acknowledged(self) -> pd.DataFrame:
        """Findings with a triage decision in effect (acknowledged, explained or won't fix)."""
        if "triage_state" not in self.findings:
            return self.findings.iloc[0:0]
        return self.findings[self.findings["triage_state"].notna()].reset_index(drop=True)

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
        """KRW at risk over all findings, each merchant_uid's money once (see ``kinds.AMOUNT_AT_RISK`` for
        each kind's meaning). Findings in other currencies are in :attr:`amount_at_risk_by_currency`."""
        return amount_at_risk_once(self.findings)

    @property
    def amount_at_risk_by_currency(self) -> dict[str, int]:
        """Money at risk per currency (each merchant_uid once); never converted nor summed across."""
        if not len(self.findings):
            return {}
        currencies = sorted(set(self.findings["currency"].fillna("KRW").astype(str)))
        return {c: amount_at_risk_once(self.findings, c) for c in currencies}

    @property
    def amount_at_risk_by_kind(self) -> dict[str, int]:
        """KRW at risk per kind."""
        sums: dict[str, int] = {}
        cur = self.findings["currency"].fillna("KRW")
        for kind, value, c in zip(self.findings["kind"], self.findings["amount_at_risk"], cur, strict=True):
            if value is not None and not pd.isna(value) and c == "KRW":
                sums[str(kind)] = sums.get(str(kind), 0) + int(value)
        return {k: sums.get(k, 0) for k in self.kinds}

    def coverage_notes(self) -> list[str]:
        """What was not judged and how to include it, one sentence each (empty when everything was)."""
        return coverage_notes(self.coverage)

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

    def has_open_findings(self, at_least: str = "low") -> bool:
        """Whether an open (untriaged) finding of severity ``at_least`` or more severe exists."""
        floor = severity_rank(at_least)
        return any(SEVERITY_RANK.get(s, -1) >= floor for s in self.open["severity"])

    @property
    def open_counts_by_severity(self) -> dict[str, int]:
        """Number of open (untriaged) findings per severity, most severe first."""
        vc = self.open["severity"].value_counts()
        return {s: int(vc.get(s, 0)) for s in reversed(SEVERITIES)}

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
            "amount_at_risk_by_currency": self.amount_at_risk_by_currency,
            "adhoc": self.adhoc,
            "coverage": dict(self.coverage),
            "new": len(self.new),
            "resolved": len(self.resolved),
            "open": len(self.open),
            "acknowledged": len(self.acknowledged),
            "open_counts_by_severity": self.open_counts_by_severity,
            "kinds": list(self.kinds),
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
        }

    def findings_records(self, which: str = "findings") -> list[dict[str, Any]]:
        """Rows as JSON-ready dicts (times ISO 8601 with +09:00, age in seconds, amounts int or None).

        Args:
            which: "findings", "new" or "resolved".
        """
        df = {"findings": self.findings, "new": self.new, "resolved": self.resolved}[which]
        return finding_records(df)

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
        acknowledged = len(self.acknowledged)
        if acknowledged:
            text += f" ({len(self.findings) - acknowledged} open, {acknowledged} acknowledged)"
        other = {c: v for c, v in self.amount_at_risk_by_currency.items() if c != "KRW" and v}
        if other:
            text += " (+ " + ", ".join(f"{v:,} {c}" for c, v in other.items()) + " at risk)"
        if self.subscriptions_inferred:
            text += " [subscriptions inferred]"
        if self.adhoc:
            text += " [ad-hoc run: not a baseline]"
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
        notes = self.coverage_notes()
        if notes:
            head += "<br><i>Not judged: " + esc("; ".join(notes)) + ".</i>"
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
                "<tr>"
                + "".join(f"<td>{esc(_cell(c, rec[c], rec.get('currency')))}</td>" for c in cols)
                + "</tr>"
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
