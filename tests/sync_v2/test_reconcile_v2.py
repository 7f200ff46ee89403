"""Reconcile on V2 data: a generated merchant read through V2 gives the findings it gives through V1.

Every finding kind is injected by the scenario generator; the V2 sandbox serves the same world. Findings
(kind and finding_id: a hash of the kind and its keys) must be the same sets, and each label found.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from portone_recon.api import PortOneClient
from portone_recon.api.v2 import PortOneV2Client
from portone_recon.config import Settings
from portone_recon.reconcile import FINDING_KINDS, reconcile
from portone_recon.sandbox.scenario import MATCH_KEY, Scenario, generate_merchant
from portone_recon.sandbox.v2_api import SandboxV2
from portone_recon.store import Store
from portone_recon.sync import sync
from portone_recon.sync.v2 import sync_v2

sys.path.insert(0, str(Path(__file__).parent.parent / "reconcile"))
from _recon_scenario import load_local


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return generate_merchant(400, 13, seed=21)


def _v1_store(sc: Scenario, path: Path) -> Store:
    store = Store(path)
    w = sc.world
    with PortOneClient(
        imp_key=w.imp_key, imp_secret=w.imp_secret, transport=w.transport(), sleep=lambda s: None
    ) as c:
        sync(c, store, progress=False)
    return store


def _v2_store(
    v2: SandboxV2, sc: Scenario, path: Path, *, only_v2: bool = False, into: Store | None = None
) -> Store:
    store = into or Store(path)
    settings = Settings(api_secret="sandbox_v2_secret", v2_api_base="https://v2.invalid")
    with PortOneV2Client(settings, transport=v2.transport(), sleep=lambda s: None) as c:
        sync_v2(c, store, now=sc.as_of, only_v2=only_v2)
    return store


def _findings(store: Store, sc: Scenario) -> tuple[set[tuple[str, str]], Any]:
    load_local(store, sc.orders, sc.subscriptions)
    result = reconcile(store, as_of=sc.as_of, grace="15min", progress=False)
    return {
        (str(k), str(f)) for k, f in zip(result.findings["kind"], result.findings["finding_id"], strict=True)
    }, result


def test_a_v2_merchant_gets_the_findings_of_a_v1_merchant(scenario: Scenario, tmp_path: Path) -> None:
    v1, _ = _findings(_v1_store(scenario, tmp_path / "v1.duckdb"), scenario)
    v2_found, result = _findings(
        _v2_store(SandboxV2(scenario.world), scenario, tmp_path / "v2.duckdb"), scenario
    )
    assert v2_found == v1
    assert {k for k, _ in v2_found} == set(FINDING_KINDS)
    for kind in FINDING_KINDS:
        col = MATCH_KEY[kind]
        truth = set(scenario.labels.loc[scenario.labels["kind"] == kind, col].dropna().astype(str))
        assert truth <= set(result[kind][col].dropna().astype(str)), kind


def test_a_mixed_merchant_gets_the_same_findings(scenario: Scenario, tmp_path: Path) -> None:
    customers = sorted({p["customer_uid"] for p in scenario.world.payments.values() if p.get("customer_uid")})
    v2 = SandboxV2(scenario.world, v1_customers=customers[::2])
    v2.v1_schedules_visible = True  # V1 schedules through V2: either way the V1 sync owns them
    store = _v1_store(scenario, tmp_path / "mixed.duckdb")
    _v2_store(v2, scenario, tmp_path / "mixed.duckdb", only_v2=True, into=store)
    mixed, _ = _findings(store, scenario)
    v1, _ = _findings(_v1_store(scenario, tmp_path / "v1.duckdb"), scenario)
    assert mixed == v1
    n = store.query("SELECT count(*) AS n, count(DISTINCT imp_uid) AS d FROM payments")
    assert int(n["n"][0]) == int(n["d"][0]) == len(scenario.world.payments)


def test_missed_webhook_shows_the_v2_delivery_log(scenario: Scenario, tmp_path: Path) -> None:
    v2 = SandboxV2(scenario.world)
    store = _v2_store(v2, scenario, tmp_path / "hooks.duckdb")
    _, result = _findings(store, scenario)
    missed = result["missed_webhook"]
    assert len(missed) > 0
    for mu, detail in zip(missed["merchant_uid"], missed["detail"], strict=True):
        logged = v2.render_payment(v2.latest_attempt(str(mu)) or {}).get("webhooks")
        statuses = {h["status"] for h in logged or []}
        expected = (
            "SUCCEEDED" if "SUCCEEDED" in statuses else (logged[-1]["status"] if logged else "none logged")
        )
        assert detail.endswith(f"V2 webhook delivery: {expected}"), (mu, detail)
    # through V1 the detail says nothing about deliveries (V1 has no delivery log)
    _, v1 = _findings(_v1_store(scenario, tmp_path / "v1.duckdb"), scenario)
    assert not v1["missed_webhook"]["detail"].str.contains("webhook delivery").any()
