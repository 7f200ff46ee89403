"""Recall and precision against the scenario generator's ground-truth labels: 100% per kind, several seeds.

The generator's merchant has monthly, quarterly and annual plans, trials, pauses, cancellations now and at
period end, lapses after failed retries (nothing more booked), two subscriptions on some cards, add-ons
with orders (some of exactly the plan's price), purchases without orders, issuance and test-channel
payments, retries under new merchant_uids, and every finding kind injected (labels).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from _recon_scenario import load_local, load_world

from portone_recon.reconcile import FINDING_KINDS, ReconResult, reconcile
from portone_recon.store import Store

scenario_mod = pytest.importorskip("portone_recon.sandbox.scenario")
MATCH_KEY = scenario_mod.MATCH_KEY


#: (seed, subscribers, anomalies per kind or None for the generator's default, decline rate)
CASES = (
    (11, 1000, None, 0.03),
    (22, 1000, None, 0.03),
    (33, 1000, None, 0.03),
    (44, 3000, 12, 0.08),  # many anomalies of every kind, many ordinary declines (recovered, unlabelled)
)


def confusion(result: ReconResult, labels: pd.DataFrame) -> pd.DataFrame:
    """Per kind: labelled, found, true positives, false positives, false negatives (with examples)."""
    rows: list[dict[str, Any]] = []
    for kind in FINDING_KINDS:
        col = MATCH_KEY[kind]
        truth = set(labels.loc[labels["kind"] == kind, col].dropna().astype(str))
        found = set(result[kind][col].dropna().astype(str))
        rows.append(
            {
                "kind": kind,
                "labelled": len(truth),
                "found": len(found),
                "tp": len(truth & found),
                "fp": len(found - truth),
                "fn": len(truth - found),
                "fp_examples": sorted(found - truth)[:3],
                "fn_examples": sorted(truth - found)[:3],
            }
        )
    return pd.DataFrame(rows)


@pytest.fixture(scope="module", params=CASES, ids=lambda c: f"seed{c[0]}-{c[1]}subs")
def reconciled(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    seed, subscribers, per_kind, decline_rate = request.param
    anomalies = None if per_kind is None else dict.fromkeys(FINDING_KINDS, per_kind)
    sc = scenario_mod.generate_merchant(
        subscribers=subscribers, months=13, seed=seed, anomalies=anomalies, decline_rate=decline_rate
    )
    path: Path = tmp_path_factory.mktemp(f"recall{seed}") / "recall.duckdb"
    store = Store(path, lock_timeout=5)
    store.migrate()
    load_world(store, sc.world, synced_at=sc.as_of)
    load_local(store, sc.orders, sc.subscriptions)
    result = reconcile(store, as_of=sc.as_of, grace="15min", progress=False)
    return sc, store, result


@pytest.mark.slow
def test_recall_and_precision_are_100_percent_per_kind(reconciled: Any) -> None:
    sc, _store, result = reconciled
    table = confusion(result, sc.labels)
    shown = table.to_string(index=False)
    bad = table[(table["fp"] > 0) | (table["fn"] > 0)]
    if len(bad):
        # evidence for the first wrong kind, to see at a glance why
        kind = str(bad["kind"].iloc[0])
        col = MATCH_KEY[kind]
        fps = result[kind][result[kind][col].astype(str).isin(bad["fp_examples"].iloc[0])]
        fns = sc.labels[
            (sc.labels["kind"] == kind) & sc.labels[col].astype(str).isin(bad["fn_examples"].iloc[0])
        ]
        pytest.fail(
            f"seed {sc.seed}: recall/precision below 100%\n{shown}\n\nfalse positives of {kind}:\n"
            f"{fps[['customer_uid', col, 'detail']].to_string()}\n\n"
            f"missed labels of {kind}:\n{fns.to_string()}"
        )
    missing_kinds = table.loc[table["labelled"] == 0, "kind"].tolist()
    assert not missing_kinds, f"seed {sc.seed}: the scenario injected no {missing_kinds}\n{shown}"
    assert not result.subscriptions_inferred


@pytest.mark.slow
def test_inside_grace_webhook_is_not_reported(reconciled: Any) -> None:
    sc, _store, result = reconciled
    marked = sc.params.get("inside_grace")
    if not marked:
        pytest.skip("the scenario did not mark an inside-grace webhook")
    values = {str(v) for v in (marked if isinstance(marked, list | tuple | set) else [marked])}
    if isinstance(marked, dict):
        values = {str(v) for v in marked.values() if v}
    reported = set(
        pd.concat([result.findings[c] for c in ("merchant_uid", "imp_uid", "schedule_merchant_uid")])
        .dropna()
        .astype(str)
    )
    assert not (values & reported), f"inside-grace event reported: {values & reported}"


@pytest.mark.slow
def test_rerun_on_scenario_is_stable(reconciled: Any) -> None:
    sc, store, first = reconciled
    again = reconcile(store, as_of=sc.as_of, grace="15min", progress=False)
    assert again.previous_run_id is not None
    assert (
        set(again.findings["finding_id"]) == set(first.findings["finding_id"])
        or again.previous_run_id != first.run_id
    )
    assert len(again.new) == 0 and len(again.resolved) == 0


ORDER_KINDS = ("missed_webhook", "amount_mismatch", "phantom_paid", "refund_not_reflected", "unknown_payment")


@pytest.mark.slow
def test_without_subscriptions_the_order_rules_are_unchanged(tmp_path: Path) -> None:
    """Inferred mode: the result says so, and the order-side kinds (which need no subscription) still
    match the labels exactly."""
    sc = scenario_mod.generate_merchant(subscribers=1000, months=13, seed=55)
    store = Store(tmp_path / "inferred.duckdb", lock_timeout=5)
    store.migrate()
    load_world(store, sc.world, synced_at=sc.as_of)
    load_local(store, sc.orders, sc.subscriptions.iloc[0:0])
    result = reconcile(store, as_of=sc.as_of, grace="15min", progress=False)
    assert result.subscriptions_inferred
    table = confusion(result, sc.labels).set_index("kind")
    for kind in ORDER_KINDS:
        row = table.loc[kind]
        assert row["labelled"] > 0 and row["fp"] == 0 and row["fn"] == 0, table.to_string()


@pytest.mark.slow
def test_end_to_end_through_the_real_sync(tmp_path: Path) -> None:
    """The same 100% with the store filled by portone_recon.sync over the sandbox transport."""
    sync_mod = pytest.importorskip("portone_recon.sync")
    client_mod = pytest.importorskip("portone_recon.api.client")
    sc = scenario_mod.generate_merchant(subscribers=400, months=13, seed=66)
    store = Store(tmp_path / "synced.duckdb", lock_timeout=5)
    store.migrate()
    client = client_mod.PortOneClient(
        imp_key=sc.world.imp_key, imp_secret="sandbox_secret", transport=sc.world.transport()
    )
    sync_mod.sync(client, store, progress=False)
    load_local(store, sc.orders, sc.subscriptions)
    result = reconcile(store, as_of=sc.as_of, grace="15min", progress=False)
    table = confusion(result, sc.labels)
    assert ((table["fp"] == 0) & (table["fn"] == 0) & (table["labelled"] > 0)).all(), table.to_string()


@pytest.mark.slow
@pytest.mark.parametrize("seed", [77, 88])
def test_orders_older_than_the_synced_range_are_left_out_not_reported(seed: int, tmp_path: Path) -> None:
    """Years of orders, a sync `--since` 8 months ago: the older paid orders are no phantoms, every injected
    problem (all after the cut) is still found exactly, and the result says what was left out."""
    end = scenario_mod.DEFAULT_END
    since = end - pd.Timedelta(days=240)
    sc = scenario_mod.generate_merchant(subscribers=1200, months=18, seed=seed, sync_from=since)
    store = Store(tmp_path / "window.duckdb", lock_timeout=5)
    store.migrate()
    load_world(store, sc.world, synced_at=sc.as_of, since=since)
    load_local(store, sc.orders, sc.subscriptions)
    result = reconcile(store, as_of=sc.as_of, grace="15min", progress=False)
    table = confusion(result, sc.labels)
    assert ((table["fp"] == 0) & (table["fn"] == 0) & (table["labelled"] > 0)).all(), table.to_string()
    older = sc.orders[sc.orders["paid_at"] < since]
    assert result.coverage["orders_before_sync"] >= len(older) > 100
    assert any("--since" in note for note in result.coverage_notes())


@pytest.mark.slow
def test_the_generator_has_a_real_merchants_variety(reconciled: Any) -> None:
    sc, _store, result = reconciled
    p = sc.params
    assert p["intervals"]["3"] > 0 and p["intervals"]["12"] > 0 and p["trials"] > 0
    assert p["paused"] > 0 and p["cancel_at_period_end"] > 0 and p["addons_with_orders"] > 0
    assert p["second_subscriptions"] > 0 and sc.subscriptions["customer_uid"].duplicated().any()
    assert len(p["lapsed"]) > 0  # churn by simply booking nothing more after the retries failed
    assert result.coverage["issuance_payments"] == p["issuance_payments"] > 0
    assert result.coverage["sandbox_payments"] == p["test_payments"] > 0
