"""A dry run shows each fix-up in the form it will be sent: V1 for a V1 customer, V2 for a V2 customer,
exactly the request the V2 client then sends, and never a secret."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from portone_recon.actions import apply, plan_fixes
from portone_recon.actions.preview import plan_frame
from portone_recon.actions.v2_client import RoutingClient, V2ActionsClient, fixup_client
from portone_recon.api.client import PortOneClient
from portone_recon.api.v2 import PortOneV2Client
from portone_recon.api.v2.requests import V2Request
from portone_recon.config import Settings
from portone_recon.orders import load_orders, load_subscriptions
from portone_recon.reconcile import reconcile
from portone_recon.sandbox.scenario import generate_merchant
from portone_recon.sandbox.v2_api import SandboxV2
from portone_recon.store import Store
from portone_recon.sync import sync
from portone_recon.sync.v2 import sync_v2

from .conftest import FIXABLE

V2_SECRET = "v2-secret-never-shown-7Qz"
#: How each kind's request starts, per API.
FORMS = {
    "v1": {
        "rebook": "POST /subscribe/payments/schedule ",
        "retry": "POST /subscribe/payments/schedule/",
        "unschedule": "POST /subscribe/payments/unschedule ",
        "reverify": "GET /payments/",
    },
    "v2": {
        "rebook": "POST /payments/",
        "retry": "POST /payments/",
        "unschedule": "DELETE /payment-schedules?requestBody=",
        "reverify": "GET /payments/",
    },
}


class Recorder(httpx.BaseTransport):
    """Keeps every request the V2 client sends."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.sent: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.sent.append(request)
        return self.inner.handle_request(request)


def _as_built(r: httpx.Request) -> V2Request:
    """A request that went over the wire, as a :class:`V2Request` (to compare with the preview)."""
    query = dict(r.url.params.multi_items())
    key = r.headers.get("idempotency-key")
    return V2Request(
        r.method,
        r.url.raw_path.decode("ascii").split("?", 1)[0],
        "",
        json=json.loads(r.content) if r.content else None,
        body_query=json.loads(query.pop("requestBody")) if "requestBody" in query else None,
        params=tuple(query.items()),
        idempotency_key=key.strip('"') if key else None,
    )


@pytest.fixture(params=[None], ids=["recharged"])
def mixed(
    request: pytest.FixtureRequest, tmp_path: Path, wall: Any
) -> Iterator[tuple[Any, RoutingClient, Recorder, Store, set[str]]]:
    sc = generate_merchant(subscribers=300, months=4, seed=11)
    world = sc.world
    wall.world = world
    customers = sorted({p["customer_uid"] for p in world.payments.values() if p.get("customer_uid")})
    v1_customers = set(customers[::2])
    v2 = SandboxV2(world, api_secret=V2_SECRET, v1_customers=v1_customers)
    v2.failed_id_refusal = request.param
    recorder = Recorder(v2.transport())
    settings = Settings(api_secret=V2_SECRET, v2_api_base="https://v2.invalid")
    store = Store(tmp_path / "mixed.duckdb", lock_timeout=5.0)
    v1 = world.client()
    sync(v1, store, progress=False)
    now = datetime.fromtimestamp(world.now, UTC)
    with PortOneV2Client(settings, transport=recorder, sleep=lambda s: None) as api:
        sync_v2(api, store, now=now, only_v2=True)
        load_orders(store, sc.orders, progress=False)
        load_subscriptions(store, sc.subscriptions, progress=False)
        plan = plan_fixes(reconcile(store, as_of=sc.as_of), FIXABLE, subscriptions=sc.subscriptions)
        client = RoutingClient(store, v1, V2ActionsClient(api, store, now=now))

        def resync_and_reconcile() -> Any:
            sync(v1, store, progress=False)
            sync_v2(api, store, now=datetime.fromtimestamp(world.now, UTC), only_v2=True)
            return reconcile(store, as_of=sc.as_of)

        client.resync_and_reconcile = resync_and_reconcile  # type: ignore[attr-defined]
        yield plan, client, recorder, store, {world.imp_secret, V2_SECRET}


