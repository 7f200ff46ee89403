"""A plan file is a view, not an instruction: every edit of a real plan file is refused before anything is
sent, or sends exactly what the untampered plan sends (counted from the sandbox's request log)."""

from __future__ import annotations

import copy
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from portone_recon.actions import FixPlan, apply, journal_frame
from portone_recon.cli import main
from portone_recon.errors import ActionError
from portone_recon.reconcile import reconcile
from portone_recon.sandbox import SandboxWorld
from portone_recon.store import Store
from portone_recon.sync import sync

from .conftest import AS_OF, START, build_merchant, entry, load_local, load_subs, writes

Edit = Callable[[dict[str, Any]], None]


@pytest.fixture(scope="module")
def merchant(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The hand-built merchant, synced, reconciled and planned once with ``fix plan`` (the wall clock is
    AS_OF, the sandbox's time, through the autouse ``wall`` fixture of each test)."""
    tmp = tmp_path_factory.mktemp("tamper")
    world = SandboxWorld(start=START, seed=7)
    client = world.client()
    client.issue_billing_key("cus_h", card_number="4242-4242-4242-4242", expiry="2030-12", birth="900101")
    client.create_schedules("cus_h", [entry("sub-cus_h-202611", "2026-11-27", 7700, 12)])  # due today
    build_merchant(client, lambda to: world.advance(to=to))
    store = Store(tmp / "t.duckdb", lock_timeout=5.0)
    store.migrate()
    sync(client, store, progress=False)
    load_local(store)
    load_subs(store)
    reconcile(store, as_of=AS_OF)
    return {"world": world, "client": client, "store": store, "tmp": tmp}


@pytest.fixture
def plan_file(merchant: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    path = Path(merchant["tmp"]) / "plan.json"
    if not path.exists():
        assert main(["fix", "plan", "--db", str(merchant["store"].path), "--out", str(path)]) == 1
        capsys.readouterr()
    return json.loads(path.read_text(encoding="utf-8"))


def action(data: dict[str, Any], kind: str, customer: str | None = None) -> dict[str, Any]:
    return next(
        a
        for a in data["actions"]
        if a["kind"] == kind and (customer is None or a["target"].get("customer_uid") == customer)
    )


def _add_rebook_for_healthy(d: dict[str, Any]) -> None:
    a = copy.deepcopy(action(d, "rebook", "cus_a"))
    a["action_id"] = "act_00000000000000000001"
    a["target"].update(
        customer_uid="cus_h", subscription_id="cus_h", merchant_uid="x-cus_h-202612", amount=1_000_000
    )
    a["request"]["json"]["customer_uid"] = "cus_h"
    a["request"]["json"]["schedules"][0].update(amount=1_000_000, merchant_uid="x-cus_h-202612")
    a["amount"] = 1_000_000
    d["actions"].append(a)


def _retarget_rebook_to_cancelled(d: dict[str, Any]) -> None:
    a = action(d, "rebook", "cus_a")
    a["target"].update(customer_uid="cus_d", subscription_id="cus_d")
    a["request"]["json"]["customer_uid"] = "cus_d"


def _raise_amount(d: dict[str, Any]) -> None:
    a = action(d, "rebook", "cus_a")
    a["target"]["amount"] = 990_000
    a["amount"] = 990_000
    a["request"]["json"]["schedules"][0]["amount"] = 990_000


def _twelve_schedules(d: dict[str, Any]) -> None:
    a = action(d, "rebook", "cus_a")
    first = a["request"]["json"]["schedules"][0]
    a["request"]["json"]["schedules"] = [
        {**first, "merchant_uid": f"{first['merchant_uid']}-{i}"} for i in range(12)
    ]


def _request_only_amount(d: dict[str, Any]) -> None:
    action(d, "rebook", "cus_a")["request"]["json"]["schedules"][0]["amount"] = 990_000


def _move_schedule_at(d: dict[str, Any]) -> None:
    a = action(d, "rebook", "cus_a")
    a["target"]["schedule_at"] = "2027-06-03T10:00:00+09:00"


def _drop_retry_period(d: dict[str, Any]) -> None:
    a = action(d, "retry")
    a["target"].pop("period_start")
    a["target"].pop("period_end")


def _move_retry_period(d: dict[str, Any]) -> None:
    a = action(d, "retry")
    a["target"].update(period_start="2027-01-25", period_end="2027-02-25")


def _duplicate_action(d: dict[str, Any]) -> None:
    d["actions"].append(copy.deepcopy(d["actions"][0]))


def _unknown_kind(d: dict[str, Any]) -> None:
    d["actions"][0]["kind"] = "refund"


def _amount_as_text(d: dict[str, Any]) -> None:
    action(d, "rebook", "cus_a")["amount"] = "9900"


def _missing_key(d: dict[str, Any]) -> None:
    del action(d, "retry")["target"]


def _drop_an_action(d: dict[str, Any]) -> None:
    d["actions"].pop(0)


def _other_plan_id(d: dict[str, Any]) -> None:
    d["plan_id"] = "plan_0000000000000000"


def _younger(d: dict[str, Any]) -> None:
    d["created_at"] = "2099-01-01T00:00:00+09:00"


def _include_held(d: dict[str, Any]) -> None:
    d["params"]["include_held"] = True


def _allow_inferred(d: dict[str, Any]) -> None:
    d["params"]["allow_inferred"] = True


def _swap_finding(d: dict[str, Any]) -> None:
    rebooks = [a for a in d["actions"] if a["kind"] == "rebook"]
    rebooks[0]["finding_id"], rebooks[1]["finding_id"] = rebooks[1]["finding_id"], rebooks[0]["finding_id"]


def _unschedule_healthy(d: dict[str, Any]) -> None:
    a = copy.deepcopy(action(d, "unschedule"))
    a["action_id"] = "act_00000000000000000002"
    a["target"].update(customer_uid="cus_h", schedule_merchant_uid="sub-cus_h-202611")
    a["request"]["json"] = {"customer_uid": "cus_h", "merchant_uid": ["sub-cus_h-202611"]}
    d["actions"].append(a)


def _reason_text(d: dict[str, Any]) -> None:
    d["actions"][0]["reason"] += "!"


def _digest_only(d: dict[str, Any]) -> None:
    d["digest"] = "0" * 64


def _digest_recomputed_after_amount(d: dict[str, Any]) -> None:
    _raise_amount(d)
    d["digest"] = FixPlan.from_dict({k: v for k, v in d.items() if k != "digest"}).digest


def _version(d: dict[str, Any]) -> None:
    d["version"] = 1


TAMPERS: dict[str, tuple[Edit, str]] = {
    "added rebook for a healthy customer": (_add_rebook_for_healthy, "digest|not in the recorded plan"),
    "rebook moved to a cancelled customer": (_retarget_rebook_to_cancelled, "digest|target"),
    "amount raised everywhere": (_raise_amount, "digest|amount"),
    "twelve schedules in the request": (_twelve_schedules, "digest|request"),
    "request amount only": (_request_only_amount, "digest|request"),
    "schedule moved": (_move_schedule_at, "digest|schedule_at"),
    "retry period removed": (_drop_retry_period, "digest|period"),
    "retry period moved": (_move_retry_period, "digest|period"),
    "action duplicated": (_duplicate_action, "twice"),
    "unknown action kind": (_unknown_kind, "unknown action kind 'refund'"),
    "amount as text": (_amount_as_text, "field 'amount' must be a whole number"),
    "missing target": (_missing_key, "field 'target' is missing"),
    "action removed": (_drop_an_action, "digest|missing from the plan"),
    "plan id of no record": (_other_plan_id, "digest|not recorded"),
    "made younger": (_younger, "digest|created_at"),
    "held actions included": (_include_held, "digest|params"),
    "inferred allowed": (_allow_inferred, "digest|params"),
    "findings swapped": (_swap_finding, "digest|finding_id"),
    "unschedule of a healthy renewal added": (_unschedule_healthy, "digest|not in the recorded plan"),
    "reason text": (_reason_text, "digest|reason"),
    "digest replaced": (_digest_only, "digest"),
    "digest recomputed after an edit": (_digest_recomputed_after_amount, "differs from the plan recorded"),
    "old version": (_version, "version 1"),
}


@pytest.mark.parametrize("name", sorted(TAMPERS))
def test_a_tampered_plan_is_refused_before_anything_is_sent(
    name: str, merchant: dict[str, Any], plan_file: dict[str, Any]
) -> None:
    edit, message = TAMPERS[name]
    data = copy.deepcopy(plan_file)
    edit(data)
    path = Path(merchant["tmp"]) / f"tampered-{name.replace(' ', '_')}.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    world = merchant["world"]
    world.requests.clear()
    with pytest.raises(ActionError, match=message):
        apply(FixPlan.load(path), merchant["client"], merchant["store"], dry_run=False, progress=False)
    assert writes(world.requests) == []
    assert journal_frame(merchant["store"]).empty  # no journal row claims a send


def test_the_cli_names_the_first_difference_and_exits_2(
    merchant: dict[str, Any], plan_file: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    data = copy.deepcopy(plan_file)
    _digest_recomputed_after_amount(data)
    path = Path(merchant["tmp"]) / "edited.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    assert main(["fix", "apply", str(path), "--db", str(merchant["store"].path), "--apply"]) == 2
    err = capsys.readouterr().err
    assert "field amount: 990000, recorded 9900" in err and "re-plan" in err
    assert "Traceback" not in err


def test_untampered_and_reformatted_plans_send_exactly_the_planned_requests(
    merchant: dict[str, Any], plan_file: dict[str, Any]
) -> None:
    path = Path(merchant["tmp"]) / "reformatted.json"
    path.write_text(json.dumps(plan_file, indent=7, sort_keys=True), encoding="utf-8")
    world = merchant["world"]
    world.requests.clear()
    plan = FixPlan.load(path)
    report = apply(plan, merchant["client"], merchant["store"], dry_run=False, progress=False)
    sent = Counter(writes(world.requests))
    assert sent == {
        "POST /subscribe/payments/unschedule": 2,
        "POST /subscribe/payments/schedule/sub-cus_b-202611/retry": 1,
        "POST /subscribe/payments/schedule": 2,
    }
    # what the report counts is what went out: two bookings and one charge
    assert report.requests_sent == 3
    assert report.amount_sent == {"KRW": 9900 + 14900 + 14900}
    assert "sub-cus_h-202611" not in str(report.outcomes["key"].tolist())
