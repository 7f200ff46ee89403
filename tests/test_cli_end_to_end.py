"""The analyst's command-line path, end to end, against `portone-recon sandbox serve` in another process:
sync + load-orders + load-subscriptions + reconcile reports exactly the injected anomalies."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from portone_recon.cli import main
from portone_recon.sandbox.process import serve_in_subprocess
from portone_recon.sandbox.scenario import MATCH_KEY


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[dict[str, str], Path]]:
    files = tmp_path / "merchant"
    args = ("--seed", "4", "--subscribers", "300", "--months", "13", "--merchant-files", str(files))
    with serve_in_subprocess(*args) as info:
        yield info, files


@pytest.mark.slow
def test_sync_load_reconcile_reports_exactly_the_injected_anomalies(
    served: tuple[dict[str, str], Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    info, files = served
    monkeypatch.setenv("PORTONE_API_BASE", info["base_url"])
    monkeypatch.setenv("PORTONE_IMP_KEY", info["imp_key"])
    monkeypatch.setenv("PORTONE_IMP_SECRET", info["imp_secret"])
    db = str(tmp_path / "recon.duckdb")
    assert main(["sync", "--db", db, "--quiet"]) == 0
    assert main(["load-orders", str(files / "orders.csv"), "--db", db]) == 0
    assert main(["load-subscriptions", str(files / "subscriptions.csv"), "--db", db]) == 0
    capsys.readouterr()
    code = main(["reconcile", "--db", db, "--as-of", "2026-11-27T06:00:00+09:00", "--format", "json"])
    findings = json.loads(capsys.readouterr().out)
    assert code == 1  # high and critical findings exist

    with open(files / "labels.csv", encoding="utf-8") as fh:
        labels = list(csv.DictReader(fh))
    expected = {(row["kind"], row[MATCH_KEY[row["kind"]]]) for row in labels}
    got = {(f["kind"], f[MATCH_KEY[f["kind"]]]) for f in findings}
    assert {k for k, _ in expected} == set(MATCH_KEY)  # every kind was injected
    assert got == expected, {"missed": expected - got, "extra": got - expected}
    for f in findings:  # evidence an analyst can check in the console
        assert {"severity", "suggested_action", "detail", "customer_uid"} <= set(f)
        assert f["detail"]
    assert info["imp_secret"] not in Path(db).read_bytes().decode("latin-1")


def test_merchant_files_need_a_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sandbox", "serve", "--port", "0", "--merchant-files", os.devnull]) == 2
    assert "--merchant-files needs --subscribers" in capsys.readouterr().err
