"""Reports executed with papermill: files, HTML headline numbers, exit codes, failures, the secret canary."""

from __future__ import annotations

import ast
import json
import re
import sys
from html import escape as html_escape
from pathlib import Path

import nbformat
import pytest

from portone_recon.errors import ReportError
from portone_recon.reports import NOTEBOOKS, run_report
from portone_recon.reports.formatting import krw
from portone_recon.reports.runner import default_notebook_dir
from portone_recon.store import Store

sys.path.insert(0, str(Path(__file__).parent))
from _reports_seed import CANARY_SECRET, ReportRun

NOTEBOOK_DIR = default_notebook_dir()


@pytest.mark.parametrize("filename", sorted(NOTEBOOKS.values()))
def test_notebooks_are_committed_clean_with_one_literal_parameters_cell(filename: str) -> None:
    nb = nbformat.read(NOTEBOOK_DIR / filename, as_version=4)
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
    tree = ast.parse(params[0].source)
    names = set()
    for node in tree.body:
        assert isinstance(node, ast.Assign)
        ast.literal_eval(node.value)  # plain literals only
        names.add(node.targets[0].id)  # type: ignore[attr-defined]
    assert "summary_path" in names and "db" in names
    assert not {n for n in names if re.search("secret|token|password", n)}
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "SELECT" not in code.upper().split("#")[0] and "httpx" not in code  # thin: no SQL, no HTTP


@pytest.mark.parametrize("name", ["daily", "monthly", "fixup"])
def test_each_report_writes_notebook_html_and_summary(report_run: ReportRun, name: str) -> None:
    result = report_run.results[name]
    assert result.notebook.is_file() and result.html.is_file() and result.summary_path.is_file()
    assert result.folder.parent.name == name
    assert (
        repr(result).startswith(f"ReportResult({name!r}, html=")
        and "<a href='file://" in result._repr_html_()
    )
    summary = json.loads(result.summary_path.read_text(encoding="utf-8"))
    assert summary["status"] == "ok" and summary["report"] == name
    assert summary["duration_s"] > 0
    html = result.html.read_text(encoding="utf-8")
    # no code cells, no CDN scripts (opens offline), charts embedded
    assert "build_" not in html and "import " not in html
    assert not re.search(r"<script[^>]+src=\"https?://", html)
    assert not re.search(r"<link[^>]+href=\"https?://", html)
    nb = nbformat.read(result.notebook, as_version=4)
    assert nb.metadata["papermill"]["parameters"]["summary_path"] == str(result.summary_path.resolve())
    # Hangul renders: matplotlib never warned about missing glyphs
    streams = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []) if "text" in o)
    assert "missing from" not in streams


def test_daily_html_shows_the_summary_numbers(report_run: ReportRun) -> None:
    result = report_run.results["daily"]
    s = result.summary
    assert s["reconciled"] and s["synced"]
    assert s["previous_run_id"]  # the run of the day before is the history
    html = result.html.read_text(encoding="utf-8")
    assert s["run_id"] in html
    assert f"{s['finding_count']:,}건" in html
    assert krw(s["amount_at_risk"]) in html
    assert re.search(rf"신규 \(이전 실행 대비\)</th>\s*<td[^>]*>{s['new']:,}건", html)
    assert re.search(rf"해결됨 \(이전 실행 대비\)</th>\s*<td[^>]*>{s['resolved']:,}건", html)
    assert "data:image/png;base64" in html  # the trend chart
    assert set(s["counts_by_severity"]) == {"critical", "high", "medium", "low"}
    assert sum(s["counts_by_kind"].values()) == s["finding_count"]
    for kind, n in s["counts_by_kind"].items():
        assert f"<code>{kind}</code>" in html  # one section per kind
        if n:
            assert f"<b>{n:,}건</b> (신규" in html  # with its count and evidence table
    # the scenario injects every kind: every section has evidence
    assert {k for k, n in s["counts_by_kind"].items() if n} >= set(report_run.labels["kind"])
    assert "조치 계획" in html and s["planned_actions"] is not None


def test_monthly_html_shows_the_summary_numbers(report_run: ReportRun) -> None:
    result = report_run.results["monthly"]
    s = result.summary
    assert s["month"] == "2026-10" and result.folder.name == "2026-10"
    assert s["mrr"] > 0 and s["active_subscribers"] > 0 and s["renewals_paid"] > 0
    html = result.html.read_text(encoding="utf-8")
    assert krw(s["mrr"]) in html
    assert f"{s['active_subscribers']:,}명" in html
    for reason in s["top_failure_reasons"]:
        assert html_escape(reason["fail_reason"]) in html
    assert html.count("data:image/png;base64") >= 4  # subscribers, MRR, renewals, reasons
    assert result.exit_code("low") == 0  # a monthly report carries no findings


