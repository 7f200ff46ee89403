"""Fix-ups through V2: a V2 merchant's loop closes with the same plan, gate and guards as V1's."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from portone_recon.actions import apply, plan_fixes
from portone_recon.actions.v2_client import RoutingClient, V2ActionsClient
from portone_recon.api.v2 import PortOneV2Client
from portone_recon.config import Settings
from portone_recon.orders import load_orders, load_subscriptions
from portone_recon.reconcile import reconcile
from portone_recon.sandbox.scenario import generate_merchant
from portone_recon.sandbox.v2_api import SandboxV2
from portone_recon.store import Store
from portone_recon.sync import sync
from portone_recon.sync.v2 import sync_v2

from .conftest import FIXABLE


def _ids(request: dict[str, Any]) -> list[str]:
    body = dict(request["query"]).get("requestBody", "{}")
    return list(json.loads(body).get("scheduleIds") or [])


def _now(world: Any) -> datetime:
    return datetime.fromtimestamp(world.now, UTC)


@pytest.mark.slow
def test_v2_merchant_loop_closes_with_the_v1_plan(tmp_path: Any, wall: Any) -> None:
    sc = generate_merchant(subscribers=300, months=4, seed=11)
    twin = generate_merchant(subscribers=300, months=4, seed=11)  # the same merchant, read through V1
    world = sc.world
    wall.world = world
    v2 = SandboxV2(world)
    settings = Settings(api_secret="sandbox_v2_secret", v2_api_base="https://v2.invalid")
    store = Store(tmp_path / "v2.duckdb", lock_timeout=5.0)
    v1_store = Store(tmp_path / "v1.duckdb", lock_timeout=5.0)
    sync(twin.world.client(), v1_store, progress=False)
    with PortOneV2Client(settings, transport=v2.transport(), sleep=lambda s: None) as api:
        sync_v2(api, store, now=_now(world))
        for s in (store, v1_store):
            load_orders(s, sc.orders, progress=False)
            load_subscriptions(s, sc.subscriptions, progress=False)
        before = reconcile(store, as_of=sc.as_of)
        plan = plan_fixes(before, FIXABLE, subscriptions=sc.subscriptions)
        v1_plan = plan_fixes(reconcile(v1_store, as_of=sc.as_of), FIXABLE, subscriptions=sc.subscriptions)
        assert [(a.kind, a.key, a.action_id) for a in plan.actions] == [
            (a.kind, a.key, a.action_id) for a in v1_plan.actions
        ]
        assert {a.kind for a in plan.actions} == {"reverify", "rebook", "retry", "unschedule"}
        client = RoutingClient(store, None, V2ActionsClient(api, store, now=_now(world)))
        report = apply(
            plan, client, store, dry_run=False, max_actions=10_000, max_amount=10**9, progress=False
        )
        assert set(report.outcomes["status"]) == {"succeeded"}, report.outcomes[
            report.outcomes["status"] != "succeeded"
        ][["kind", "key", "message"]].to_string()
        writes = [r for r in v2.requests if r["method"] != "GET"]
        assert writes and all(r["status"] == 200 for r in writes)
        assert all(r["path"] != "/payment-schedules" or len(_ids(r)) == 1 for r in writes)  # one id per call
        # Running it twice does no harm: nothing is sent again.
        apply(plan, client, store, dry_run=False, max_actions=10_000, max_amount=10**9, progress=False)
        assert [r for r in v2.requests if r["method"] != "GET"] == writes
        world.advance(seconds=1)
        wall.world = world
        sync_v2(api, store, now=_now(world), since=sc.as_of - timedelta(days=200))
    after = reconcile(store, as_of=sc.as_of + timedelta(seconds=1))
    outcome = dict(zip(report.outcomes["action_id"], report.outcomes["status"], strict=True))
    fixed = {a.finding_id for a in plan.actions if a.finding_id and outcome[a.action_id] == "succeeded"}
    still = after.findings[after.findings["finding_id"].isin(fixed)]
    assert still.empty, still[["kind", "customer_uid", "detail"]].to_string()
    assert after.new.empty, after.new[["kind", "customer_uid", "detail"]].to_string()


@pytest.mark.slow
def test_mixed_merchant_fixes_go_through_the_api_holding_each_key(tmp_path: Any, wall: Any) -> None:
    sc = generate_merchant(subscribers=300, months=4, seed=11)
    world = sc.world
    wall.world = world
    customers = sorted({p["customer_uid"] for p in world.payments.values() if p.get("customer_uid")})
    v1_customers = set(customers[::2])
    v2 = SandboxV2(world, v1_customers=v1_customers)
    settings = Settings(api_secret="sandbox_v2_secret", v2_api_base="https://v2.invalid")
    store = Store(tmp_path / "mixed.duckdb", lock_timeout=5.0)
    v1 = world.client()
    sync(v1, store, progress=False)
    with PortOneV2Client(settings, transport=v2.transport(), sleep=lambda s: None) as api:
        sync_v2(api, store, now=_now(world), only_v2=True)
        held = store.query("SELECT customer_uid, source_api FROM billing_keys")
        assert {c for c, a in zip(held["customer_uid"], held["source_api"], strict=True) if a == "v1"} == (
            v1_customers & set(held["customer_uid"])
        )
        load_orders(store, sc.orders, progress=False)
        load_subscriptions(store, sc.subscriptions, progress=False)
        before = reconcile(store, as_of=sc.as_of)
        plan = plan_fixes(before, FIXABLE, subscriptions=sc.subscriptions)
        v1_log, v2_log = len(world.requests), len(v2.requests)
        client = RoutingClient(store, v1, V2ActionsClient(api, store, now=_now(world)))
        report = apply(
            plan, client, store, dry_run=False, max_actions=10_000, max_amount=10**9, progress=False
        )
        assert set(report.outcomes["status"]) == {"succeeded"}
        v1_writes = [
            r for r in world.requests[v1_log:] if r["method"] != "GET" and "getToken" not in r["path"]
        ]
        v2_writes = [r for r in v2.requests[v2_log:] if r["method"] != "GET"]
        assert v1_writes and v2_writes
        money = [a for a in plan.actions if a.kind in ("rebook", "retry", "unschedule")]
        by_api = {client.api_for_customer(str(a.target.get("customer_uid"))) for a in money}
        assert by_api == {"v1", "v2"}
        for a in money:  # each customer's write went to its own API
            cu = str(a.target.get("customer_uid"))
            assert client.api_for_customer(cu) == ("v1" if cu in v1_customers else "v2")


def test_the_fix_commands_route_through_v2_when_a_v2_secret_is_set(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from portone_recon.actions import commands

    store = Store(tmp_path / "c.duckdb")
    store.migrate()
    for var in ("PORTONE_IMP_KEY", "PORTONE_IMP_SECRET"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PORTONE_API_SECRET", "v2-secret-for-routing")
    monkeypatch.chdir(tmp_path)
    client = commands._client(required=True, store=store)
    assert isinstance(client, RoutingClient) and client.v1 is None and client.v2 is not None
    assert "v2-secret-for-routing" not in repr(client)
    client.close()
    monkeypatch.delenv("PORTONE_API_SECRET")
    assert commands._client(required=False, store=store) is None  # no credentials: plan only
