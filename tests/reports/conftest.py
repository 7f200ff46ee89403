"""Report fixtures: one seeded store and one run of every report per session (kernel start is ~3 s).

The session runs every report with a canary API secret in the environment, against a sandbox
scenario served on 127.0.0.1 that accepts exactly that secret, so the canary is really used (token
request) and then searched for in every produced file.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import shutil
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from portone_recon.api import PortOneClient
from portone_recon.errors import ReportError
from portone_recon.orders import load_orders, load_subscriptions
from portone_recon.reconcile import reconcile
from portone_recon.reports import commands as report_commands
from portone_recon.reports import run_report
from portone_recon.sandbox.scenario import generate_merchant
from portone_recon.sandbox.server import SandboxServer
from portone_recon.store import Store
from portone_recon.sync import sync

sys.path.insert(0, str(Path(__file__).parent))
from _reports_seed import AS_OF, CANARY_KEY, CANARY_SECRET, ReportRun, seed_store


def _cli(argv: list[str]) -> tuple[int, str]:
    """Run the ``report`` command through its own parser; returns (exit code, stdout)."""
    parser = argparse.ArgumentParser()
    report_commands.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = int(args.func(args))
    return code, buf.getvalue()


def _failing(empty_db: Path, out: Path) -> ReportError | None:
    try:
        run_report("daily", {"db": str(empty_db), "as_of": "2026-11-27", "reconcile": False}, out)
    except ReportError as exc:
        return exc
    return None


def make_seeded_store(path: Path) -> Store:
    store = Store(path, lock_timeout=10.0)
    store.migrate()
    seed_store(store)
    return store


@pytest.fixture
def seeded(tmp_path: Path) -> Store:
    """A fresh store with the hand-written rows of seed.py."""
    return make_seeded_store(tmp_path / "seeded.duckdb")


def _scenario_store(path: Path) -> tuple[Store, Any]:
    """A small sandbox merchant synced into ``path``, with one earlier reconciliation run as history."""
    scenario = generate_merchant(subscribers=80, months=4, seed=11)
    # the canary is the world's API secret: the kernel's client must really use it (test-only wiring)
    scenario.world.imp_key = CANARY_KEY
    scenario.world._imp_secret = CANARY_SECRET
    store = Store(path, lock_timeout=30.0)
    store.migrate()
    client = PortOneClient(
        imp_key=CANARY_KEY,
        imp_secret=CANARY_SECRET,
        api_base="https://api.iamport.kr",
        transport=scenario.world.transport(),
        sleep=lambda _s: None,
    )
    sync(client, store, progress=False)
    client.close()
    load_orders(store, scenario.orders, source_name="scenario-orders", progress=False)
    load_subscriptions(store, scenario.subscriptions, source_name="scenario-subscriptions", progress=False)
    reconcile(store, as_of=scenario.as_of - timedelta(days=1), progress=False)
    return store, scenario


@pytest.fixture(scope="session")
def report_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReportRun]:
    """Every report, run once per session side by side (one store copy each, so no lock waits).

    daily/monthly/fixup run against a small sandbox scenario served on 127.0.0.1 with the canary
    secret; the CLI run (exact numbers) uses the hand-written store of seed.py.
    """
    root = tmp_path_factory.mktemp("report_run")
    db = root / "scenario.duckdb"
    _, scenario = _scenario_store(db)
    copies = {name: root / f"{name}.duckdb" for name in ("daily", "monthly", "fixup")}
    for copy in copies.values():
        shutil.copyfile(db, copy)
    seeded_db = root / "seeded.duckdb"
    make_seeded_store(seeded_db)
    out = root / "out"
    server = SandboxServer(scenario.world)
    server.start_background()
    tokens: list[str] = []
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("PORTONE_IMP_KEY", CANARY_KEY)
            mp.setenv("PORTONE_IMP_SECRET", CANARY_SECRET)
            mp.setenv("PORTONE_API_BASE", server.base_url)
            as_of = scenario.as_of.isoformat()
            params = {
                "daily": {"db": str(copies["daily"]), "as_of": as_of, "sync": True, "grace": "15min"},
                "monthly": {"db": str(copies["monthly"]), "as_of": as_of, "month": "2026-10"},
                "fixup": {"db": str(copies["fixup"]), "as_of": as_of, "apply": True, "max_amount": 10_000},
            }
            empty = Store(root / "empty.duckdb")
            empty.migrate()
            cli_out = root / "cli_out"
            cli_argv = ["report", "daily", "--no-reconcile", "--db", str(seeded_db), "--out", str(cli_out)]
            cli_argv += ["--as-of", AS_OF.isoformat(), "--fail-on", "critical"]
            with ThreadPoolExecutor(max_workers=5) as pool:
                futures = {name: pool.submit(run_report, name, p, out) for name, p in params.items()}
                cli_future = pool.submit(_cli, cli_argv)
                failure_future = pool.submit(_failing, empty.path, root / "failing")
                results = {name: f.result() for name, f in futures.items()}
                cli_code, cli_stdout = cli_future.result()
                failure = failure_future.result()
            token = scenario.world._token  # the access token the sandbox handed out: must not leak either
            if token:
                tokens.append(token)
        yield ReportRun(
            root=root,
            db=db,
            out=out,
            results=results,
            tokens=tuple(tokens),
            cli_code=cli_code,
            cli_stdout=cli_stdout,
            cli_out=cli_out,
            failure=failure,
            labels=scenario.labels,
        )
    finally:
        server.stop()
