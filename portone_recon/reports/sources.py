"""What a report's store was read from: per PortOne API (V1, V2), the rows it holds and each stream's sync.

A merchant moving from V1 to V2 has one store and one report; this section says how much of it came
through each API and when each stream last synced, so a stale or failing stream is seen next to the
findings it would change. Counts are of the store as it is now, not as of the reconciliation run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from portone_recon.reports import metrics
from portone_recon.reports.formatting import html_table, kst
from portone_recon.store import Store

#: The APIs as the report names them.
SOURCE_LABELS = {"v1": "PortOne V1", "v2": "PortOne V2"}
_COUNT_LABELS = {
    "source_api": "API",
    "payments": "결제",
    "issue_transactions": "빌링키 발급 거래",
    "schedules": "예약",
    "billing_keys": "빌링키 (고객)",
    "last_sync": "마지막 동기화 (KST)",
    "failing": "오류 스트림",
}
_STREAM_LABELS = {
    "source_api": "API",
    "stream": "스트림",
    "last_success": "마지막 성공 (KST)",
    "cursor": "커서 (KST)",
    "last_error": "마지막 시도의 오류",
}


def _label(source: Any) -> str:
    return SOURCE_LABELS.get(str(source), str(source))


@dataclass(frozen=True, eq=False)
class SourceSummary:
    """Rows per API (``counts``: source_api, payments, issue_transactions, schedules, billing_keys) and
    every sync stream (``streams``).

    ``payments`` leaves out billing-key issuance transactions (``issue_transactions``): V1 records issuing
    a key as a transaction and V2 does not, so only ``payments`` compares across the two APIs.
    """

    counts: pd.DataFrame
    streams: pd.DataFrame

    @classmethod
    def read(cls, store: Store) -> SourceSummary:
        return cls(counts=metrics.source_counts(store), streams=metrics.sync_streams(store))

    def sources(self) -> list[str]:
        """Every API the store holds rows from or has synced, in order (``v1`` before ``v2``)."""
        seen = {str(s) for s in self.counts["source_api"]} | {str(s) for s in self.streams["source_api"]}
        return sorted(seen)

    @property
    def payment_total(self) -> int:
        """Payments in the store, each once (a payment is one row whichever API read it)."""
        return int(self.counts["payments"].sum()) if len(self.counts) else 0

    @property
    def transaction_total(self) -> int:
        """Every PortOne transaction in the store (payments and issuance), each once."""
        return self.payment_total + (int(self.counts["issue_transactions"].sum()) if len(self.counts) else 0)

    def table(self) -> pd.DataFrame:
        """One row per API: counts, the latest successful sync of its streams and how many now fail."""
        rows = []
        for source in self.sources():
            part = self.counts[self.counts["source_api"] == source]
            streams = self.streams[self.streams["source_api"] == source]
            last = streams["last_success"].dropna()
            rows.append(
                {
                    "source_api": _label(source),
                    "payments": int(part["payments"].sum()),
                    "issue_transactions": int(part["issue_transactions"].sum()),
                    "schedules": int(part["schedules"].sum()),
                    "billing_keys": int(part["billing_keys"].sum()),
                    "last_sync": kst(last.max()) if len(last) else "없음",
                    "failing": int(streams["last_error"].notna().sum()),
                }
            )
        return pd.DataFrame(rows, columns=list(_COUNT_LABELS))

    def summary(self) -> dict[str, Any]:
        """For ``summary.json``: per API its counts and each stream's last successful sync."""
        out: dict[str, Any] = {}
        for source in self.sources():
            part = self.counts[self.counts["source_api"] == source]
            streams = self.streams[self.streams["source_api"] == source]
            out[source] = {
                "payments": int(part["payments"].sum()),
                "issue_transactions": int(part["issue_transactions"].sum()),
                "schedules": int(part["schedules"].sum()),
                "billing_keys": int(part["billing_keys"].sum()),
                "streams": {
                    str(r["stream"]): None if pd.isna(at) else pd.Timestamp(at).isoformat()
                    for r in streams.to_dict(orient="records")
                    for at in (r["last_success"],)
                },
            }
        return out

    def html(self) -> str:
        """The counts per API, the payment total (each payment once) and every stream's last sync."""
        if not self.sources():
            return "<p>저장소에 PortOne 데이터나 동기화 기록이 없습니다.</p>"
        table = self.table()
        total = ""
        if len(table) > 1:
            issued = self.transaction_total - self.payment_total
            also = f" (빌링키 발급 거래 {issued:,}건 별도)" if issued else ""
            total = (
                f"<p>결제 합계 <b>{self.payment_total:,}건</b>{also}: 두 API로 모두 읽힌 결제도 한 번만 "
                "셉니다 (imp_uid 기준).</p>"
            )
        streams = self.streams.copy()
        streams["source_api"] = [_label(s) for s in streams["source_api"]]
        for col in ("last_success", "cursor"):
            streams[col] = [kst(v) for v in streams[col]]
        stream_html = (
            html_table(streams.rename(columns=_STREAM_LABELS), money=(), wrap=(_STREAM_LABELS["last_error"],))
            if len(streams)
            else "<p>동기화 기록 없음.</p>"
        )
        return (
            html_table(table.rename(columns=_COUNT_LABELS), money=())
            + total
            + "<p>스트림별 마지막 동기화:</p>"
            + stream_html
        )
