"""V2 sync vs V1 sync of the same generated merchant: wall, CPU, peak RSS, API calls.

Both read one world in process (the sandbox's in-process transports, no sockets): V1 through
``PortOneClient`` + ``sync``, V2 through ``PortOneV2Client`` + ``sync_v2`` over ``SandboxV2``. Each API runs
in its own child process (``--only v1|v2``). The sandbox's cost of answering is inside both figures; the V2
surface renders its objects once before the timer (``SandboxV2.warm``, reported as ``warm_s``), as the V1
world holds its JSON ready, so both serve prepared JSON and the figures compare the clients and syncs.

Memory: ``peak_rss_mib`` is the child's peak (world included); ``sync_rss_growth_mib`` is the sync's own
share: the peak during the sync (the kernel's peak counter is reset just before it, ``/proc/self/clear_refs``)
minus the resident size just before it.

Latency: ``--latency-ms 50`` puts 50 ms before every answer of both transports (as
``sync_throughput.py`` does on the loopback server; both clients keep their default 4 requests in
flight), so the figures include what the number of calls costs against a real API, not only CPU.

Server: with ``--server``, the world is served by ``portone-recon sandbox serve --v2 v2`` in its own process
(V1 and V2 on one port, both rendered before it is ready) at ``--latency-ms`` per request, and each sync
runs in its own child against it over loopback HTTP, as against the live API: the fake server's CPU is on
the other core and outside the sync's figures, and each child's RSS is the sync's alone.

Usage:
  python benchmarks/sync_v2.py --payments 1e5 [--latency-ms 50] [--server] [--json OUT]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import cpu_s, peak_rss_mib, print_table, run_child, write_json
from _sandbox import subscribers_for


def _rss_mib() -> float:
    """Resident size of this process now, in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return peak_rss_mib()


def _reset_peak() -> bool:
    """Reset this process's peak RSS counter (Linux: ``5`` to ``clear_refs``); False when not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


class _Server(httpx.BaseTransport):
    """The in-process sandbox as a server: answers through ``inner`` after ``seconds`` (the network's
    latency) and adds up the CPU seconds the sandbox spends answering (``cpu_s``, every thread), so the
    sync's own CPU can be told from the fake server's."""

    def __init__(self, inner: httpx.BaseTransport, seconds: float) -> None:
        self._inner = inner
        self._seconds = seconds
        self._lock = threading.Lock()
        self.cpu_s = 0.0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self._seconds:
            time.sleep(self._seconds)
        started = time.thread_time()
        try:
            response = self._inner.handle_request(request)
            response.read()
            return response
        finally:
            spent = time.thread_time() - started
            with self._lock:
                self.cpu_s += spent

    def close(self) -> None:
        self._inner.close()


def _one(api: str, payments: int, months: int, seed: int, latency: float = 0.0) -> dict[str, Any]:
    from portone_recon.api import PortOneClient
    from portone_recon.api.v2 import PortOneV2Client
    from portone_recon.config import Settings
    from portone_recon.sandbox.scenario import generate_merchant
    from portone_recon.sandbox.v2_api import SandboxV2
    from portone_recon.store import Store
    from portone_recon.sync import sync
    from portone_recon.sync.v2 import sync_v2

    started = time.perf_counter()
    sc = generate_merchant(subscribers_for(payments, months), months, seed=seed)
    w = sc.world
    world_s = time.perf_counter() - started
    warm_s = 0.0
    if api == "v1":
        w.warm()
    else:
        surface = SandboxV2(w)
        warm = time.perf_counter()
        surface.warm()
        warm_s = time.perf_counter() - warm
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "bench.duckdb")
        store.migrate()
        rss_before = _rss_mib()
        reset = _reset_peak()
        wall, cpu = time.perf_counter(), cpu_s()
        if api == "v1":
            server = _Server(w.transport(), latency)
            with PortOneClient(
                imp_key=w.imp_key,
                imp_secret=w.imp_secret,
                transport=server,
                sleep=lambda s: None,
            ) as c:
                report = sync(c, store, progress=False)
        else:
            settings = Settings(api_secret="sandbox_v2_secret", v2_api_base="https://v2.invalid")
            server = _Server(surface.transport(), latency)
            with PortOneV2Client(settings, transport=server, sleep=lambda s: None) as c:
                report = sync_v2(c, store, now=datetime.fromtimestamp(w.now, UTC), progress=False)
        wall, cpu = time.perf_counter() - wall, cpu_s() - cpu
        sync_peak = peak_rss_mib()
        rows = int(store.query("SELECT count(*) AS n FROM payments")["n"][0])
    return {
        "api": api,
        "payments": rows,
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "sandbox_cpu_s": round(server.cpu_s, 2),
        "sync_cpu_s": round(cpu - server.cpu_s, 2),
        "payments_per_s": round(rows / wall) if wall else None,
        "api_calls": report.api_calls,
        "peak_rss_mib": round(peak_rss_mib(), 1),
        "rss_before_sync_mib": round(rss_before, 1),
        "sync_rss_growth_mib": round(sync_peak - rss_before, 1) if reset else None,
        "world_s": round(world_s, 1),
        "warm_s": round(warm_s, 1),
    }


def _remote(api: str, served: dict[str, Any]) -> dict[str, Any]:
    """One sync of ``api`` against the served world (``served``: the server's ready line and clock)."""
    from portone_recon.api import PortOneClient
    from portone_recon.api.v2 import PortOneV2Client
    from portone_recon.config import Settings
    from portone_recon.store import Store
    from portone_recon.sync import sync
    from portone_recon.sync.v2 import sync_v2

    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "bench.duckdb")
        store.migrate()
        rss_before = _rss_mib()
        reset = _reset_peak()
        wall, cpu = time.perf_counter(), cpu_s()
        if api == "v1":
            with PortOneClient(
                api_base=served["base_url"], imp_key=served["imp_key"], imp_secret=served["imp_secret"]
            ) as c:
                report = sync(c, store, progress=False)
        else:
            settings = Settings(api_secret=served["v2_api_secret"], v2_api_base=served["v2_base_url"])
            with PortOneV2Client(settings) as c:
                report = sync_v2(c, store, now=datetime.fromtimestamp(served["now"], UTC), progress=False)
        wall, cpu = time.perf_counter() - wall, cpu_s() - cpu
        sync_peak = peak_rss_mib()
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
        "sync_rss_growth_mib": round(sync_peak - rss_before, 1) if reset else None,
    }


