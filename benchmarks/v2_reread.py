"""Cost of the V2 weekly re-read of refundable payments (``v2:refundable``) beside V1's (``payments:refundable``).

One generated merchant is synced through V1 and through V2 (in process, no sockets), then the periodic
pass of each is run once: V1 looks up 100 imp_uids per call, V2 has no batch form and reads each payment
by id (``concurrency`` in flight). Reported per API: payments re-read, API calls, wall and CPU seconds of
the pass, and the network floor at a given latency (``calls * latency / concurrency``), which is what the
pass costs against the live API.

Usage:
  python benchmarks/v2_reread.py --payments 1e4 [--latency-ms 50] [--concurrency 4] [--json OUT]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import cpu_s, load_average, print_table, write_json
from _sandbox import subscribers_for


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--payments", type=float, default=1e4)
    p.add_argument("--months", type=int, default=13)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--latency-ms", type=float, default=50.0)
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--json")
    args = p.parse_args()

    from portone_recon.api import PortOneClient
    from portone_recon.api.v2 import PortOneV2Client
    from portone_recon.config import Settings
    from portone_recon.sandbox.scenario import generate_merchant
    from portone_recon.sandbox.v2_api import SandboxV2
    from portone_recon.store import Store
    from portone_recon.sync import sync
    from portone_recon.sync.v2 import sync_v2

    sc = generate_merchant(subscribers_for(int(args.payments), args.months), args.months, seed=args.seed)
    w = sc.world
    now = datetime.fromtimestamp(w.now, UTC)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        v1_store, v2_store = Store(Path(tmp) / "v1.duckdb"), Store(Path(tmp) / "v2.duckdb")
        settings = Settings(imp_key=w.imp_key, imp_secret=w.imp_secret, concurrency=args.concurrency)
        with PortOneClient(settings, transport=w.transport(), sleep=lambda s: None) as c:
            sync(c, v1_store, progress=False)
            wall, cpu = time.perf_counter(), cpu_s()
            report = sync(c, v1_store, progress=False, full=True)
            wall, cpu = time.perf_counter() - wall, cpu_s() - cpu
        s = next(x for x in report.streams if x.stream == "payments:refundable")
        rows.append(_row("v1 payments:refundable", s, wall, cpu, args))
        surface = SandboxV2(w)
        v2_settings = Settings(
            api_secret="sandbox_v2_secret", v2_api_base="https://v2.invalid", concurrency=args.concurrency
        )
        with PortOneV2Client(v2_settings, transport=surface.transport(), sleep=lambda s: None) as c:
            sync_v2(c, v2_store, now=now)
            wall, cpu = time.perf_counter(), cpu_s()
            report = sync_v2(c, v2_store, now=now, full=True)
            wall, cpu = time.perf_counter() - wall, cpu_s() - cpu
        s = next(x for x in report.streams if x.stream == "v2:refundable")
        rows.append(_row("v2 v2:refundable", s, wall, cpu, args))
        stored = int(v2_store.query("SELECT count(*) AS n FROM payments")["n"][0])
    print(f"payments in the store: {stored:,}; load average {load_average():.1f}")
    print_table(rows, ["pass", "re_read", "api_calls", "sync_wall_s", "sync_cpu_s", "floor_s"])
    write_json(args.json, {"args": vars(args), "rows": rows})


def _row(name: str, s: Any, wall: float, cpu: float, args: argparse.Namespace) -> dict[str, Any]:
    """One pass: payments re-read (from its note), calls, the whole incremental sync's wall/CPU, the floor."""
    return {
        "pass": name,
        "re_read": s.note,
        "api_calls": s.api_calls,
        "sync_wall_s": round(wall, 2),
        "sync_cpu_s": round(cpu, 2),
        "floor_s": round(s.api_calls * args.latency_ms / 1000 / max(1, args.concurrency), 1),
    }


if __name__ == "__main__":
    main()
