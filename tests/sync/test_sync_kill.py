"""A ``portone-recon sync`` killed with SIGKILL at several points, then rerun, ends with the same tables
as an uninterrupted sync (a subprocess against ``portone-recon sandbox serve``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from portone_recon._time import KST
from portone_recon.api.client import PortOneClient
from portone_recon.sandbox.process import serve_in_subprocess
from portone_recon.store import Store

from ._world import snapshot, unix

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server() -> Iterator[dict[str, Any]]:
    with serve_in_subprocess("--seed", "3", "--start", "2025-01-01T09:00:00+09:00") as info:
        _populate(info)
        yield info


def _populate(info: dict[str, Any]) -> None:
    """40 subscribers, 8 months of monthly schedules, refunds, add-ons and a deleted key, over HTTP."""
    base = info["base_url"]
    with PortOneClient(imp_key=info["imp_key"], imp_secret=info["imp_secret"], api_base=base) as client:
        for i in range(40):
            cu = f"cust_{i:03d}"
            client.issue_billing_key(cu, card_number="4242-4242-4242-4242", expiry="2030-12", birth="900101")
            client.create_schedules(
                cu,
                [
                    {
                        "merchant_uid": f"sub_{cu}_{m:02d}",
                        "schedule_at": unix(datetime(2025, 1 + m, 5, 10, 0, tzinfo=KST)) + i * 60,
                        "amount": 8900,
                        "name": "월간 구독",
                    }
                    for m in range(8)
                ],
            )
        httpx.post(f"{base}/__sandbox/advance", json={"to": "2025-05-20T12:00:00+09:00"}).raise_for_status()
        paid = sorted(
            p.imp_uid
            for p in client.iter_payments_by_status(
                "paid", datetime(2025, 1, 1, tzinfo=KST), datetime(2025, 5, 21, tzinfo=KST)
            )
        )
        client.cancel_payment(imp_uid=paid[0], amount=2000, reason="부분 환불")
        client.cancel_payment(imp_uid=paid[1], full=True, reason="전액 환불")
        client.pay_again(customer_uid="cust_000", merchant_uid="addon_1", amount=3300, name="추가 구매")
        client.unschedule(customer_uid="cust_003")
        client.delete_billing_key("cust_003")


def _env(info: dict[str, Any]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTONE_")}
    env.update(
        PORTONE_IMP_KEY=info["imp_key"],
        PORTONE_IMP_SECRET=info["imp_secret"],
        PORTONE_API_BASE=info["base_url"],
    )
    return env


def _sync_cmd(db: Path) -> list[str]:
    return [sys.executable, "-m", "portone_recon", "sync", "--db", str(db), "--quiet"]


def _requests_seen(base: str) -> int:
    return len(httpx.get(f"{base}/__sandbox/requests").json()["response"])


def _kill_after(
    info: dict[str, Any], db: Path, *, requests: int | None = None, seconds: float | None = None
) -> int | None:
    """Start a sync and SIGKILL it after the server answered ``requests`` requests, or after ``seconds``.

    With ``requests``, the server answers the first ``requests`` requests normally and every later one
    with 429 + ``Retry-After: 120``: the sync is then parked in its retry wait, right after request k,
    until it is killed. The kill point no longer races the sync's own progress (on a loaded machine a
    poll could come too late and find the sync finished), and it is the same point on every run.
    """
    base = info["base_url"]
    httpx.delete(f"{base}/__sandbox/requests").raise_for_status()
    if requests is not None:
        hold = {"route": "*", "sequence": [None] * requests + [429] * 1000, "retry_after": 120}
        _faults(base, {"clear": True, "latency": {"GET *": 0.01}, "errors": [hold]})
    proc = subprocess.Popen(_sync_cmd(db), env=_env(info), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + (seconds if seconds is not None else 240.0)
        while proc.poll() is None and time.monotonic() < deadline:
            if requests is not None and _requests_seen(base) > requests:
                break  # request k+1 arrived (and was held): the sync is waiting to retry it
            time.sleep(0.005)
        if requests is not None:
            assert _requests_seen(base) > requests, f"the sync never sent request {requests + 1}"
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if requests is not None:
            _faults(base, {"clear": True, "latency": {"GET *": 0.01}})
    return proc.returncode


def _faults(base: str, spec: dict[str, Any]) -> None:
    httpx.post(f"{base}/__sandbox/faults", json=spec).raise_for_status()


def _comparable(db: Path) -> dict[str, Any]:
    return snapshot(Store(db, lock_timeout=10))


def test_killed_syncs_converge_to_the_uninterrupted_result(server: dict[str, Any], tmp_path: Path) -> None:
    ref = tmp_path / "ref.duckdb"
    started = time.monotonic()
    done = subprocess.run(_sync_cmd(ref), env=_env(server), capture_output=True, text=True, timeout=300)
    duration = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    expected = _comparable(ref)
    assert len(expected["payments"]) > 150
    assert expected["payment_cancellations"]
    # Slow every API answer down so kills land inside streams, not only between them.
    _faults(server["base_url"], {"latency": {"GET *": 0.01}})
    dbs: list[Path] = []
    try:
        # Fresh stores killed after the server saw k requests (a fresh sync sends 30+): inside the
        # payment streams, between streams, inside the schedule windows.
        for k in (3, 12, 24):
            db = tmp_path / f"killed_{k}.duckdb"
            dbs.append(db)
            assert _kill_after(server, db, requests=k) == -signal.SIGKILL
        # One store killed twice late in the run (ingest and commit phases), cumulatively.
        db = tmp_path / "killed_late.duckdb"
        dbs.append(db)
        for fraction in (0.8, 0.95):
            _kill_after(server, db, seconds=duration * fraction)
    finally:
        _faults(server["base_url"], {"clear": True})
    for db in dbs:
        final = subprocess.run(_sync_cmd(db), env=_env(server), capture_output=True, text=True, timeout=300)
        assert final.returncode == 0, final.stderr
        got = _comparable(db)
        for table in expected:
            diff = set(got[table]) ^ set(expected[table])
            assert not diff, (db.name, table, [str(r) for r in sorted(diff, key=str)[:6]])


def test_cli_sync_prints_a_summary_and_needs_credentials(server: dict[str, Any], tmp_path: Path) -> None:
    db = tmp_path / "cli.duckdb"
    done = subprocess.run(
        [sys.executable, "-m", "portone_recon", "sync", "--db", str(db)],
        env=_env(server),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("SyncReport(payments +")
    assert server["imp_secret"] not in done.stdout + done.stderr
    env = {k: v for k, v in _env(server).items() if k != "PORTONE_IMP_SECRET"}
    missing = subprocess.run(_sync_cmd(db), env=env, capture_output=True, text=True, timeout=300)
    assert missing.returncode == 2
    assert "PORTONE_IMP_SECRET" in missing.stderr
