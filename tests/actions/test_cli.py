"""CLI: fix plan / fix apply / fix journal / reverify / rebook, exit codes and what reaches the sandbox."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from portone_recon.actions import FixPlan, load_recon
from portone_recon.api.client import PortOneClient
from portone_recon.cli import main
from portone_recon.reconcile import reconcile
from portone_recon.store import Store
from portone_recon.sync import sync

from .conftest import AS_OF, build_merchant, load_local, load_subs, writes


def reconciled_store(client: Any, advance: Any, path: Path) -> Store:
    build_merchant(client, advance)
    store = Store(path, lock_timeout=5.0)
    store.migrate()
    sync(client, store, progress=False)
    load_local(store)
    load_subs(store)
    reconcile(store, as_of=AS_OF)
    return store


def test_fix_plan_from_the_stored_run_and_dry_run_without_credentials(
    world: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = reconciled_store(world.client(), lambda to: world.advance(to=to), tmp_path / "s.duckdb")
    recon = load_recon(store)
    assert recon.as_of == AS_OF and len(recon.findings) >= 5
    out = tmp_path / "plan.json"
    code = main(["fix", "plan", "--db", str(store.path), "--out", str(out)])
    text = capsys.readouterr().out
    assert code == 1  # actions to do
    assert "FixPlan(" in text and "rebook" in text
    plan = FixPlan.load(out)
    assert {a.kind for a in plan} == {"unschedule", "reverify", "retry", "rebook"}
    assert plan.run_id == recon.run_id

    only = tmp_path / "only.json"
    assert (
        main(["fix", "plan", "--db", str(store.path), "--kinds", "orphan_schedule", "--out", str(only)]) == 1
    )
    assert [a.kind for a in FixPlan.load(only)] == ["unschedule"]

    world.requests.clear()
    code = main(["fix", "apply", str(out), "--db", str(store.path)])
    captured = capsys.readouterr()
    assert code == 1
    assert "dry-run" in captured.out and "would_send" in captured.out
    assert "no PortOne credentials" in captured.err
    assert world.requests == []
    assert store.query("SELECT count(*) AS n FROM actions")["n"][0] == 0


def test_fix_plan_without_a_run_is_a_clear_error(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fix", "plan", "--db", str(store.path)]) == 2
    err = capsys.readouterr().err
    assert "no reconciliation run is stored" in err and "portone-recon reconcile" in err
    assert str(store.path) in err


@pytest.mark.slow
def test_cli_against_a_served_sandbox(
    served: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    base = served["base_url"]
    client = PortOneClient(
        imp_key=served["imp_key"], imp_secret=served["imp_secret"], api_base=base, sleep=lambda s: None
    )

    def advance(to: Any) -> None:
        httpx.post(f"{base}/__sandbox/advance", json={"to": to.isoformat()}).raise_for_status()

    store = reconciled_store(client, advance, tmp_path / "cli.duckdb")
    monkeypatch.setenv("PORTONE_IMP_KEY", served["imp_key"])
    monkeypatch.setenv("PORTONE_IMP_SECRET", served["imp_secret"])
    monkeypatch.setenv("PORTONE_API_BASE", base)
    monkeypatch.setenv("PORTONE_RECON_DB", str(store.path))
    httpx.delete(f"{base}/__sandbox/requests").raise_for_status()

    def sent() -> Counter[str]:
        return Counter(writes(httpx.get(f"{base}/__sandbox/requests").json()["response"]))

    # one-off reverify: dry-run first, then for real
    imp = client.fetch_schedule("sub-cus_a-202611").imp_uid
    assert main(["reverify", str(imp)]) == 1
    assert f"GET /payments/{imp} then mark its order paid locally" in capsys.readouterr().out
    assert main(["reverify", str(imp), "--apply"]) == 0
    assert "succeeded" in capsys.readouterr().out
    assert (
        store.query("SELECT status FROM orders WHERE merchant_uid = 'sub-cus_a-202611'")["status"][0]
        == "paid"
    )

    # one-off rebook, dry-run only (reads, never writes)
    assert main(["rebook", "cus_a", "--as-of", AS_OF.isoformat()]) == 1
    out = capsys.readouterr().out
    assert "would_send" in out and "POST /subscribe/payments/schedule {" in out
    assert '"merchant_uid": "rebook-cus_a-202612"' in out and "2026-12-03 10:00 KST, 9,900 KRW" in out
    assert sent() == Counter()

    plan = tmp_path / "plan.json"
    assert main(["fix", "plan", "--out", str(plan)]) == 1
    assert main(["fix", "apply", str(plan)]) == 1  # dry-run
    assert sent() == Counter()
    capsys.readouterr()
    code = main(["fix", "apply", str(plan), "--apply"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "already paid locally" in out  # the reverify done by hand above
    first = sent()
    assert first["POST /subscribe/payments/schedule/sub-cus_b-202611/retry"] == 1
    assert main(["fix", "apply", str(plan), "--yes"]) == 0  # the old switch is an alias
    assert sent() == first  # a second apply sends nothing
    assert main(["fix", "journal"]) == 0
    journal = capsys.readouterr().out
    assert "succeeded" in journal and "skipped" in journal
    assert json.loads(plan.read_text(encoding="utf-8"))["version"] == 2
