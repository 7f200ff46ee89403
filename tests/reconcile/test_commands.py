"""``portone-recon reconcile``: formats, output files, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _recon_world import World, kst

from portone_recon.cli import main
from portone_recon.store import open_store


@pytest.fixture
def db(world: World) -> Path:
    # no subscriptions loaded (inferred): the lost webhook also ended the chain -> missing_next_schedule
    world.renewal("cus_1", kst(2026, 11, 20), webhook=False)  # missed_webhook (high)
    world.payment("ghost", customer_uid="cus_9", at=kst(2026, 11, 2))  # unknown_payment (medium)
    world.flush()
    return world.store.path


AS_OF = "2026-11-27T06:00:00+09:00"


def test_json_is_one_array_of_findings(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["reconcile", "--db", str(db), "--as-of", AS_OF, "--format", "json"])
    out = capsys.readouterr().out
    rows = json.loads(out)
    assert code == 1
    assert {r["kind"] for r in rows} == {"missed_webhook", "missing_next_schedule", "unknown_payment"}
    for r in rows:
        for key in (
            "kind",
            "severity",
            "customer_uid",
            "merchant_uid",
            "imp_uid",
            "suggested_action",
            "detail",
        ):
            assert key in r
    assert next(r for r in rows if r["kind"] == "missed_webhook")["suggested_action"] == "reverify"


def test_fail_on_threshold(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reconcile", "--db", str(db), "--as-of", AS_OF, "--fail-on", "critical"]) == 0
    assert main(["reconcile", "--db", str(db), "--as-of", AS_OF, "--fail-on", "high"]) == 1
    assert main(["reconcile", "--db", str(db), "--as-of", AS_OF, "--fail-on", "medium"]) == 1
    out = capsys.readouterr().out
    assert "3 finding(s) (2 high, 1 medium)" in out and "missed_webhook" in out


def test_clean_store_exits_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    open_store(tmp_path / "x.duckdb")
    assert main(["reconcile", "--db", str(tmp_path / "x.duckdb"), "--as-of", AS_OF, "--fail-on", "low"]) == 0
    assert "0 finding(s)" in capsys.readouterr().out


def test_missing_store_is_an_error_not_an_empty_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "typo.duckdb"
    assert main(["reconcile", "--db", str(missing), "--as-of", AS_OF]) == 2
    assert "no such store" in capsys.readouterr().err
    assert not missing.exists()


def test_csv_and_xlsx_files(db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv_path = tmp_path / "f.csv"
    assert (
        main(["reconcile", "--db", str(db), "--as-of", AS_OF, "--format", "csv", "--out", str(csv_path)]) == 1
    )
    text = csv_path.read_text(encoding="utf-8")
    assert text.splitlines()[0].startswith("kind,severity,customer_uid")
    assert "+09:00" in text and "age_seconds" in text
    xlsx = tmp_path / "f.xlsx"
    assert main(["reconcile", "--db", str(db), "--as-of", AS_OF, "--format", "xlsx", "--out", str(xlsx)]) == 1
    assert xlsx.stat().st_size > 0
    assert "wrote" in capsys.readouterr().err


def test_errors_exit_two(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reconcile", "--db", str(db), "--format", "xlsx"]) == 2
    assert "--out" in capsys.readouterr().err
    assert main(["reconcile", "--db", str(db), "--as-of", "not-a-date"]) == 2
    assert "ISO 8601" in capsys.readouterr().err
    assert main(["reconcile", "--db", str(db), "--fail-on", "urgent"]) == 2
