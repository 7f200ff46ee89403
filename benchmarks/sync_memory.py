"""Peak memory of a sync in its own process, per stream, against ``sandbox serve``.

Starts ``portone-recon sandbox serve`` with a generated merchant of about N payments and a per-request
latency, then runs each requested pass as a CHILD process (``python -c``: PortOneClient + sync into one
store), so nothing of this script, the server or an earlier pass is in the figure:

  first   the first (full) sync into an empty store.
  full    then ``sync(full=True)`` on the same store: the periodic full pass with the change-capture
          passes in (every refundable payment re-read by imp_uid, the whole schedule horizon, every
          billing key looked up).

With ``--probe-lock``, a reader process opens the store read-only (``Store.connect``, waiting up to
60 s), counts payments and exits, again and again while the pass runs: its waits for the store are
reported (max, median, count). The probes cost CPU, so the pass's seconds are not comparable then.

Per pass: peak RSS (``ru_maxrss`` of the child from ``wait4``: the child's own high-water mark), wall
and CPU seconds, and a profile: the child's VmRSS sampled every 50 ms, reported as the highest sample
inside each stream (the child logs when each stream starts and ends).

Usage:
  python benchmarks/sync_memory.py --payments 1e5 [--passes first,full] [--memory-limit 512MB]
      [--probe-lock] [--json OUT]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import orjson
from _common import load_average, print_table, write_json
from _sandbox import SandboxProcess, subscribers_for

#: The child: one sync, each stream's start/end written to stderr as JSON lines, the report to stdout.
CHILD = r"""
import json, os, sys, time
from portone_recon.api.client import PortOneClient
from portone_recon.store import Store
from portone_recon.sync import _job, engine, sync

if os.environ.get("BENCH_MEMORY_LIMIT"):
    _job.MEMORY_LIMIT = os.environ["BENCH_MEMORY_LIMIT"]

def traced(name, fn):
    def run(*a, **k):
        label = {"payments": f"payments:{a[1] if len(a) > 1 else k.get('status')}", "updated": "payments:updated", "refundable": "payments:refundable"}.get(name, name)
        print(json.dumps({"stream": label, "start": time.time()}), file=sys.stderr, flush=True)
        try:
            return fn(*a, **k)
        finally:
            print(json.dumps({"stream": label, "end": time.time()}), file=sys.stderr, flush=True)
    return run

for name in ("payments", "updated", "refundable", "schedules", "billing_keys"):
    setattr(engine._Run, f"_{name}", traced(name, getattr(engine._Run, f"_{name}")))
args = json.loads(sys.argv[1])
client = PortOneClient(api_base=args["base"], imp_key=args["key"], imp_secret=args["secret"],
                       concurrency=args["concurrency"])
t0 = time.perf_counter()
report = sync(client, Store(args["db"]), progress=False, full=args["full"])
wall = time.perf_counter() - t0
print(json.dumps({"wall_s": wall, "api_calls": report.api_calls,
                  "streams": {s.stream: {"items": s.items, "calls": s.api_calls} for s in report.streams}}))
"""


#: The lock probe: open the store read-only, read it, print how long the open waited.
PROBE = r"""
import sys, time
from portone_recon.store import Store
t0 = time.monotonic()
with Store(sys.argv[1], lock_timeout=60).connect(read_only=True) as con:
    waited = time.monotonic() - t0
    con.execute("SELECT count(*) FROM payments").fetchone()
