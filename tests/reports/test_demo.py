"""The main job, ``portone-recon demo``, on a small scenario."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
from pathlib import Path

import pytest

from portone_recon.errors import ReportError
from portone_recon.reports import commands as report_commands
from portone_recon.reports.demo import _fresh_db, run_demo


def _demo(argv: list[str]) -> tuple[int, str]:
    parser = argparse.ArgumentParser()
    report_commands.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["demo", *argv])
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = int(args.func(args))
    return code, buf.getvalue()


@pytest.mark.slow
def test_demo_builds_the_store_and_both_reports(tmp_path: Path) -> None:
    db = tmp_path / "demo.duckdb"
    out = tmp_path / "reports"
    argv = ["--db", str(db), "--out", str(out), "--subscribers", "80", "--months", "4", "--seed", "5"]
    code, printed = _demo(argv)
    assert code == 0
    daily = out / "daily" / "2026-11-27"
    monthly = out / "monthly" / "2026-10"
    for folder, stem in ((daily, "daily_reconciliation"), (monthly, "monthly_subscriptions")):
        assert (folder / f"{stem}.html").is_file() and (folder / f"{stem}.ipynb").is_file()
        assert str(folder / f"{stem}.html") in printed  # the paths to open
    summary = json.loads((daily / "summary.json").read_text(encoding="utf-8"))
    assert summary["finding_count"] > 0 and summary["reconciled"] is True
    assert f"{summary['finding_count']:,} findings" in printed
    for kind, n in summary["counts_by_kind"].items():
        if n:
            assert kind in printed
    assert (tmp_path / "demo.duckdb.demo.json").is_file()  # marks the file as the demo's own


def test_demo_replaces_only_its_own_file(tmp_path: Path) -> None:
    db = tmp_path / "demo.duckdb"
    db.write_bytes(b"old demo")
    (tmp_path / "demo.duckdb.demo.json").write_text("{}", encoding="utf-8")
    _fresh_db(db)
    assert not db.exists()


def test_demo_refuses_to_replace_a_file_it_did_not_create(tmp_path: Path) -> None:
    db = tmp_path / "precious.duckdb"
    db.write_bytes(b"not a demo")
    with pytest.raises(ReportError, match="not created by `portone-recon demo`"):
        run_demo(db, tmp_path / "reports", subscribers=10, months=2)
    assert db.read_bytes() == b"not a demo"


@pytest.mark.slow
def test_demo_of_a_v2_and_a_mixed_merchant_finds_what_the_v1_one_finds(tmp_path: Path) -> None:
    found = {}
    payments: dict[str, tuple[int, int]] = {}
    for api in ("v1", "v2", "mixed"):
        out = tmp_path / f"reports-{api}"
        argv = ["--db", str(tmp_path / f"{api}.duckdb"), "--out", str(out), "--subscribers", "80"]
        code, printed = _demo([*argv, "--months", "4", "--seed", "5", "--api", api])
        assert code == 0, printed
        summary = json.loads((out / "daily" / "2026-11-27" / "summary.json").read_text(encoding="utf-8"))
        found[api] = (summary["finding_count"], summary["counts_by_kind"], summary["amount_at_risk"])
        # One report per merchant, naming each API it read, each payment once.
        page = (out / "daily" / "2026-11-27" / "daily_reconciliation.html").read_text(encoding="utf-8")
        named = {source for source in ("v1", "v2") if f"PortOne {source.upper()}</td>" in page}
        assert named == {"v1": {"v1"}, "v2": {"v2"}, "mixed": {"v1", "v2"}}[api]
        assert set(summary["sources"]) == named
        counts = summary["sources"].values()
        payments[api] = (sum(s["payments"] for s in counts), sum(s["issue_transactions"] for s in counts))
    # The same payments through either API; issuing a key is a transaction in V1 only (none in V2).
    assert payments["v1"][0] == payments["v2"][0] == payments["mixed"][0] > 0
    assert payments["mixed"] == payments["v1"] and payments["v2"][1] == 0
    assert found["v2"] == found["v1"] == found["mixed"]
    assert found["v1"][0] > 0
