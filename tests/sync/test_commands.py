"""``portone-recon sync``: argument handling and errors (the full run is in test_sync_kill.py)."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from portone_recon.cli import main


def test_sync_without_credentials_names_the_variables(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["sync", "--db", str(tmp_path / "x.duckdb"), "--quiet"])
    assert code == 2
    err = capsys.readouterr().err
    assert "PORTONE_IMP_KEY" in err
    assert "PORTONE_IMP_SECRET" in err


def test_sync_rejects_a_bad_date(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sync", "--db", str(tmp_path / "x.duckdb"), "--since", "yesterday-ish"]) == 2
    assert "yesterday-ish" in capsys.readouterr().err


def test_sync_help_lists_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sync", "--help"]) == 0
    out = capsys.readouterr().out
    for option in ("--db", "--since", "--until", "--full", "--quiet"):
        assert option in out


def test_full_flag_reaches_the_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # (`import portone_recon.sync.engine as …` would resolve `portone_recon.sync` to the function)
    engine = importlib.import_module("portone_recon.sync.engine")

    seen: dict[str, object] = {}

    class FakeReport:
        quarantined = 0

        def __repr__(self) -> str:
            return "SyncReport(fake)"

    def fake_sync(client: object, store: object, **kwargs: object) -> FakeReport:
        seen.update(kwargs)
        return FakeReport()

    monkeypatch.setattr(engine, "sync", fake_sync)
    monkeypatch.setenv("PORTONE_IMP_KEY", "k")
    monkeypatch.setenv("PORTONE_IMP_SECRET", "s")
    db = str(tmp_path / "x.duckdb")
    assert main(["sync", "--db", db, "--full"]) == 0
    assert seen["full"] is True
    assert "SyncReport(fake)" in capsys.readouterr().out
    assert main(["sync", "--db", db, "--quiet"]) == 0
    assert seen["full"] is False
    # records that could not be read: the sync went on, but the run says so and exits 1
    FakeReport.quarantined = 3
    assert main(["sync", "--db", db, "--quiet"]) == 1
    assert "3 PortOne record(s) could not be read and were quarantined" in capsys.readouterr().err
