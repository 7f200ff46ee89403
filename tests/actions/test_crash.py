"""Crash safety across processes: ``sandbox serve`` in one process, applies killed with SIGKILL in others."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from portone_recon.actions import apply, journal_frame, plan_fixes, record_plan
from portone_recon.api.client import PortOneClient
from portone_recon.errors import ApplyInProgressError
from portone_recon.store import Store

from .conftest import AS_OF, SUBSCRIPTIONS, build_merchant, findings, load_local, load_subs, store_run, writes

pytestmark = pytest.mark.slow

WORKER = textwrap.dedent(
    """
    import os, signal, sys, time
    from datetime import datetime
    from pathlib import Path
    from portone_recon.actions import FixPlan, apply
    from portone_recon.api.client import PortOneClient
    from portone_recon.store import Store

    base, key, secret, db, plan_path, now, mode, point, kinds = sys.argv[1:10]
    targets = set(kinds.split(","))

    def hook(where, action):
        if where != point or action.kind not in targets:
            return
        if mode == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if mode == "hold":  # keep the apply lock until told to go on
            Path(db + ".holding").write_text(str(os.getpid()))
            while not Path(db + ".release").exists():
                time.sleep(0.05)

    client = PortOneClient(imp_key=key, imp_secret=secret, api_base=base, sleep=lambda s: None)
    clock = lambda: datetime.fromisoformat(now)  # the sandbox's time, not the wall clock
    report = apply(
        FixPlan.load(plan_path), client, Store(db), dry_run=False, progress=False, hook=hook, clock=clock
    )
    print(repr(report))
    """
)


@pytest.fixture
def merchant(served: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    base = served["base_url"]
    client = PortOneClient(
        imp_key=served["imp_key"], imp_secret=served["imp_secret"], api_base=base, sleep=lambda s: None
    )

    def advance(to: Any) -> None:
        httpx.post(f"{base}/__sandbox/advance", json={"to": to.isoformat()}).raise_for_status()

    ids = build_merchant(client, advance)
    store = Store(tmp_path / "crash.duckdb", lock_timeout=5.0)
    store.migrate()
    load_local(store)
    load_subs(store)
    plan = record_plan(
        store, plan_fixes(store_run(store, findings(ids)), subscriptions=SUBSCRIPTIONS), now=AS_OF
    )
    plan_path = tmp_path / "plan.json"
    plan.save(plan_path)
    script = tmp_path / "worker.py"
    script.write_text(WORKER, encoding="utf-8")
    httpx.delete(f"{base}/__sandbox/requests").raise_for_status()
    return {
        **served,
        "client": client,
        "store": store,
        "plan": plan,
        "plan_path": plan_path,
        "script": script,
    }


def run_worker(m: dict[str, Any], mode: str, point: str, kinds: str) -> subprocess.Popen[str]:
    args = [
        m["base_url"],
        m["imp_key"],
        m["imp_secret"],
        str(m["store"].path),
        str(m["plan_path"]),
        AS_OF.isoformat(),
    ]
    return subprocess.Popen(
        [sys.executable, str(m["script"]), *args, mode, point, kinds],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def sandbox(m: dict[str, Any], what: str) -> Any:
    r = httpx.get(f"{m['base_url']}/__sandbox/{what}")
    r.raise_for_status()
    return r.json()["response"]


def journal_states(store: Store) -> dict[str, str]:
    j = journal_frame(store)
    return {
        f"{k}:{json.loads(t).get('schedule_merchant_uid') or json.loads(t).get('merchant_uid')}": s
        for k, t, s in zip(j["kind"], j["target"], j["status"], strict=True)
    }


# Each step kills the apply at one point; the next run must resolve what the previous one left.
STEPS = [
    ("before_send", "unschedule"),  # journal 'sending', nothing sent
    ("after_send", "unschedule"),  # PortOne revoked it, journal still 'sending'
    ("before_send", "retry"),
    ("after_send", "retry"),  # PortOne charged the card, journal still 'sending'
    ("after_send", "rebook"),  # PortOne booked it, journal still 'sending'
    ("after_journal", "rebook"),  # journaled, then killed
]


def test_sigkill_at_each_point_then_rerun_resolves_by_reading(merchant: dict[str, Any]) -> None:
    store: Store = merchant["store"]
    history: list[tuple[str, dict[str, str]]] = []
    for point, kind in STEPS:
        proc = run_worker(merchant, "kill", point, kind)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == -signal.SIGKILL, f"{point}/{kind} was not killed: {out}\n{err}"
        history.append((f"killed {point} {kind}", journal_states(store)))
    # What the journal showed after each kill (printed for the report with -s).
    for label, states in history:
        print(label, json.dumps(states, sort_keys=True))
    assert history[0][1]["unschedule:sub-cus_c-202612-x"] == "sending"
    assert history[1][1]["unschedule:sub-cus_c-202612-x"] == "sending"
    assert history[3][1]["retry:sub-cus_b-202611"] == "sending"
    assert history[4][1]["retry:sub-cus_b-202611"] == "succeeded"  # resolved by reading, not re-sent
    assert history[4][1]["rebook:rebook-cus_a-202612"] == "sending"
    assert history[5][1]["rebook:rebook-cus_a-202612"] == "succeeded"

    final = apply(merchant["plan"], merchant["client"], store, dry_run=False, progress=False)
    states = journal_states(store)
    print("final", json.dumps(states, sort_keys=True))
    assert set(states.values()) <= {"succeeded", "failed", "skipped"}
    assert states["reverify:sub-cus_e-202611"] == "failed"  # the amount mismatch
    assert {s for k, s in states.items() if k != "reverify:sub-cus_e-202611"} == {"succeeded"}
    assert final.pending == 1  # only the refused mismatch remains for a person

    w = Counter(writes(sandbox(merchant, "requests")))
    print("writes", dict(w))
    assert w["POST /subscribe/payments/schedule/sub-cus_b-202611/retry"] == 1  # no second charge
    assert w["POST /subscribe/payments/schedule"] == 2  # one per rebook, no duplicate
    assert w["POST /subscribe/payments/unschedule"] == 2  # cus_c (sent once, after the first kill) and cus_d
    client = merchant["client"]
    attempts = list(client.iter_payments_by_merchant_uid("sub-cus_b-202611"))
    assert sorted(p.status for p in attempts) == ["failed", "paid"]
    assert client.fetch_schedule("rebook-cus_a-202612").schedule_status == "scheduled"
    assert client.fetch_schedule("rebook-cus_b-202612").schedule_status == "scheduled"
    dec = list(client.iter_customer_schedules("cus_a", AS_OF, AS_OF.replace(year=2027, month=1)))
    assert len([s for s in dec if s.schedule_status == "scheduled"]) == 1  # no duplicate schedule
    orders = store.query("SELECT merchant_uid, status FROM orders")
    got = dict(zip(orders["merchant_uid"], orders["status"], strict=True))
    assert got["sub-cus_a-202611"] == "paid" and got["sub-cus_b-202611"] == "paid"


def test_two_concurrent_applies_one_fails_at_once_naming_the_holder(merchant: dict[str, Any]) -> None:
    store: Store = merchant["store"]
    holder = run_worker(merchant, "hold", "before_send", "unschedule")
    holding = Path(str(store.path) + ".holding")
    try:
        for _ in range(1200):  # wait (up to 60 s) for the worker to take the lock
            if holding.exists() or holder.poll() is not None:
                break
            import time

            time.sleep(0.05)
        assert holding.exists(), holder.stderr.read() if holder.stderr else ""
        with pytest.raises(ApplyInProgressError) as err:
            apply(merchant["plan"], merchant["client"], store, dry_run=False, progress=False)
        assert f"pid {holder.pid}" in str(err.value)
        assert "apply.lock" in str(err.value)
    finally:
        Path(str(store.path) + ".release").write_text("go")
        out, errout = holder.communicate(timeout=120)
    assert holder.returncode == 0, errout
    assert "ApplyReport(applied" in out
    # the holder did all the work once; the refused apply sent nothing
    w = Counter(writes(sandbox(merchant, "requests")))
    assert w["POST /subscribe/payments/schedule/sub-cus_b-202611/retry"] == 1
    assert w["POST /subscribe/payments/schedule"] == 2
    assert os.path.exists(str(store.path) + ".apply.lock")
