"""Scenario generator: determinism, labels == what the world contains, realism, recovered declines.

``_oracle`` re-implements the finding rules of design.md §5 in plain Python over the world's dicts and
the local books, independently of the generator, so "labels are the complete ground truth" is checked
both ways (every label is a finding, every finding is a label).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from portone_recon._time import KST, anchored_date, period_start
from portone_recon.errors import SandboxError
from portone_recon.orders import ORDER_COLUMNS, SUBSCRIPTION_COLUMNS
from portone_recon.sandbox.scenario import (
    CAUSES,
    FINDING_KINDS,
    LABEL_COLUMNS,
    MATCH_KEY,
    Scenario,
    generate_merchant,
)

GRACE = 15 * 60


def _period(unix: int, anchor: int, interval: int = 1, base_mi: int = 0) -> int:
    """The billing period number of ``unix``: monthly periods start on the anchor day (clamped at month
    end, KST); ``interval``-month periods are counted from month index ``base_mi``."""
    start = period_start(datetime.fromtimestamp(unix, tz=KST), anchor)
    return (start.year * 12 + start.month - 1 - base_mi) // interval


def _period_start_date(p: int, anchor: int, interval: int, base_mi: int) -> date:
    mi = base_mi + p * interval
    return anchored_date(mi // 12, mi % 12 + 1, anchor)


PRECEDENCE = (
    "amount_mismatch",
    "charged_after_cancel",
    "phantom_paid",
    "missed_webhook",
    "refund_not_reflected",
    "unknown_payment",
    "duplicate_charge",
)


def _oracle(sc: Scenario) -> set[tuple[str, str]]:
    """(kind, match key) of every finding the rules of design.md §5 report at as_of (grace 15 min)."""
    w = sc.world
    as_of = int(sc.as_of.timestamp())
    orders = {r.merchant_uid: r for r in sc.orders.itertuples(index=False)}
    subs = {r.subscription_id: r for r in sc.subscriptions.itertuples(index=False)}
    subs_of: dict[str, list[str]] = defaultdict(list)  # customer_uid -> its subscriptions
    for sid, r in subs.items():
        subs_of[r.customer_uid].append(sid)

    def ts(v: Any) -> int | None:
        return None if pd.isna(v) else int(pd.Timestamp(v).timestamp())

    info: dict[str, dict[str, Any]] = {}
    for sid, r in subs.items():
        started = datetime.fromtimestamp(ts(r.started_at) or 0, tz=KST)
        ends = ts(r.cancelled_at)
        cancelled = (r.status == "cancelled" and (ends is None or ends <= as_of)) or (
            ends is not None and ends <= as_of
        )
        info[sid] = {
            "anchor": int(r.anchor_day),
            "iv": int(r.interval_months),
            "base": started.year * 12 + started.month - 1,
            "ends": ends,
            "cancelled": cancelled,
            "active": r.status != "paused" and not cancelled,
            "bill_from": ts(r.trial_ends_at) or ts(r.started_at) or 0,
            "started": ts(r.started_at) or 0,
        }

    def per(sid: str, unix: int) -> int:
        i = info[sid]
        return _period(unix, i["anchor"], i["iv"], i["base"])

    found: dict[tuple[str, str], str] = {}  # (kind, key) -> merchant_uid (for one finding per cause)

    def add(kind: str, key: str, mu: str | None = None) -> None:
        found[(kind, key)] = mu or ""

    pays = {i: p for i, p in w.payments.items() if p["customer_uid_usage"] != "issue" and not p["sandbox"]}
    reached = {i: p for i, p in pays.items() if p["paid_at"] and p["paid_at"] + GRACE <= as_of}
    for imp, p in reached.items():
        mu = p["merchant_uid"]
        order = orders.get(mu)
        net = p["amount"] - p["cancel_amount"]
        if order is None:
            add("unknown_payment", imp, mu)
        elif p["amount"] != order.amount or p["currency"] != "KRW":
            add("amount_mismatch", mu, mu)
        elif order.status == "cancelled" and net > 0:
            add("charged_after_cancel", mu, mu)
        elif p["status"] == "paid" and order.status in ("pending", "failed") and net > 0:
            add("missed_webhook", mu, mu)
    for mu, order in orders.items():
        attempts = [pays[i] for i in w.payment_ids_by_merchant_uid.get(mu, []) if i in pays]
        if order.status == "paid" and not any(a["paid_at"] for a in attempts):
            add("phantom_paid", mu, mu)
        if sum(a["cancel_amount"] for a in attempts) > order.refunded_amount:
            add("refund_not_reflected", mu, mu)

    def sub_of_schedule(s: dict[str, Any]) -> str | None:
        order = orders.get(s["merchant_uid"])
        if order is not None and isinstance(order.subscription_id, str):
            return str(order.subscription_id)
        mine = subs_of.get(s["customer_uid"], [])
        return mine[0] if len(mine) == 1 else None

    # charges of each subscription: its orders, its schedules, else an orderless payment of its price
    charges: dict[str, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    for p in reached.values():
        cu = p["customer_uid"]
        if not cu or p["cancel_amount"] >= p["amount"]:
            continue
        order = orders.get(p["merchant_uid"])
        priced = [sid for sid in subs_of.get(cu, []) if subs[sid].amount == p["amount"]]
        if order is not None and isinstance(order.subscription_id, str):
            charges[order.subscription_id].append((1, p))
        elif p["merchant_uid"] in w.schedules:
            sid = sub_of_schedule(w.schedules[p["merchant_uid"]])
            if sid is not None:
                charges[sid].append((2, p))
        elif order is None and len(priced) == 1:
            charges[priced[0]].append((4, p))
    scheds_of: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for s in w.schedules.values():
        sid = sub_of_schedule(s)
        if sid is not None:
            scheds_of[sid].append(s)
    for sid, sub in subs.items():
        cu = sub.customer_uid
        i = info[sid]
        scheds = scheds_of.get(sid, [])
        future = [s for s in scheds if s["schedule_status"] == "scheduled" and s["schedule_at"] > as_of]
        own = charges.get(sid, [])
        if i["active"]:
            for s in scheds:  # unpaid_renewal
                if s["schedule_at"] + GRACE > as_of or (i["ends"] and s["schedule_at"] >= i["ends"]):
                    continue
                failed = s["schedule_status"] == "executed" and s["payment_status"] == "failed"
                stuck = s["schedule_status"] == "scheduled"
                if not (failed or stuck):
                    continue
                sp = per(sid, s["schedule_at"])
                if not any(p["paid_at"] >= s["schedule_at"] and per(sid, p["paid_at"]) == sp for _, p in own):
                    add("unpaid_renewal", s["merchant_uid"])
            past = [s for s in scheds if s["schedule_at"] <= as_of and s["schedule_status"] != "revoked"]
            if past and not future:  # missing_next_schedule (inside grace: not yet)
                latest = max(past, key=lambda s: (s["schedule_at"], s["merchant_uid"]))
                nxt = _period_start_date(per(sid, latest["schedule_at"]) + 1, i["anchor"], i["iv"], i["base"])
                ends_day = datetime.fromtimestamp(i["ends"], tz=KST).date() if i["ends"] else None
                if (
                    latest["schedule_at"] + GRACE <= as_of
                    and latest["schedule_status"] == "executed"
                    and latest["payment_status"] in ("paid", "cancelled")
                    and (ends_day is None or nxt < ends_day)
                ):
                    add("missing_next_schedule", cu)
            ref = as_of - GRACE - 86_400
            if not scheds and i["bill_from"] <= ref and per(sid, ref) > per(sid, i["started"]):
                rp = per(sid, ref)  # chain_not_started
                if not any(per(sid, p["paid_at"]) >= rp for _, p in own):
                    add("chain_not_started", cu)
        groups: dict[Any, list[dict[str, Any]]] = defaultdict(list)  # duplicate_schedule
        for s in future:
            groups[per(sid, s["schedule_at"])].append(s)
        for group in groups.values():
            if len(group) > 1:
                group.sort(key=lambda s: (s["amount"] != sub.amount, s["schedule_at"], s["merchant_uid"]))
                for s in group[1:]:
                    add("duplicate_schedule", s["merchant_uid"])
        for s in future:
            after_end = i["ends"] is not None and s["schedule_at"] >= i["ends"]
            if i["cancelled"] or after_end or (cu in w.deleted_billing_keys and cu not in w.billing_keys):
                add("orphan_schedule", s["merchant_uid"])
            if s["amount"] != sub.amount:
                add("schedule_amount_mismatch", s["merchant_uid"])
        by_period: dict[int, list[tuple[int, dict[str, Any]]]] = defaultdict(list)  # duplicate_charge
        for rank, p in own:
            by_period[per(sid, p["paid_at"])].append((rank, p))
        for group in by_period.values():
            if len(group) > 1:
                group.sort(key=lambda rp: (rp[0], rp[1]["paid_at"], rp[1]["imp_uid"]))
                for _, p in group[1:]:
                    add("duplicate_charge", p["imp_uid"], p["merchant_uid"])
        if i["ends"] is not None and i["ends"] <= as_of:  # charged_after_cancel (subscription)
            for _, p in own:
                if p["paid_at"] >= i["ends"]:
                    add("charged_after_cancel", p["merchant_uid"], p["merchant_uid"])
    # one root cause, one finding: per merchant_uid the first kind of PRECEDENCE
    best: dict[str, int] = {}
    for (kind, _), mu in found.items():
        if mu and kind in PRECEDENCE:
            best[mu] = min(best.get(mu, 99), PRECEDENCE.index(kind))
    return {
        (kind, key)
        for (kind, key), mu in found.items()
        if not (mu and kind in PRECEDENCE and PRECEDENCE.index(kind) > best[mu])
    }


def _label_keys(sc: Scenario) -> set[tuple[str, str]]:
    return {(r.kind, getattr(r, MATCH_KEY[r.kind])) for r in sc.labels.itertuples(index=False)}


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return generate_merchant(400, 13, seed=7)


def test_frames_have_the_canonical_columns_and_types(scenario: Scenario) -> None:
    assert tuple(scenario.orders.columns) == ORDER_COLUMNS
    assert tuple(scenario.subscriptions.columns) == SUBSCRIPTION_COLUMNS
    assert tuple(scenario.labels.columns) == LABEL_COLUMNS
    o = scenario.orders
    assert str(o["amount"].dtype) == "int64" and str(o["refunded_amount"].dtype) == "int64"
    assert set(o["status"]) <= {"pending", "paid", "failed", "cancelled", "refunded"}
    assert str(o["paid_at"].dt.tz) == "Asia/Seoul"
    assert o["merchant_uid"].is_unique
    assert o.loc[o["status"] == "paid", "paid_at"].notna().all()
    assert o.loc[o["status"] == "pending", "paid_at"].isna().all()
    s = scenario.subscriptions
    assert str(s["started_at"].dt.tz) == "Asia/Seoul" and str(s["cancelled_at"].dt.tz) == "Asia/Seoul"
    assert ((s["status"] == "cancelled") == s["cancelled_at"].notna()).all()
    assert s["subscription_id"].is_unique and not s["customer_uid"].is_unique  # two plans on one card
    assert (s.loc[s["customer_uid"].duplicated(keep=False), "plan"] == "beans").any()
    assert set(s["interval_months"]) == {1, 3, 12}
    assert set(s["status"]) == {"active", "trialing", "paused", "cancelled"}
    assert (s.loc[s["status"] == "trialing", "trial_ends_at"] > scenario.as_of).all()
    # cancel at period end: some cancellations lie after as_of
    assert (s.loc[s["status"] == "cancelled", "cancelled_at"] > scenario.as_of).any()
    # subscription orders name their subscription, add-ons none (some of exactly the plan's price)
    addons = o[o["merchant_uid"].str.startswith("addon-")]
    assert addons["subscription_id"].isna().all() and len(addons) > 0
    assert o.loc[~o["merchant_uid"].str.startswith("addon-"), "subscription_id"].notna().all()
    price = s.set_index("customer_uid")["amount"]
    assert (addons["amount"].to_numpy() == price.loc[addons["customer_uid"]].to_numpy()).any()
    assert str(o["ordered_at"].dt.tz) == "Asia/Seoul" and o["ordered_at"].notna().all()
    assert o["merchant_uid"].str.fullmatch(r"[A-Za-z0-9_\-]{1,40}").all()


def test_labels_are_exactly_the_findings_of_the_rules(scenario: Scenario) -> None:
    expected = _oracle(scenario)
    labelled = _label_keys(scenario)
    assert labelled - expected == set(), "labelled but not a finding"
    assert expected - labelled == set(), "a finding nobody labelled"
    assert len(labelled) == len(scenario.labels), "duplicate label rows"


def test_every_kind_is_injected_with_its_knock_on_findings(scenario: Scenario) -> None:
    labels = scenario.labels
    counts = labels["kind"].value_counts()
    for kind in FINDING_KINDS:
        assert counts.get(kind, 0) >= 3, kind
    lost = labels[labels["cause"] == "webhook_lost"]
    assert sorted(lost["kind"].unique()) == ["missed_webhook", "missing_next_schedule"]
    phantom = labels[labels["cause"] == "failed_charge_marked_paid"]
    assert sorted(phantom["kind"].unique()) == ["phantom_paid", "unpaid_renewal"]
    # injected anomalies sit on distinct customers
    per_customer = labels.groupby("customer_uid")["cause"].nunique()
    assert (per_customer == 1).all()


def test_labels_match_the_world(scenario: Scenario) -> None:
    w = scenario.world
    orders = scenario.orders.set_index("merchant_uid")
    subs = scenario.subscriptions.set_index("customer_uid")
    as_of = int(scenario.as_of.timestamp())
    for r in scenario.labels.itertuples(index=False):
        if r.kind == "missed_webhook":
            p = w.payments[r.imp_uid]
            assert p["status"] == "paid" and p["merchant_uid"] == r.merchant_uid
            assert orders.loc[r.merchant_uid, "status"] != "paid"
        elif r.kind == "amount_mismatch":
            assert w.payments[r.imp_uid]["amount"] != orders.loc[r.merchant_uid, "amount"]
        elif r.kind == "orphan_schedule":
            s = w.schedules[r.schedule_merchant_uid]
            assert s["schedule_status"] == "scheduled" and s["schedule_at"] > as_of
            assert (
                subs.loc[r.customer_uid, "status"] == "cancelled" or r.customer_uid in w.deleted_billing_keys
            )
        elif r.kind == "unknown_payment":
            assert w.payments[r.imp_uid]["status"] == "paid" and r.merchant_uid not in orders.index
        elif r.kind == "refund_not_reflected":
            assert w.payments[r.imp_uid]["cancel_amount"] > orders.loc[r.merchant_uid, "refunded_amount"]
        elif r.kind == "duplicate_charge":
            assert w.payments[r.imp_uid]["status"] == "paid"
            assert orders.loc[r.merchant_uid, "status"] == "paid"


def test_inside_grace_execution_is_present_and_not_labelled(scenario: Scenario) -> None:
    g = scenario.params["inside_grace"]
    assert g is not None
    w = scenario.world
    s = w.schedules[g["merchant_uid"]]
    as_of = int(scenario.as_of.timestamp())
    assert s["payment_status"] == "paid" and as_of - GRACE < s["executed_at"] <= as_of
    hooks = [h for h in w.outbox if h.body["merchant_uid"] == g["merchant_uid"]]
    assert len(hooks) == 1 and hooks[0].dropped
    assert scenario.orders.set_index("merchant_uid").loc[g["merchant_uid"], "status"] == "pending"
    labels = scenario.labels
    assert g["customer_uid"] not in set(labels["customer_uid"])


def test_ordinary_declines_are_recovered_and_not_labelled(scenario: Scenario) -> None:
    w = scenario.world
    labelled = set(scenario.labels["customer_uid"])
    lapsed = set(scenario.params["lapsed"])  # dunning churn: every retry declined, then cancelled
    assert lapsed
    subs = scenario.subscriptions.set_index("customer_uid")
    assert (subs.loc[sorted(lapsed), "status"] == "cancelled").all()
    anchor = subs["anchor_day"].to_dict()
    failed = [
        p
        for p in w.payments.values()
        if p["status"] == "failed" and p["customer_uid"] not in labelled | lapsed
    ]
    assert len(failed) >= 20  # a few percent of ~4,000 renewals
    assert scenario.params["declines"] == len(failed)
    paid_by_cu: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for p in w.payments.values():
        if p["paid_at"]:
            paid_by_cu[p["customer_uid"]].append(p)
    for f in failed:
        assert f["fail_reason"] and f["fail_reason"][0] == "["
        per = _period(f["failed_at"], anchor[f["customer_uid"]])
        recovered = [
            p
            for p in paid_by_cu[f["customer_uid"]]
            if p["paid_at"] > f["failed_at"] and _period(p["paid_at"], anchor[f["customer_uid"]]) == per
        ]
        assert recovered, f"decline of {f['merchant_uid']} never recovered"
        assert recovered[0]["merchant_uid"].startswith(f["merchant_uid"].split("-r")[0] + "-r")
    retry_orders = scenario.orders[
        scenario.orders["merchant_uid"].str.contains("-r") & ~scenario.orders["customer_uid"].isin(lapsed)
    ]
    assert len(retry_orders) == len(failed)


def test_realism(scenario: Scenario) -> None:
    subs = scenario.subscriptions
    assert {29, 30, 31} <= set(subs["anchor_day"])
    monthly = {9_900, 14_900, 19_900, 29_900}
    # a quarter is three months less 5% (to 100 won), a year ten months; 990... are the changed prices
    allowed = monthly | {m * 3 * 95 // 100 // 100 * 100 for m in monthly} | {m * 10 for m in monthly}
    assert set(subs["amount"]) <= allowed | {6_900} | {990, 1_490, 1_990, 2_990}
    w = scenario.world
    names = {k["customer_name"] for k in w.billing_keys.values()}
    assert all("가" <= ch <= "힣" for name in names for ch in name)
    assert all(isinstance(p["amount"], int) for p in w.payments.values())
    assert all(
        "구독" in (p["name"] or "") or p["merchant_uid"].startswith("addon-") for p in w.payments.values()
    )
    # renewals run at 10:00 KST on the anchor day, clamped at month end
    for s in list(w.schedules.values())[:2000]:
        local = datetime.fromtimestamp(s["schedule_at"], tz=KST)
        if "-r" in s["merchant_uid"] or s["merchant_uid"] == scenario.params["inside_grace"]["merchant_uid"]:
            continue
        assert (local.hour, local.minute) == (10, 0)
        sub_id = scenario.orders.set_index("merchant_uid").loc[s["merchant_uid"], "subscription_id"]
        anchor = int(subs.set_index("subscription_id").loc[sub_id, "anchor_day"])
        assert local.day == min(anchor, pd.Timestamp(local.date()).days_in_month)
    # churned subscribers were unscheduled properly (no pending schedule, order cancelled)
    labelled = set(scenario.labels["customer_uid"])
    gone = subs[subs["status"].isin(["cancelled", "paused"]) & ~subs["customer_uid"].isin(labelled)]
    assert len(gone)
    sub_of = scenario.orders.set_index("merchant_uid")["subscription_id"]
    pending = {sub_of[s["merchant_uid"]] for s in w.schedules.values() if s["schedule_status"] == "scheduled"}
    assert not set(gone["subscription_id"]) & pending


def test_same_seed_same_everything_and_other_seed_differs() -> None:
    a = generate_merchant(120, 8, seed=3, anomalies={"missed_webhook": 2, "orphan_schedule": 2})
    b = generate_merchant(120, 8, seed=3, anomalies={"missed_webhook": 2, "orphan_schedule": 2})
    c = generate_merchant(120, 8, seed=4, anomalies={"missed_webhook": 2, "orphan_schedule": 2})
    sa, sb = json.dumps(a.world.snapshot(), sort_keys=True), json.dumps(b.world.snapshot(), sort_keys=True)
    assert sa == sb
    pd.testing.assert_frame_equal(a.orders, b.orders)
    pd.testing.assert_frame_equal(a.subscriptions, b.subscriptions)
    pd.testing.assert_frame_equal(a.labels, b.labels)
    assert json.dumps(c.world.snapshot(), sort_keys=True) != sa
    assert not a.orders.equals(c.orders)


def test_bulk_build_leaves_exactly_the_world_of_the_month_by_month_loop() -> None:
    kwargs: dict[str, Any] = {"subscribers": 150, "months": 9, "seed": 11}
    bulk = generate_merchant(**kwargs)
    loop = generate_merchant(**kwargs, _engine="world")
    assert bulk.world.snapshot() == loop.world.snapshot()
    pd.testing.assert_frame_equal(bulk.orders, loop.orders)
    pd.testing.assert_frame_equal(bulk.labels, loop.labels)
    # and the bulk-built world keeps running like any other: the next renewals execute
    w = bulk.world
    before = len(w.payments)
    w.advance(seconds=40 * 86_400)
    assert len(w.payments) > before


def test_anomaly_arguments_are_checked() -> None:
    with pytest.raises(SandboxError, match="unknown anomaly kind 'lost'"):
        generate_merchant(50, 6, anomalies={"lost": 1})
    with pytest.raises(SandboxError, match="not enough established subscribers"):
        generate_merchant(20, 6, anomalies={"missed_webhook": 50})
    with pytest.raises(SandboxError, match="naive"):
        generate_merchant(50, 6, end=datetime(2026, 1, 1))
    none = generate_merchant(60, 6, seed=2, anomalies={})
    assert none.labels.empty and tuple(none.labels.columns) == LABEL_COLUMNS
    assert _oracle(none) == set()


def test_write_and_summary(scenario: Scenario, tmp_path: Path) -> None:
    paths = scenario.write(tmp_path / "csv")
    back = pd.read_csv(paths["orders"])
    assert len(back) == len(scenario.orders) and back["amount"].dtype == "int64"
    ppaths = scenario.write(tmp_path / "pq", format="parquet")
    pq = pd.read_parquet(ppaths["orders"])
    assert str(pq["paid_at"].dt.tz) == "Asia/Seoul" and pq["amount"].dtype == "int64"
    assert set(pd.read_parquet(ppaths["labels"])["kind"]) == set(scenario.labels["kind"])
    with pytest.raises(SandboxError, match="format"):
        scenario.write(tmp_path, format="xlsx")  # type: ignore[arg-type]
    s = scenario.summary()
    assert s["subscribers"] == 400 and s["labels"] == len(scenario.labels)
    assert "\n" not in repr(scenario) and repr(scenario).startswith("Scenario(")
    assert "<table>" in scenario._repr_html_()
    json.dumps(scenario.to_dict())


def test_same_seed_same_world_across_processes() -> None:
    """Nothing depends on the interpreter's string-hash seed (sets are never iterated for output)."""
    code = (
        "import hashlib, orjson\n"
        "from portone_recon.sandbox.scenario import generate_merchant\n"
        "s = generate_merchant(120, 8, seed=9, anomalies={'duplicate_charge': 2, 'unpaid_renewal': 2})\n"
        "print(hashlib.sha256(orjson.dumps(s.world.snapshot(), option=orjson.OPT_SORT_KEYS)).hexdigest(),"
        " hashlib.sha256(s.orders.to_csv().encode()).hexdigest())\n"
    )
    outs = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        done = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        outs.add(done.stdout.strip())
    assert len(outs) == 1


