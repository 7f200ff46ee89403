"""ReconResult: what an analyst sees (repr, HTML, dict, Excel)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from _recon_world import World, kst

from portone_recon.reconcile import FINDING_COLUMNS, FINDING_KINDS, TRIAGE_COLUMNS, ReconResult


@pytest.fixture
def result(world: World) -> ReconResult:
    world.renewal("cus_1", kst(2026, 11, 20), webhook=False, amount=1234567)  # missed_webhook
    world.order("ord-<b>", "cus_2", status="paid", paid_at=kst(2026, 11, 1))  # phantom, HTML-ish key
    world.key("cus_3")
    world.sub("cus_3", anchor_day=15)
    world.renewal("cus_3", kst(2026, 11, 15))  # missing_next_schedule
    return world.run()


def test_columns_counts_and_item_access(result: ReconResult) -> None:
    assert tuple(result.findings.columns) == FINDING_COLUMNS + TRIAGE_COLUMNS
    assert result.counts["missed_webhook"] == 1 and result.counts["phantom_paid"] == 1
    assert set(result.counts) == set(FINDING_KINDS)
    assert result.counts_by_severity == {"critical": 1, "high": 2, "medium": 0, "low": 0}
    assert result.amount_at_risk == 1234567 + 9900 + 9900
    assert list(result["missed_webhook"]["merchant_uid"]) == ["sub-cus_1-202611"]
    assert result["duplicate_charge"].empty
    with pytest.raises(KeyError, match="unknown finding kind"):
        result["nope"]
    # most severe first
    assert result.findings["severity"].iloc[0] == "critical"
    assert str(result.findings["event_at"].dt.tz) == "Asia/Seoul"
    assert result.max_severity == "critical"
    assert result.has_findings("critical") and result.has_findings("low")


def test_repr_dict_and_json(result: ReconResult) -> None:
    text = repr(result)
    assert "\n" not in text and "3 finding(s)" in text and "₩1,254,367" in text
    d = result.to_dict()
    json.dumps(d)  # JSON-ready
    assert d["finding_count"] == 3 and d["counts"]["phantom_paid"] == 1 and d["new"] == 3
    assert d["as_of"] == "2026-11-27T06:00:00+09:00"
    rows = json.loads(result.to_json())
    assert {r["kind"] for r in rows} == {"missed_webhook", "phantom_paid", "missing_next_schedule"}
    mw = next(r for r in rows if r["kind"] == "missed_webhook")
    assert mw["event_at"].endswith("+09:00") and mw["amount_at_risk"] == 1234567
    assert isinstance(mw["age"], int)


def test_html_is_compact_escaped_and_never_raises(result: ReconResult) -> None:
    page = result._repr_html_()
    assert page.startswith("<div>") and "₩1,254,367" in page
    assert "missing_next_schedule" in page and "ord-&lt;b&gt;" in page and "ord-<b>" not in page
    broken = ReconResult(
        run_id="r", as_of=datetime(2026, 1, 1), grace=result.grace, subscriptions_inferred=False,
        duration_s=0.0, findings=pd.DataFrame({"x": [1]}), new=pd.DataFrame(), resolved=pd.DataFrame(),
    )  # fmt: skip
    assert "display failed" in broken._repr_html_()


def test_excel_for_finance(result: ReconResult, tmp_path: Path) -> None:
    path = result.to_excel(tmp_path / "out" / "recon.xlsx")
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["summary", *FINDING_KINDS]
    summary = wb["summary"]
    values = {summary.cell(row=r, column=1).value: summary.cell(row=r, column=2) for r in range(2, 11)}
    assert values["KRW at risk"].value == 1254367
    assert values["KRW at risk"].number_format == "#,##0"
    assert values["as of (KST)"].value == "2026-11-27 06:00"
    ws = wb["missed_webhook"]
    header = [c.value for c in ws[1]]
    assert "event_at (KST)" in header and "first_seen (KST)" in header
    row = {h: ws.cell(row=2, column=i + 1) for i, h in enumerate(header)}
    assert row["amount_at_risk"].value == 1234567 and row["amount_at_risk"].number_format == "#,##0"
    # KST wall time, naive (Excel has no time zones): 10:00:03 KST, not 01:00:03 UTC
    assert row["event_at (KST)"].value == datetime(2026, 11, 20, 10, 0, 3)
    assert row["merchant_uid"].value == "sub-cus_1-202611"
    assert wb["duplicate_charge"].max_row == 1  # header only
