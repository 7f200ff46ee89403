"""The V2 sync holds no lock on the store while it fetches, and shows its progress."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from v2_world import mixed_world

from portone_recon.api.v2 import PortOneV2Client
from portone_recon.config import Settings
from portone_recon.sandbox.v2_api import SandboxV2
from portone_recon.store import Store
from portone_recon.sync.v2 import sync_v2

#: Another process writes to the store (waiting at most 3 s for it) and prints "ok".
_WRITER = """
import sys
from portone_recon.store import Store
with Store(sys.argv[1], lock_timeout=3).transaction() as con:
    con.execute("INSERT INTO sync_state (stream, last_error) VALUES ('probe', 'x') "
                "ON CONFLICT (stream) DO UPDATE SET last_error = 'y'")
print("ok")
"""


class _ProbingTransport(httpx.BaseTransport):
    """Serves the sandbox; while answering listing requests, lets another process write to the store."""

    def __init__(self, inner: httpx.BaseTransport, db: Path) -> None:
        self.inner = inner
        self.db = db
        self.probes: list[tuple[str, int, str]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path in ("/payments", "/payment-schedules") and len(self.probes) < 4:
            done = subprocess.run(
                [sys.executable, "-c", _WRITER, str(self.db)], capture_output=True, text=True, timeout=60
            )
            self.probes.append((path, done.returncode, done.stdout.strip() or done.stderr[-300:]))
        return self.inner.handle_request(request)


def _now(v2: SandboxV2) -> datetime:
    return datetime.fromtimestamp(v2.world.now, UTC)


def test_another_process_writes_to_the_store_while_the_v2_sync_fetches(tmp_path: Path) -> None:
    _, v2 = mixed_world(v2_only=True)
    db = tmp_path / "v2.duckdb"
    store = Store(db)
    store.migrate()
    transport = _ProbingTransport(v2.transport(), db)
    settings = Settings(api_secret="sandbox_v2_secret", v2_api_base="https://v2.invalid", concurrency=1)
    with PortOneV2Client(settings, transport=transport, sleep=lambda s: None) as c:
        report = sync_v2(c, store, now=_now(v2), lookback=timedelta(days=200), progress=False)
    assert len(transport.probes) == 4
    assert {p for p, _, _ in transport.probes} == {"/payments", "/payment-schedules"}
    assert all(code == 0 and out == "ok" for _, code, out in transport.probes), transport.probes
    assert report.tables["payments"].new == len(v2.world.payments)
    assert store.query("SELECT last_error FROM sync_state WHERE stream = 'probe'")["last_error"][0] == "y"


def test_the_v2_sync_shows_its_progress(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, v2 = mixed_world(v2_only=True)
    settings = Settings(api_secret="sandbox_v2_secret", v2_api_base="https://v2.invalid")
    with PortOneV2Client(settings, transport=v2.transport(), sleep=lambda s: None) as c:
        sync_v2(c, Store(tmp_path / "p.duckdb"), now=_now(v2), lookback=timedelta(days=200), progress=True)
    err = capsys.readouterr().err
    assert "sync v2:" in err and "items" in err
    with PortOneV2Client(settings, transport=v2.transport(), sleep=lambda s: None) as c:
        sync_v2(c, Store(tmp_path / "q.duckdb"), now=_now(v2), lookback=timedelta(days=200), progress=False)
    assert capsys.readouterr().err == ""
