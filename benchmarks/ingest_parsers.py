"""How fast can DuckDB turn PortOne page bodies into rows at all? (the floor under sync ingest)

Fetches every ``paid`` page of a sandbox merchant (``sandbox serve``, killed at the end), writes the bodies
as NDJSON once, then loads them into a fresh table with several ``read_json`` variants, twice each, and
prints rows per CPU-second next to ``orjson.loads``. No validation, no merge: these are lower bounds for
``portone_recon.sync._ingest``.

Usage:
  python benchmarks/ingest_parsers.py [--payments 1e5] [--json OUT]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import duckdb
import httpx
import orjson
from _common import Timer, print_table, write_json
from _sandbox import SandboxProcess, subscribers_for

DAY = 86400


def fetch_bodies(server: SandboxProcess) -> list[bytes]:
    """Every page of GET /payments/status/paid over the last 400 days, 90-day windows, limit 1000."""
    token = server.token()
    bodies = []
    now = int(server.control("GET", "state")["now"])
    with httpx.Client(
        base_url=server.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=120
    ) as h:
        lo = now - 400 * DAY
        while lo < now:
            hi = min(lo + 90 * DAY, now)
            page = 1
            while page:
                params = {"from": lo, "to": hi, "limit": 1000, "page": page}
                content = h.get("/payments/status/paid", params=params).content
                bodies.append(content)
                page = int(orjson.loads(content)["response"]["next"])
            lo = hi
    return bodies


def variants(path: Path) -> dict[str, str]:
    from portone_recon.sync._ingest import PAYMENTS, _json_type, _transform_spec, _typed_expr

    src = f"read_json('{path}', format = 'newline_delimited', maximum_object_size = 16777216"
    huge = f"read_json('{path}', format = 'newline_delimited', maximum_object_size = 536870912"
    struct = "STRUCT(" + ", ".join(f"{c.name} {_json_type(c)}" for c in PAYMENTS.cols) + ")"
    cols = ", ".join(f"{_typed_expr(c)} AS {c.name}" for c in PAYMENTS.cols)
    spec = _transform_spec(PAYMENTS.cols)
    as_json = f"{src}, columns = {{'response': 'STRUCT(list JSON[])'}})"
    return {
        "JSON[] + json_transform (the read ingest does, no checks)": (
            f"SELECT {cols} FROM (SELECT json_transform(item, '{spec}') AS t FROM "
            f"(SELECT unnest(response.list) AS item FROM {as_json}))"
        ),
        "JSON[] -> raw text only": f"SELECT item::VARCHAR AS raw FROM (SELECT unnest(response.list) AS item FROM {as_json})",
        "typed STRUCT[] in read_json": (
            f"SELECT t.* FROM (SELECT unnest(response.list) AS t FROM "
            f"{src}, columns = {{'response': 'STRUCT(list {struct}[])'}}))"
        ),
        "auto-detect + unnest recursive (perf-baselines c')": (
            f"SELECT unnest(response.list, recursive := true) FROM {src})"
        ),
        # What ingest used before: a 512 MiB object size limit (single-threaded, 2-4x slower).
        "c' with maximum_object_size = 512 MiB": f"SELECT unnest(response.list, recursive := true) FROM {huge})",
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--payments", type=float, default=1e5)
    parser.add_argument("--json", help="write the figures to this JSON file")
    args = parser.parse_args()
    with SandboxProcess(subscribers=subscribers_for(int(args.payments), 12), months=12) as server:
        bodies = fetch_bodies(server)
    n = sum(len(orjson.loads(b)["response"]["list"]) for b in bodies)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-parsers-") as tmp:
        path = Path(tmp) / "pages.ndjson"
        with open(path, "wb") as f:
            for b in bodies:
                f.write(b.replace(b"\n", b" ") + b"\n")
        for i, (name, sql) in enumerate(variants(path).items()):
            for rep in range(2):
                con = duckdb.connect(str(Path(tmp) / f"v{i}_{rep}.duckdb"))
                with Timer() as t:
                    con.execute(f"CREATE TABLE x AS {sql}")
                got = con.execute("SELECT count(*) FROM x").fetchone()
                con.close()
                count = int(got[0]) if got else 0
                rows.append(
                    {
                        "variant": name,
                        "rows": count,
                        "wall_s": t.wall,
                        "cpu_s": t.cpu,
                        "rows_per_cpu_s": count / t.cpu,
                    }
                )
    with Timer() as t:
        for b in bodies:
            orjson.loads(b)
    rows.append(
        {
            "variant": "orjson.loads only",
            "rows": n,
            "wall_s": t.wall,
            "cpu_s": t.cpu,
            "rows_per_cpu_s": n / t.cpu,
        }
    )
    print(f"{n:,} payments in {len(bodies)} pages, {sum(map(len, bodies)) / n:,.0f} bytes per item")
    print_table(rows, ["variant", "rows", "wall_s", "cpu_s", "rows_per_cpu_s"])
    write_json(args.json, {"payments": n, "pages": len(bodies), "variants": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
