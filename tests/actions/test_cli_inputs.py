"""Every bad input to the fix-up commands gets a message naming the culprit, exit 2, and no change."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from portone_recon._time import KST
from portone_recon.actions import FixPlan
from portone_recon.cli import main
from portone_recon.reconcile import reconcile
from portone_recon.store import Store
from portone_recon.sync import sync

from .conftest import AS_OF, build_merchant, load_local, load_subs


@pytest.fixture
def reconciled(world: Any, tmp_path: Path) -> Store:
    client = world.client()
    build_merchant(client, lambda to: world.advance(to=to))
    store = Store(tmp_path / "s.duckdb", lock_timeout=5.0)
    store.migrate()
    sync(client, store, progress=False)
    load_local(store)
    load_subs(store)
    reconcile(store, as_of=AS_OF)
    return store


def snapshot(store: Store) -> tuple[int, int, int]:
    q = (
        "SELECT (SELECT count(*) FROM actions), (SELECT count(*) FROM fix_plans), "
        "(SELECT count(*) FROM orders)"
    )
    row = store.query(q).iloc[0]
    return int(row.iloc[0]), int(row.iloc[1]), int(row.iloc[2])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["fix", "plan", "--kinds", " , "], "--kinds ' , ' names nothing"),
        (["fix", "plan", "--customers", ","], "--customers ',' names nothing"),
        (["fix", "plan", "--customers", "cus_a,nobody"], "names nobody"),
        (["fix", "plan", "--kinds", "refund"], "unknown kind(s) ['refund']"),
        (["fix", "plan", "--hour", "24"], "an hour is 0..23, got 24"),
        (["fix", "plan", "--prefix", "re book"], "rebook prefix 're book' must be"),
        (["rebook", "cus_a", "--amount", "-5"], "argument --amount: must be > 0, got -5"),
        (["rebook", "cus_a", "--amount", "9,900"], "argument --amount: not a whole number: '9,900'"),
        (["rebook", "cus_a", "--anchor-day", "40"], "an anchor day is 1..31, got 40"),
        (
            ["rebook", "cus_a", "--as-of", "garbage"],
            "not an ISO 8601 date or instant: 'garbage' (e.g. 2026-11-27",
        ),
        (
            ["rebook", "cus_a", "--as-of", "2099-01-01"],
            "--as-of: 2099-01-01T00:00:00+09:00 is more than 1 day ahead",
        ),
        (["rebook", "cus_a", "--amount", "5000"], "amount 5000 differs from subscription cus_a's 9900"),
        (["rebook", "cus_nobody"], "customer cus_nobody has no loaded subscription"),
        (["fix", "apply", "missing.json"], "cannot read the fix plan"),
        (["fix", "apply", "p.json", "--max-plan-age", "nan"], "hours must be > 0 and finite"),
        (["fix", "apply", "p.json", "--max-actions", "-1"], "must be >= 0, got -1"),
        (["reverify"], "give IMP_UID or --merchant-uid"),
    ],
)
def test_bad_inputs_exit_2_naming_the_culprit(
    argv: list[str],
    message: str,
    reconciled: Store,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: Any,
    tmp_path: Path,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PORTONE_RECON_DB", str(reconciled.path))
    before = snapshot(reconciled)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert "Traceback" not in err
    assert snapshot(reconciled) == before


def test_fix_plan_writes_its_file_before_printing_even_into_a_closed_pipe(
    reconciled: Store, tmp_path: Path
) -> None:
    out = tmp_path / "p.json"
    cmd = [
        sys.executable,
        "-m",
        "portone_recon",
        "fix",
        "plan",
        "--db",
        str(reconciled.path),
        "--out",
        str(out),
    ]
    # `| head -1`: the reader goes away after the first line
    proc = subprocess.run(
        f"{' '.join(cmd)} | head -1", shell=True, capture_output=True, text=True, timeout=120
    )
    assert out.exists() and len(FixPlan.load(out).actions) > 0
    assert "Traceback" not in proc.stderr, proc.stderr


def test_include_held_and_allow_inferred_from_the_cli(
    reconciled: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(reconciled.path)
    plain = tmp_path / "plain.json"
    assert main(["fix", "plan", "--db", db, "--out", str(plain)]) == 1
    out = capsys.readouterr().out
    assert "On hold" in out and "amount_mismatch" in out  # cus_e's next renewal waits for a person
    assert not any(a.customer_uid == "cus_e" and a.moves_money for a in FixPlan.load(plain).actions)
    held = tmp_path / "held.json"
    assert main(["fix", "plan", "--db", db, "--include-held", "--out", str(held)]) == 1
    marked = [a for a in FixPlan.load(held).actions if a.held_by]
    assert [(a.kind, a.customer_uid) for a in marked] == [("rebook", "cus_e")]
    with reconciled.transaction() as con:
        con.execute("DELETE FROM subscriptions")
    inferred = tmp_path / "inferred.json"
    assert main(["fix", "plan", "--db", db, "--out", str(inferred)]) == 1
    assert not any(a.moves_money for a in FixPlan.load(inferred).actions)
    assert "needs subscriptions" in FixPlan.load(inferred).to_json()
    allowed = tmp_path / "allowed.json"
    assert main(["fix", "plan", "--db", db, "--allow-inferred", "--out", str(allowed)]) == 1
    assert any(a.moves_money for a in FixPlan.load(allowed).actions)


def test_schedule_name_hour_and_webhook_come_from_the_settings(
    reconciled: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PORTONE_RECON_SCHEDULE_NAME", "월간 멤버십")
    monkeypatch.setenv("PORTONE_RECON_SCHEDULE_HOUR", "9")
    monkeypatch.setenv("PORTONE_NOTICE_URL", "https://shop.example/portone/webhook")
    out = tmp_path / "p.json"
    assert main(["fix", "plan", "--db", str(reconciled.path), "--out", str(out)]) == 1
    entries = [
        e for a in FixPlan.load(out).actions if a.kind == "rebook" for e in a.request["json"]["schedules"]
    ]
    assert entries and all(e["name"] == "월간 멤버십" for e in entries), (FixPlan.load(out).params, entries)
    assert all(e["notice_url"] == "https://shop.example/portone/webhook" for e in entries)
    assert all(datetime.fromtimestamp(e["schedule_at"], tz=KST).hour == 9 for e in entries)
    # the command line wins over the settings
    assert main(["fix", "plan", "--db", str(reconciled.path), "--hour", "11", "--out", str(out)]) == 1
    assert {
        datetime.fromtimestamp(e["schedule_at"], tz=KST).hour
        for a in FixPlan.load(out).actions
        if a.kind == "rebook"
        for e in a.request["json"]["schedules"]
    } == {11}
    capsys.readouterr()
    monkeypatch.setenv("PORTONE_RECON_SCHEDULE_HOUR", "25")
    assert main(["fix", "plan", "--db", str(reconciled.path)]) == 2
    assert "PORTONE_RECON_SCHEDULE_HOUR must be <= 23, got 25" in capsys.readouterr().err
