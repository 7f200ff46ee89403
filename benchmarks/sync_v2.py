"""V2 sync vs V1 sync of the same generated merchant: wall, CPU, peak RSS, API calls.

Both read one world in process (the sandbox's in-process transports, no sockets): V1 through
``PortOneClient`` + ``sync``, V2 through ``PortOneV2Client`` + ``sync_v2`` over ``SandboxV2``. Each API runs
in its own child process (``--only v1|v2``) so that peak RSS is that sync's own. The sandbox's cost of
answering is inside both figures (it renders V2 objects from the V1 world, which V1 does not have to).

Usage:
  python benchmarks/sync_v2.py --payments 1e5 [--json OUT]
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

from _common import cpu_s, peak_rss_mib, print_table, run_child, write_json
from _sandbox import subscribers_for


def _one(api: str, payments: int, months: int, seed: int) -> dict[str, Any]:
    from portone_recon.api import PortOneClient
    from portone_recon.api.v2 import PortOneV2Client
    from portone_recon.config import Settings
    from portone_recon.sandbox.scenario import generate_merchant
    from portone_recon.sandbox.v2_api import SandboxV2
    from portone_recon.store import Store
    from portone_recon.sync import sync
    from portone_recon.sync.v2 import sync_v2

    sc = generate_merchant(subscribers_for(payments, months), months, seed=seed)
    w = sc.world
    rss_before = peak_rss_mib()
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "bench.duckdb")
        store.migrate()
        wall, cpu = time.perf_counter(), cpu_s()
        if api == "v1":
            with PortOneClient(
                imp_key=w.imp_key, imp_secret=w.imp_secret, transport=w.transport(), sleep=lambda s: None
            ) as c:
                report = sync(c, store, progress=False)
        else:
            surface = SandboxV2(w)
            settings = Settings(api_secret="sandbox_v2_secret", v2_api_base="https://v2.invalid")
            with PortOneV2Client(settings, transport=surface.transport(), sleep=lambda s: None) as c:
                report = sync_v2(c, store, now=datetime.fromtimestamp(w.now, UTC))
        wall, cpu = time.perf_counter() - wall, cpu_s() - cpu
        rows = int(store.query("SELECT count(*) AS n FROM payments")["n"][0])
    return {
        "api": api,
        "payments": rows,
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "payments_per_s": round(rows / wall) if wall else None,
        "api_calls": report.api_calls,
        "peak_rss_mib": round(peak_rss_mib(), 1),
        "rss_before_sync_mib": round(rss_before, 1),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--payments", type=float, default=1e5)
    p.add_argument("--months", type=int, default=13)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--only", choices=("v1", "v2"))
    p.add_argument("--json")
    args = p.parse_args(argv)
    if args.only:
        print(__import__("json").dumps(_one(args.only, int(args.payments), args.months, args.seed)))
        return 0
    rows = []
    for api in ("v1", "v2"):
        child = [
            str(Path(__file__).resolve()),
            "--only",
            api,
            "--payments",
            str(int(args.payments)),
            "--months",
            str(args.months),
            "--seed",
            str(args.seed),
        ]
        rows.append(run_child(child))
    print_table(rows, list(rows[0]))
    write_json(args.json, {"benchmark": "sync_v2", "rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
