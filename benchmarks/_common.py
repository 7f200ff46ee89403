"""Shared helpers for the benchmark scripts: peak RSS, CPU time, child processes, tables, JSON output.

The benchmark machine is shared and noisy (load average often > 5 on 2 cores), so every figure is recorded
as wall seconds *and* CPU seconds (user + system, all threads); CPU seconds are the stable number, and
every script times its baseline in the same run so that the ratio is meaningful.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far, in MiB.

    Reads ``VmHWM`` from /proc: ``getrusage().ru_maxrss`` survives ``execve`` on Linux, so a child started
    from a big parent would report the parent's size instead of its own.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_s() -> float:
    """CPU seconds (user + system, every thread) this process has used so far."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def load_average() -> float:
    """1-minute load average (how busy the shared machine was)."""
    return os.getloadavg()[0]


class Timer:
    """``with Timer() as t: ...`` then ``t.wall``, ``t.cpu`` (seconds)."""

    def __enter__(self) -> Timer:
        self._w, self._c = time.perf_counter(), cpu_s()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._w
        self.cpu = cpu_s() - self._c


def run_child(module_args: list[str], timeout: float = 1800) -> dict[str, Any]:
    """Run ``python <args>`` in a fresh process and return the JSON object it prints last."""
    out = subprocess.run(
        [sys.executable, *module_args], check=False, capture_output=True, text=True, timeout=timeout
    )
    if out.returncode != 0:
        sys.stderr.write(out.stderr[-4000:])
        raise SystemExit(f"child {module_args[1:]} failed with exit code {out.returncode}")
    last = out.stdout.strip().splitlines()[-1]
    result: dict[str, Any] = json.loads(last)
    return result


def code_fingerprint(*folders: str) -> dict[str, str]:
    """sha256 (12 hex) of the package's .py/.sql files per area: the tree is uncommitted while it changes,
    so this says which code a figure was measured on."""
    import hashlib

    areas = folders or ("reconcile", "sync", "api", "store", "reports", "sandbox")
    out = {}
    for area in areas:
        h = hashlib.sha256()
        for f in sorted((REPO / "portone_recon" / area).rglob("*")):
            if f.suffix in (".py", ".sql") and f.is_file():
                h.update(f.relative_to(REPO).as_posix().encode())
                h.update(f.read_bytes())
        out[area] = h.hexdigest()[:12]
    return out


def versions() -> dict[str, str]:
    import duckdb
    import httpx
    import pandas

    return {
        "python": platform.python_version(),
        "pandas": pandas.__version__,
        "duckdb": duckdb.__version__,
        "httpx": httpx.__version__,
        "machine": f"{platform.machine()}, {_cores()} cores, {_cpu_model()}, {_mem_gib()} GiB RAM",
    }


def _cores() -> int:
    return os.cpu_count() or 0


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown cpu"


def _mem_gib() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return round(int(line.split()[1]) / 1024 / 1024)
    except OSError:
        pass
    return 0


def print_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    widths = {c: max(len(c), *(len(_fmt(r.get(c))) for r in rows)) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns))
    print("  ".join("-" * widths[c] for c in columns))
    for r in rows:
        print("  ".join(_fmt(r.get(c)).ljust(widths[c]) for c in columns))


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "yes" if v else "NO"
    if isinstance(v, float):
        return f"{v:,.3f}" if v < 100 else f"{v:,.1f}"
    if isinstance(v, int):
        return f"{v:,}"
    return "" if v is None else str(v)


def write_json(path: str | None, payload: dict[str, Any]) -> None:
    payload = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "versions": versions(),
        "code_fingerprint": code_fingerprint(),
        **payload,
    }
    text = json.dumps(payload, indent=2, ensure_ascii=False, default=str)
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text + "\n", encoding="utf-8")
