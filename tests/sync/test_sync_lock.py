"""A full sync does not hold the store while it fetches: another process opens the store and reads it
within a few seconds at any point of the run (a ``portone-recon sync`` subprocess against ``sandbox
serve`` with a generated merchant and a per-request latency)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from portone_recon.api.client import PortOneClient
from portone_recon.errors import StoreLockedError
from portone_recon.sandbox.process import serve_in_subprocess
from portone_recon.store import Store
from portone_recon.sync import sync

pytestmark = pytest.mark.slow

#: How long a reader may wait for the store while a sync runs (one stream's merge and commit).
MAX_WAIT_S = 5.0

#: A second process: open the store read-only (waiting up to 60 s), read it, print the wait.
_PROBE = """
import sys, time
from portone_recon.store import Store
store = Store(sys.argv[1], lock_timeout=60)
t0 = time.monotonic()
with store.connect(read_only=True) as con:
    waited = time.monotonic() - t0
    con.execute("SELECT count(*) FROM payments").fetchone()
print(f"{waited:.3f}")
"""


@pytest.fixture(scope="module")
def server() -> Iterator[dict[str, Any]]:
    with serve_in_subprocess("--subscribers", "1500", "--months", "13", "--seed", "5") as info:
        yield info


def _env(info: dict[str, Any]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTONE_")}
    env.update(
        PORTONE_IMP_KEY=info["imp_key"],
        PORTONE_IMP_SECRET=info["imp_secret"],
        PORTONE_API_BASE=info["base_url"],
    )
    return env


def _faults(base: str, spec: dict[str, Any]) -> None:
    httpx.post(f"{base}/__sandbox/faults", json=spec).raise_for_status()


def _requests_seen(base: str) -> int:
    return len(httpx.get(f"{base}/__sandbox/requests").json()["response"])


def _probe(db: Path) -> float:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(db)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return float(done.stdout.strip())


def test_a_reader_gets_in_while_a_full_sync_fetches(server: dict[str, Any], tmp_path: Path) -> None:
    base = server["base_url"]
    db = tmp_path / "store.duckdb"
    Store(db).migrate()  # the file exists before the sync starts, as a cron host's store does
    httpx.delete(f"{base}/__sandbox/requests").raise_for_status()
    # Every answer takes 500 ms: the run is network-bound for many seconds, as a large merchant's is.
    _faults(base, {"clear": True, "latency": {"GET *": 0.5}})
    sync = subprocess.Popen(
        [sys.executable, "-m", "portone_recon", "sync", "--db", str(db), "--quiet"],
        env=_env(server),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    waits: list[float] = []
    try:
        deadline = time.monotonic() + 30
        while _requests_seen(base) < 3 and sync.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        while sync.poll() is None:
            waits.append(_probe(db))
            time.sleep(0.2)
        _, err = sync.communicate(timeout=300)
    finally:
        if sync.poll() is None:
            sync.kill()
            sync.wait()
        _faults(base, {"clear": True})
    assert sync.returncode == 0, err
    # Readers came in throughout the run (not only after it), each within seconds.
    assert len(waits) >= 4, waits
    assert max(waits) < MAX_WAIT_S, waits
    counts = Store(db).counts()
    assert counts["payments"] > 10_000
    assert counts["schedules"] > 0
    assert counts["billing_keys"] > 0


def test_a_sync_parked_in_a_fetch_holds_no_lock(server: dict[str, Any], tmp_path: Path) -> None:
    """The sync waits (429 + Retry-After) in the middle of its payment listing: the store is free."""
    base = server["base_url"]
    db = tmp_path / "parked.duckdb"
    httpx.delete(f"{base}/__sandbox/requests").raise_for_status()
    hold = {"route": "*", "sequence": [None] * 6 + [429] * 1000, "retry_after": 120}
    _faults(base, {"clear": True, "errors": [hold]})
    sync = subprocess.Popen(
        [sys.executable, "-m", "portone_recon", "sync", "--db", str(db), "--quiet"],
        env=_env(server),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while _requests_seen(base) <= 6 and time.monotonic() < deadline:
            assert sync.poll() is None, "the sync ended before it was parked"
            time.sleep(0.02)
        assert _requests_seen(base) > 6, "the sync never reached its 7th request"
        waited = _probe(db)
        assert sync.poll() is None  # still parked in its retry wait
        assert waited < MAX_WAIT_S
        with Store(db, lock_timeout=MAX_WAIT_S).transaction() as con:  # and a writer gets in too
            con.execute("SELECT count(*) FROM sync_state").fetchone()
    finally:
        sync.kill()
        sync.wait()
        _faults(base, {"clear": True})


def test_a_store_held_by_another_writer_is_named(server: dict[str, Any], tmp_path: Path) -> None:
    """The sync waits ``lock_timeout`` for the store, then names the process that holds it."""
    db = tmp_path / "held.duckdb"
    store = Store(db, lock_timeout=0.5)
    store.migrate()
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(db)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        client = PortOneClient(
            imp_key=server["imp_key"], imp_secret=server["imp_secret"], api_base=server["base_url"]
        )
        with client, pytest.raises(StoreLockedError) as info:
            sync(client, store, progress=False)
        assert info.value.pid == holder.pid
    finally:
        holder.kill()
        holder.wait()
    assert Store(db).counts()["payments"] == 0


#: Holds the store read-write until killed.
_HOLD = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])
print("ready", flush=True)
sys.stdin.readline()
"""
