"""``portone-recon sync``: argument handling and errors (the full run is in test_sync_kill.py)."""

from __future__ import annotations

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
    for option in ("--db", "--since", "--until", "--quiet"):
        assert option in out