def test_causes_are_known_and_progress_bar_runs() -> None:
    sc = generate_merchant(80, 7, seed=1, anomalies={"refund_not_reflected": 2}, progress=True)
    assert set(sc.labels["cause"]) == {"console_refund_partial", "console_refund_full"}
    assert set(sc.labels["cause"]) <= {c for causes in CAUSES.values() for c in causes}
    full = sc.labels[sc.labels["cause"] == "console_refund_full"].iloc[0]
    assert sc.world.payments[full["imp_uid"]]["status"] == "cancelled"
    assert sc.world.schedules[full["schedule_merchant_uid"]]["payment_status"] == "cancelled"


@pytest.mark.parametrize(
    ("kwargs"),
    [
        {"subscribers": 500, "months": 3, "seed": 2},
        {"subscribers": 600, "months": 13, "seed": 6, "end": datetime(2026, 3, 31, 10, 30, tzinfo=KST)},
        {
            "subscribers": 500,
            "months": 26,
            "seed": 4,
            "end": datetime(2026, 2, 28, 23, 0, tzinfo=KST),
            "decline_rate": 0.1,
        },
    ],
    ids=["3-months", "as-of-just-after-renewals", "month-end-high-declines"],
)
def test_labels_are_exactly_the_findings_for_other_shapes(kwargs: dict[str, Any]) -> None:
    sc = generate_merchant(**kwargs)
    assert _label_keys(sc) == _oracle(sc)
    assert sc.params["declines"] > 0