def _served_rows(args: argparse.Namespace) -> list[dict[str, Any]]:
    from _sandbox import SandboxProcess

    subscribers = subscribers_for(int(args.payments), args.months)
    with SandboxProcess(
        subscribers=subscribers, months=args.months, seed=args.seed, max_s=3000, extra=("--v2", "v2")
    ) as server:
        server.set_latency(args.latency_ms / 1000)
        served = {**server.info, "now": server.control("GET", "state")["now"]}
        rows = []
        for api in ("v1", "v2"):
            cpu0 = server.cpu_s()
            child = [
                str(Path(__file__).resolve()),
                "--only",
                api,
                "--remote",
                __import__("json").dumps(served),
            ]
            row = run_child(child)
            row["server_cpu_s"] = round(server.cpu_s() - cpu0, 2)
            row["world_s"] = round(server.build_s, 1)
            rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--payments", type=float, default=1e5)
    p.add_argument("--months", type=int, default=13)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--only", choices=("v1", "v2"))
    p.add_argument("--latency-ms", type=float, default=0.0, help="latency before every answer (both APIs)")
    p.add_argument("--server", action="store_true", help="serve the world from its own process (loopback)")
    p.add_argument("--remote", help=argparse.SUPPRESS)
    p.add_argument("--json")
    args = p.parse_args(argv)
    if args.only and args.remote:
        print(__import__("json").dumps(_remote(args.only, __import__("json").loads(args.remote))))
        return 0
    if args.server:
        rows = _served_rows(args)
        print_table(rows, list(rows[0]))
        write_json(
            args.json, {"benchmark": "sync_v2", "server": True, "latency_ms": args.latency_ms, "rows": rows}
        )
        return 0
    if args.only:
        one = _one(args.only, int(args.payments), args.months, args.seed, args.latency_ms / 1000)
        print(__import__("json").dumps(one))
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
            "--latency-ms",
            str(args.latency_ms),
        ]
        rows.append(run_child(child))
    print_table(rows, list(rows[0]))
    write_json(args.json, {"benchmark": "sync_v2", "rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