def test_fixup_over_its_cap_sends_nothing_and_says_which_cap(report_run: ReportRun) -> None:
    s = report_run.results["fixup"].summary
    assert s["applied"] is True and s["max_amount"] == 10_000
    assert s["planned_by_kind"].get("rebook", 0) + s["planned_by_kind"].get("retry", 0) > 0
    assert s["plan_amount"] > 10_000
    assert s["journal_by_status"] is None  # nothing was journaled: nothing was sent
    assert (
        f"the cap max_amount is 10,000, exceeded by {s['plan_amount'] - 10_000:,} KRW" in s["apply_refused"]
    )
    html = report_run.results["fixup"].html.read_text(encoding="utf-8")
    assert "적용 거부" in html and "max_amount is 10,000" in html
    # nothing is acknowledged in this store: the alert counts every finding
    assert s["open_counts_by_severity"] == s["counts_by_severity"]


def test_exit_codes_follow_fail_on(report_run: ReportRun) -> None:
    daily = report_run.results["daily"]
    worst = [k for k, v in daily.summary["counts_by_severity"].items() if v]
    assert worst, "the seeded store yields findings"
    assert daily.exit_code("low") == 1
    assert daily.exit_code("none") == 0
    if not daily.summary["counts_by_severity"]["critical"]:
        assert daily.exit_code("critical") == 0


def test_secret_canary_never_reaches_any_file(report_run: ReportRun) -> None:
    needles = [CANARY_SECRET.encode(), *(t.encode() for t in report_run.tokens)]
    assert report_run.tokens, "the sandbox issued a token: the canary was really used"
    files = [p for p in report_run.root.rglob("*") if p.is_file()]
    assert any(p.suffix == ".duckdb" for p in files)
    assert sum(p.suffix in (".ipynb", ".html", ".json") for p in files) >= 9
    for path in files:
        data = path.read_bytes()
        for needle in needles:
            assert needle not in data, f"{path} holds a credential"


def test_cli_report_prints_paths_and_exits_by_severity(report_run: ReportRun) -> None:
    folder = report_run.cli_out / "daily" / "2026-11-27"
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    assert summary["reconciled"] is False and summary["run_id"] == "run-2"
    assert summary["counts_by_severity"]["critical"] == 1  # f-3 amount_mismatch
    assert report_run.cli_code == 1  # --fail-on critical
    assert "daily_reconciliation.html" in report_run.cli_stdout and "summary.json" in report_run.cli_stdout


def test_failing_cell_keeps_the_notebook_and_names_the_cell(report_run: ReportRun) -> None:
    err = report_run.failure
    assert err is not None
    assert err.notebook is not None and Path(err.notebook).is_file()
    assert err.cell == 2  # the committed notebook's third cell: report = build_daily(...)
    assert "cell 2 of daily_reconciliation.ipynb" in str(err) and "build_daily" in str(err)
    assert "no reconciliation run" in str(err)
    folder = Path(err.notebook).parent
    assert (folder / "daily_reconciliation.html").is_file()
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    assert summary["status"] == "failed" and summary["failed_cell"] == 2


def test_cli_usage_errors_exit_2(tmp_path: Path) -> None:
    from portone_recon.cli import main

    assert main(["report", "daily", "--db", str(tmp_path / "missing.duckdb"), "--out", str(tmp_path)]) == 2
    assert main(["report", "daily", "--month", "2026-10", "--db", str(tmp_path / "x.duckdb")]) == 2
    assert main(["report", "weekly"]) == 2


def test_bad_parameters_are_refused_before_the_kernel_starts(tmp_path: Path, seeded: Store) -> None:
    db = str(seeded.path)
    with pytest.raises(ReportError, match="credential"):
        run_report("daily", {"db": db, "imp_secret": "x"}, tmp_path)
    with pytest.raises(ReportError, match="plain literals"):
        run_report("daily", {"db": db, "as_of": object()}, tmp_path)
    with pytest.raises(ReportError, match="unknown parameter"):
        run_report("daily", {"db": db, "asof": "2026-11-27"}, tmp_path)
    with pytest.raises(ReportError, match="unknown report"):
        run_report("weekly", {}, tmp_path)
    with pytest.raises(ReportError, match="no such store"):
        run_report("monthly", {"db": str(tmp_path / "nope.duckdb")}, tmp_path)
    assert not any(tmp_path.rglob("*.ipynb"))


def test_secret_value_is_refused_as_a_parameter(
    tmp_path: Path, seeded: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PORTONE_IMP_SECRET", CANARY_SECRET)
    with pytest.raises(ReportError, match="holds the API secret") as info:
        run_report("daily", {"db": str(seeded.path), "grace": CANARY_SECRET}, tmp_path)
    assert CANARY_SECRET not in str(info.value)
