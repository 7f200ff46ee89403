"""``portone-recon ack / unack / findings`` and what ``--fail-on`` counts once findings are triaged."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from _recon_world import World, kst

from portone_recon.cli import main
from portone_recon.reconcile import triage_history

AS_OF = "2026-11-27T06:00:00+09:00"
NEXT_DAY = "2026-11-28T06:00:00+09:00"


@pytest.fixture
def db(world: World) -> Path:
    world.renewal("cus_1", kst(2026, 11, 20), webhook=False)  # missed_webhook + missing_next_schedule (high)
    world.payment("ghost", customer_uid="cus_9", at=kst(2026, 11, 2))  # unknown_payment (medium)
    world.flush()
    return world.store.path


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, list[dict[str, object]]]:
    capsys.readouterr()
    code = main(argv)
    return code, json.loads(capsys.readouterr().out)


def _ids(rows: list[dict[str, object]], severity: str | None = None) -> list[str]:
    return [str(r["finding_id"]) for r in rows if severity is None or r["severity"] == severity]


def test_alerts_count_only_open_findings_and_fail_on_all_counts_every_one(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, rows = _json(capsys, ["reconcile", "--db", str(db), "--as-of", AS_OF, "--format", "json"])
    assert code == 1  # two high findings, default --fail-on high
    for r in rows:
        assert {"finding_id", "first_seen", "age_days", "triage_state", "triage_until"} <= set(r)
        assert r["triage_state"] is None and r["age_days"] == 0
    high = _ids(rows, "high")
    assert len(high) == 2
    assert main(["ack", *high, "--note", "PG outage on 11-20", "--by", "kim", "--db", str(db)]) == 0
    assert "acknowledged 2 finding(s) by kim" in capsys.readouterr().out

    code, rows = _json(capsys, ["reconcile", "--db", str(db), "--as-of", NEXT_DAY, "--format", "json"])
    assert code == 0  # nothing high is open any more
    assert {
        str(r["finding_id"]): r["triage_state"] for r in rows if r["severity"] == "high"
    } == dict.fromkeys(high, "acknowledged")
    assert all(r["age_days"] == 1 for r in rows)
    assert main(["reconcile", "--db", str(db), "--as-of", NEXT_DAY, "--fail-on-all"]) == 1
    assert main(["reconcile", "--db", str(db), "--as-of", NEXT_DAY, "--fail-on", "medium"]) == 1
    assert (
        main(["reconcile", "--db", str(db), "--as-of", NEXT_DAY, "--fail-on", "none", "--fail-on-all"]) == 0
    )

    assert main(["unack", high[0], "--db", str(db)]) == 0
    assert main(["reconcile", "--db", str(db), "--as-of", NEXT_DAY]) == 1


def test_ack_refuses_unknown_ids_naming_them_and_writes_nothing(
    db: Path, world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    _code, rows = _json(capsys, ["reconcile", "--db", str(db), "--as-of", AS_OF, "--format", "json"])
    known = _ids(rows)[0]
    assert main(["ack", known, "abc123", "zzz", "--note", "x", "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert "unknown finding id(s) abc123, zzz" in err and "nothing was written" in err
    assert main(["unack", "abc123", "--db", str(db)]) == 2
    assert main(["ack", known, "--db", str(db)]) == 2  # --note is required
    assert main(["ack", known, "--note", "", "--state", "explained", "--db", str(db)]) == 2
    assert main(["ack", known, "--note", "x", "--until", "31.12.2026", "--db", str(db)]) == 2
    assert len(triage_history(world.store)) == 0
    assert main(["ack", known, "--note", "x", "--db", str(db.parent / "missing.duckdb")]) == 2


def test_findings_lists_open_acknowledged_resolved_and_all(
    db: Path, world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    _code, rows = _json(capsys, ["reconcile", "--db", str(db), "--as-of", AS_OF, "--format", "json"])
    ghost = next(str(r["finding_id"]) for r in rows if r["kind"] == "unknown_payment")
    webhook = next(str(r["finding_id"]) for r in rows if r["kind"] == "missed_webhook")
    capsys.readouterr()
    assert main(["ack", webhook, "--note", "waiting for PG", "--until", "2026-12-01", "--db", str(db)]) == 0
    assert main(["ack", ghost, "--note", "x", "--until", "2000-01-01", "--db", str(db)]) == 0
    assert "--until 2000-01-01 is before today" in capsys.readouterr().err
    world.execute("DELETE FROM payments WHERE merchant_uid = 'ghost'")
    main(["reconcile", "--db", str(db), "--as-of", NEXT_DAY])

    _code, open_rows = _json(capsys, ["findings", "--db", str(db), "--format", "json"])
    assert [r["status"] for r in open_rows] == ["open"] and _ids(open_rows) != [webhook]
    _code, acked = _json(capsys, ["findings", "--state", "acknowledged", "--db", str(db), "--format", "json"])
    assert _ids(acked) == [webhook]
    assert (acked[0]["triage_note"], acked[0]["triage_until"]) == ("waiting for PG", "2026-12-01")
    _code, gone = _json(capsys, ["findings", "--state", "resolved", "--db", str(db), "--format", "json"])
    assert _ids(gone) == [ghost] and gone[0]["resolved_how"] == "gone from the data"
    _code, every = _json(capsys, ["findings", "--state", "all", "--db", str(db), "--format", "json"])
    assert sorted(r["status"] for r in every) == ["acknowledged", "open", "resolved"]

    capsys.readouterr()
    assert main(["findings", "--state", "all", "--db", str(db), "--format", "csv"]) == 0
    parsed = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert {r["finding_id"] for r in parsed} == set(_ids(every))
    assert next(r for r in parsed if r["finding_id"] == webhook)["triage_until"] == "2026-12-01"
    assert main(["findings", "--state", "acknowledged", "--db", str(db)]) == 0
    table = capsys.readouterr().out
    assert webhook in table and "waiting for PG" in table and "2026-12-01" in table


def test_fail_on_has_one_default_on_reconcile_and_report() -> None:
    from portone_recon.cli import build_parser

    parser = build_parser()
    rec = parser.parse_args(["reconcile"])
    rep = parser.parse_args(["report", "daily"])
    assert rec.fail_on == rep.fail_on == "high"
    assert rec.fail_on_all is False and rep.fail_on_all is False
