"""The daily report's workflow sections (new, still open, acknowledged, resolved and how), its alert
counting only open findings, and ``report --notebook-dir`` running a merchant's own notebook copy."""

from __future__ import annotations

import json
import re
import shutil
import sys
from datetime import date
from pathlib import Path

import nbformat
import pandas as pd

from portone_recon.cli import main
from portone_recon.reconcile import acknowledge
from portone_recon.reports import build_daily
from portone_recon.reports.formatting import html_table
from portone_recon.reports.runner import NOTEBOOKS, default_notebook_dir
from portone_recon.reports.summary import findings_at_or_above
from portone_recon.store import Store

sys.path.insert(0, str(Path(__file__).parent))
from _reports_seed import AS_OF


def _triaged(store: Store) -> Store:
    """run-2 of the seed: f-1 (high, also in run-1), f-3 (critical, new), f-4 (high, new); f-2 resolved.

    f-3 is explained until 2026-12-31; f-2 was fixed by a journaled unschedule action.
    """
    acknowledge(
        store, ["f-3"], note="수기 할인, 영업팀 합의", by="kim", until=date(2026, 12, 31), state="explained"
    )
    with store.transaction() as con:
        con.execute(
            "INSERT INTO actions (action_id, kind, status, finding_id, attempts, created_at, updated_at) "
            "VALUES ('unschedule:mu-f-2', 'unschedule', 'succeeded', 'f-2', 1, ?, ?)",
            [AS_OF, AS_OF],
        )
    return store


def test_workflow_sections_split_new_open_acknowledged_and_resolved(seeded: Store) -> None:
    report = build_daily(_triaged(seeded).path, as_of=AS_OF, reconcile=False)
    assert (report.finding_count, report.open_count, report.acknowledged_count) == (3, 2, 1)
    assert list(report.new_today()["finding_id"]) == ["f-3", "f-4"]  # critical first
    assert list(report.still_open()["finding_id"]) == ["f-1"]
    acked = report.acknowledged()
    assert list(acked["finding_id"]) == ["f-3"]
    assert acked.iloc[0]["메모"] == "수기 할인, 영업팀 합의" and acked.iloc[0]["담당"] == "kim"
    assert acked.iloc[0]["다시 볼 날 (이후 미확인)"] == "2026-12-31" and acked.iloc[0]["상태"] == "설명됨"
    gone = report.resolved_how()
    assert list(gone["finding_id"]) == ["f-2"]
    assert gone.iloc[0]["해결 경위"].startswith("조치로 해결: unschedule (unschedule:mu-f-2")
    html = report.workflow_html()
    for title in ("오늘 새로 발견 (2건)", "계속 미확인 (오래된 순) (1건)", "확인됨 (메모·담당·기한) (1건)"):
        assert title in html
    assert "이전 실행 이후 해결됨 (1건)" in html
    headline = report.headline_html()
    assert re.search(r"미확인 \(알림 대상\)</th><td[^>]*>2건", headline)
    assert re.search(r"확인됨 \(확인·설명·조치 안 함\)</th><td[^>]*>1건", headline)
    s = report.summary()
    assert (s["open"], s["acknowledged"], s["resolved_by_action"]) == (2, 1, 1)
    assert findings_at_or_above(s, "critical") == 0 and findings_at_or_above(s, "critical", every=True) == 1
    assert findings_at_or_above(s, "high") == 2


def test_a_resolved_finding_without_a_journaled_fix_is_gone_from_the_data(seeded: Store) -> None:
    report = build_daily(seeded.path, as_of=AS_OF, reconcile=False)
    assert report.resolved_how().iloc[0]["해결 경위"].startswith("데이터에서 사라짐")
    assert report.acknowledged_count == 0 and report.open_count == 3


def test_wide_tables_scroll_inside_their_box_and_rules_stay_per_table() -> None:
    wide = pd.DataFrame({"finding_id": ["a"], "amount_at_risk": [1000], "detail": ["x" * 300]})
    other = pd.DataFrame({"detail": ["y"], "amount_at_risk": [5]})
    one, two = html_table(wide), html_table(other)
    assert "overflow-x:auto" in one and "<div class='pr-scroll'" in one
    scope_one = re.search(r"pr-t[0-9a-f]{8}", one)
    scope_two = re.search(r"pr-t[0-9a-f]{8}", two)
    assert scope_one and scope_two and scope_one.group(0) != scope_two.group(0)
    assert f"table.{scope_one.group(0)} td:nth-child(3){{white-space:normal" in one  # detail wraps
    assert f"table.{scope_one.group(0)} th:nth-child(3){{text-align:left}}" in one
    assert f"table.{scope_one.group(0)} td:nth-child(2){{text-align:right}}" in one  # money


def test_report_cli_alerts_on_open_findings_and_runs_a_notebook_copy(seeded: Store, tmp_path: Path) -> None:
    _triaged(seeded)
    own = tmp_path / "my-notebooks"
    own.mkdir()
    name = NOTEBOOKS["daily"]
    nb = nbformat.read(default_notebook_dir() / name, as_version=4)
    nb.cells.insert(1, nbformat.v4.new_markdown_cell("우리 회사 사본 MARKER-7731", id="own-copy"))
    nbformat.write(nb, own / name)
    out = tmp_path / "out"
    argv = ["report", "daily", "--no-reconcile", "--db", str(seeded.path), "--out", str(out)]
    argv += ["--as-of", AS_OF.isoformat(), "--notebook-dir", str(own)]
    # the only critical finding is explained: no alert at critical, but --fail-on-all still counts it
    assert main([*argv, "--fail-on", "critical"]) == 0
    folder = out / "daily" / "2026-11-27"
    html = (folder / "daily_reconciliation.html").read_text(encoding="utf-8")
    assert "MARKER-7731" in html
    for title in ("오늘 새로 발견", "계속 미확인", "확인됨 (메모·담당·기한)", "이전 실행 이후 해결됨"):
        assert title in html
    assert "수기 할인, 영업팀 합의" in html and "조치로 해결: unschedule" in html
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    assert (
        summary["open_counts_by_severity"]["critical"] == 0 and summary["counts_by_severity"]["critical"] == 1
    )
    assert findings_at_or_above(summary, "critical", every=True) == 1
    shutil.rmtree(own)
    assert main([*argv, "--fail-on", "critical"]) == 2  # the named copy is gone: a clear error
