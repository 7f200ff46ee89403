"""Fix-ups through V2 under the other reading of each UNCONFIRMED V2 behaviour they read through: the
plan, the outcomes and the writes PortOne receives are those of the played reading."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
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

Reading = Callable[[SandboxV2], None]


def _ready(v2: SandboxV2) -> None:
    v2.ready_before_time_to_pay = True


def _short(v2: SandboxV2) -> None:
    v2.max_window_days = 31


def _issuance(v2: SandboxV2) -> None:
    v2.issuance_listed = True


def _v1_keys_own_id(v2: SandboxV2) -> None:
    v2.v1_keys = "own_id"


def _v1_keys_hidden(v2: SandboxV2) -> None:
    v2.v1_keys = "hidden"


def _v1_ids(v2: SandboxV2) -> None:
    v2.v1_payment_id = "imp_uid"


def _loop(tmp: Path, wall: Any, reading: Reading | None, *, mixed: bool) -> tuple[list[Any], list[Any], Any]:
    """Sync, plan and apply one generated merchant; the plan, outcomes and V2 writes."""
    sc = generate_merchant(subscribers=300, months=4, seed=11)
    world = sc.world
    wall.world = world
    customers = sorted({p["customer_uid"] for p in world.payments.values() if p.get("customer_uid")})
    v2 = SandboxV2(world, v1_customers=customers[::2] if mixed else ())
    if reading is not None:
        reading(v2)
    tmp.mkdir(exist_ok=True)
    store = Store(tmp / "s.duckdb", lock_timeout=5.0)
    v1 = world.client() if mixed else None
    if v1 is not None:
        sync(v1, store, progress=False)
    now = datetime.fromtimestamp(world.now, UTC)
    settings = Settings(api_secret="sandbox_v2_secret", v2_api_base="https://v2.invalid")
    with PortOneV2Client(settings, transport=v2.transport(), sleep=lambda s: None) as api:
        sync_v2(api, store, now=now, only_v2=mixed)
        load_orders(store, sc.orders, progress=False)
        load_subscriptions(store, sc.subscriptions, progress=False)
        plan = plan_fixes(reconcile(store, as_of=sc.as_of), FIXABLE, subscriptions=sc.subscriptions)
        mark = len(v2.requests)
        client = RoutingClient(store, v1, V2ActionsClient(api, store, now=now))
        report = apply(
            plan, client, store, dry_run=False, max_actions=10_000, max_amount=10**9, progress=False
        )
    actions = [(a.kind, a.key, a.action_id) for a in plan.actions]
    outcomes = sorted(zip(report.outcomes["action_id"], report.outcomes["status"], strict=True))
    writes = [
        (r["method"], r["path"], r["query"], r["status"]) for r in v2.requests[mark:] if r["method"] != "GET"
    ]
    return actions, outcomes, writes


@pytest.mark.slow
@pytest.mark.parametrize(
    ("reading", "mixed"),
    [
        (_ready, False),
        (_short, False),
        (_issuance, False),
        (_v1_keys_own_id, True),
        (_v1_keys_hidden, True),
        (_v1_ids, True),
    ],
    ids=["ready_before_time_to_pay", "max_window_days", "issuance_listed", "v1_keys_own_id", "v1_keys_hidden",
         "v1_payment_id"],
)  # fmt: skip
def test_fix_ups_are_the_same_under_the_other_reading(
    tmp_path: Path, wall: Any, reading: Reading, mixed: bool
) -> None:
    played = _loop(tmp_path / "a", wall, None, mixed=mixed)
    other = _loop(tmp_path / "b", wall, reading, mixed=mixed)
    actions, outcomes, writes = played
    assert actions and writes and {s for _, s in outcomes} == {"succeeded"}
    assert other == played