print(f"{waited:.3f}")
"""


def _probe_lock(db: Path, alive: threading.Event, waits: list[float]) -> None:
    """Probe the store until the pass ends (the file exists from the sync's first moment)."""
    while alive.is_set():
        if db.exists():
            done = subprocess.run([sys.executable, "-c", PROBE, str(db)], capture_output=True, text=True)
            if done.returncode == 0 and alive.is_set():
                waits.append(float(done.stdout.strip()))
        time.sleep(0.3)


def _rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def run_pass(
    server: SandboxProcess,
    db: Path,
    concurrency: int,
    *,
    full: bool,
    memory_limit: str | None,
    probe_lock: bool = False,
) -> dict[str, Any]:
    env = dict(os.environ)
    if memory_limit:
        env["BENCH_MEMORY_LIMIT"] = memory_limit
    args = {
        "base": server.base_url,
        "key": server.imp_key,
        "secret": server.imp_secret,
        "concurrency": concurrency,
        "db": str(db),
        "full": full,
    }
    started = time.time()
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, orjson.dumps(args).decode()],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    samples: list[tuple[float, float]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            rss = _rss_mib(proc.pid)
            if rss is not None:
                samples.append((time.time(), rss))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    alive = threading.Event()
    alive.set()
    waits: list[float] = []
    prober = threading.Thread(target=_probe_lock, args=(db, alive, waits), daemon=True)
    if probe_lock:
        prober.start()
    err_lines: list[bytes] = []
    reader = threading.Thread(target=lambda: err_lines.extend(proc.stderr), daemon=True)  # type: ignore[arg-type]
    reader.start()
    out = proc.stdout.read() if proc.stdout else b""  # type: ignore[union-attr]
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    stop.set()
    alive.clear()
    sampler.join()
    if probe_lock:
        prober.join()
    reader.join()
    if proc.returncode != 0:
        raise SystemExit(f"sync child failed ({proc.returncode}): {b''.join(err_lines).decode()[-3000:]}")
    report = orjson.loads(out.strip().splitlines()[-1])
    spans: dict[str, list[float]] = {}
    for line in err_lines:
        try:
            event = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(event, dict) and "stream" in event:
            spans.setdefault(event["stream"], []).append(event.get("start", event.get("end")))
    profile = []
    for stream, (t_start, t_end) in ((k, (v[0], v[-1])) for k, v in spans.items()):
        inside = [rss for t, rss in samples if t_start <= t <= t_end]
        profile.append(
            {
                "stream": stream,
                "seconds": t_end - t_start,
                "peak_rss_mib": max(inside) if inside else None,
                **report["streams"].get(stream, {}),
            }
        )
    return {
        "pass": "full" if full else "first",
        "peak_rss_mib": usage.ru_maxrss / 1024,
        "wall_s": time.time() - started,
        "sync_s": report["wall_s"],
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "api_calls": report["api_calls"],
        "profile": profile,
        "lock_waits_s": waits,
        "lock_wait_max_s": max(waits) if waits else None,
        "lock_wait_median_s": sorted(waits)[len(waits) // 2] if waits else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--payments", type=float, default=1e5, help="about how many payments (1e5, 1e6)")
    parser.add_argument("--latency-ms", type=float, default=50.0, help="per-request latency of the sandbox")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--passes", default="first,full", help="comma-separated: first, full")
    parser.add_argument("--memory-limit", help="what-if: the sync's DuckDB memory_limit (e.g. 256MB)")
    parser.add_argument("--probe-lock", action="store_true", help="open the store from another process")
    parser.add_argument("--json", help="write the figures to this JSON file")
    parser.add_argument("--max-seconds", type=float, default=3000)
    args = parser.parse_args()
    passes = [p.strip() for p in args.passes.split(",") if p.strip()]
    if not passes or set(passes) - {"first", "full"}:
        parser.error("--passes takes first and/or full")
    subscribers = subscribers_for(int(args.payments), args.months)
    load_before = load_average()
    results = []
    with (
        tempfile.TemporaryDirectory(prefix="sync_mem_") as tmp,
        SandboxProcess(
            subscribers=subscribers, months=args.months, seed=args.seed, max_s=args.max_seconds
        ) as server,
    ):
        server.set_latency(args.latency_ms / 1000)
        db = Path(tmp) / "sync.duckdb"
        for name in passes:
            results.append(
                run_pass(
                    server,
                    db,
                    args.concurrency,
                    full=name == "full",
                    memory_limit=args.memory_limit,
                    probe_lock=args.probe_lock,
                )
            )
    for r in results:
        print(
            f"pass {r['pass']}: peak RSS {r['peak_rss_mib']:,.0f} MiB, sync {r['sync_s']:.1f} s, "
            f"child CPU {r['cpu_s']:.1f} s, {r['api_calls']} API calls"
        )
        if r["lock_waits_s"]:
            print(
                f"  a reader opened the store {len(r['lock_waits_s'])} times during the pass: wait max "
                f"{r['lock_wait_max_s']:.2f} s, median {r['lock_wait_median_s']:.2f} s"
            )
        print_table(r["profile"], ["stream", "seconds", "peak_rss_mib", "items", "calls"])
    figures = {
        "requested_payments": int(args.payments),
        "subscribers": subscribers,
        "latency_ms": args.latency_ms,
        "concurrency": args.concurrency,
        "memory_limit": args.memory_limit or "default",
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "passes": results,
    }
    if args.json:
        write_json(args.json, figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