@pytest.mark.slow
def test_the_dry_run_shows_v1_customers_in_v1_and_v2_customers_in_v2_as_then_sent(mixed: Any) -> None:
    plan, client, recorder, store, secrets = mixed
    dry = apply(plan, client, store, dry_run=True, max_actions=10_000, max_amount=10**9, progress=False)
    preview = dict(zip(dry.outcomes["action_id"], dry.outcomes["request"], strict=True))
    seen = set()
    for a in plan.actions:
        api = client.api_for_customer(str(a.target.get("customer_uid")))
        line = preview[a.action_id]
        assert line.startswith(FORMS[api][a.kind]), (api, a.kind, line)
        if api == "v2" and a.kind != "reverify":
            assert "/subscribe/" not in line
        if api == "v2" and a.kind in ("rebook", "retry"):
            mu = a.target["merchant_uid"] if a.kind == "rebook" else a.target["schedule_merchant_uid"]
            tail = "/schedule " if a.kind == "rebook" else "/billing-key "
            assert f"/payments/{mu}{tail}" in line or f"/payments/{mu}{tail.strip()} [Idem" in line
        assert not any(s in line for s in secrets)
        seen.add((api, a.kind))
    assert {k for api, k in seen if api == "v2"} == set(FORMS["v2"])  # every V2 form is shown
    assert {k for api, k in seen if api == "v1"}  # and V1 customers' actions beside them
    frame = plan_frame(plan, client)  # the plan table (fix-up report) names the same forms
    for a, request in zip(plan.actions, frame["request"], strict=True):
        api = client.api_for_customer(str(a.target.get("customer_uid")))
        if api == "v1":
            assert request == f"{a.request['method']} {a.request['path']}"
        else:
            assert (
                request
                == {
                    "rebook": f"POST /payments/{a.target.get('merchant_uid')}/schedule",
                    "retry": f"POST /payments/{a.target.get('schedule_merchant_uid')}/billing-key",
                    "unschedule": "DELETE /payment-schedules",
                    "reverify": f"GET /payments/{a.target.get('merchant_uid')}",
                }[a.kind]
            )

    sent_before = len(recorder.sent)
    done = apply(plan, client, store, dry_run=False, max_actions=10_000, max_amount=10**9, progress=False)
    assert set(done.outcomes["status"]) == {"succeeded"}
    writes = [r for r in recorder.sent[sent_before:] if r.method != "GET"]
    assert writes
    joined = "\n".join(preview.values())
    for r in writes:  # every V2 write, byte for byte, is in the dry run's preview
        assert _as_built(r).describe() in joined, _as_built(r).describe()
    journal = store.query("SELECT action_id, result FROM actions WHERE result IS NOT NULL")
    assert len(journal) and not any(s in str(v) for v in journal["result"] for s in secrets)
    recorded = {
        i: json.loads(v).get("request") for i, v in zip(journal["action_id"], journal["result"], strict=True)
    }
    for a in plan.actions:  # the journal keeps the request in the form that was sent
        if recorded.get(a.action_id) is not None:
            assert recorded[a.action_id] == preview[a.action_id]


def test_the_client_fix_ups_are_sent_with_follows_the_settings(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.duckdb")
    store.migrate()
    both = fixup_client(Settings(imp_key="k", imp_secret="s", api_secret="v2"), store)
    assert isinstance(both, RoutingClient) and both.v1 is not None and both.v2 is not None
    only_v1 = fixup_client(Settings(imp_key="k", imp_secret="s"), store)
    assert isinstance(only_v1, PortOneClient)
    assert fixup_client(Settings(), store) is None
    for c in (both, only_v1):
        c.close()


@pytest.mark.slow
@pytest.mark.parametrize("mixed", ["MAX_TRANSACTION_COUNT_REACHED"], indirect=True, ids=["refused"])
def test_when_a_failed_id_is_not_charged_again_v2_retries_go_under_a_new_id_once(mixed: Any) -> None:
    plan, client, recorder, store, _ = mixed
    retries = [
        a for a in plan.actions if a.kind == "retry" and client.api_for_customer(a.customer_uid) == "v2"
    ]
    assert retries
    retried = {str(a.target["schedule_merchant_uid"]) for a in retries}
    before = client.resync_and_reconcile().findings
    assert retried <= set(before.loc[before["kind"] == "unpaid_renewal", "merchant_uid"])
    done = apply(plan, client, store, dry_run=False, max_actions=10_000, max_amount=10**9, progress=False)
    assert set(done.outcomes["status"]) == {"succeeded"}
    charged = [r.url.raw_path.decode() for r in recorder.sent if r.url.path.endswith("/billing-key")]
    for a in retries:  # refused on its own id, then charged once under the first retry id
        mu = a.target["schedule_merchant_uid"]
        assert [c for c in charged if f"/payments/{mu}" in c] == [
            f"/payments/{mu}/billing-key",
            f"/payments/{mu}-r1/billing-key",
        ]
    sent = len(recorder.sent)
    apply(plan, client, store, dry_run=False, max_actions=10_000, max_amount=10**9, progress=False)
    assert not [r for r in recorder.sent[sent:] if r.method != "GET"]  # a second apply charges nothing
    # The next sync and reconciliation see each renewal paid under its retry id: the unpaid renewal is
    # closed, and the retry's payment is its own order's (the apply created it), not an unknown payment.
    after = client.resync_and_reconcile().findings
    open_renewals = set(after.loc[after["kind"] == "unpaid_renewal", "merchant_uid"])
    assert not open_renewals & retried
    unknown = set(after.loc[after["kind"] == "unknown_payment", "merchant_uid"])
    assert not unknown & {f"{mu}-r1" for mu in retried}
