"""What does an incremental update of ``raw`` cost at CHECKPOINT, by the column's compression?

A synthetic payments-like table of N rows (``imp_uid`` primary key, ``amount``, a ~1 KB ``raw`` JSON),
checkpointed; then 1,000 rows scattered over the table get a new ``amount`` or a new ``raw``, and the
COMMIT + CHECKPOINT is timed. DuckDB rewrites an updated column of every row group that holds an updated
row, so the cost follows the table (history), not the change; the compression of ``raw`` decides how much.
Also times the merge's change test (``raw`` text compare against a 64-bit hash column) for 2,000 keys.

Usage:
  python benchmarks/raw_update_cost.py [--rows 1e6] [--json OUT]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import duckdb
from _common import Timer, print_table, write_json

LAYOUTS = {"zstd (migration 0003)": "JSON USING COMPRESSION zstd", "default compression": "JSON"}


def measure(rows: int, raw_type: str, folder: Path) -> list[dict[str, Any]]:
    con = duckdb.connect(str(folder / "t.duckdb"))
    con.execute(f"CREATE TABLE p (imp_uid VARCHAR PRIMARY KEY, amount BIGINT, raw {raw_type}, h UBIGINT)")
    con.execute(
        "INSERT INTO p SELECT 'imp_' || lpad(i::VARCHAR, 12, '0'), i, "
        "to_json({'imp_uid': 'imp_' || i, 'pad': repeat(md5(i::VARCHAR), 30)}), 0 FROM range(?) t(i)",
        [rows],
    )
    con.execute("UPDATE p SET h = hash(raw::VARCHAR)")
    con.execute("CHECKPOINT")
    con.execute(
        "CREATE TEMP TABLE s AS SELECT imp_uid, raw, hash(raw::VARCHAR) AS h FROM p USING SAMPLE 2000 ROWS"
    )
    out = []
    for name, cond in [
        ("compare raw text", "t.raw::VARCHAR IS DISTINCT FROM s.raw"),
        ("compare hash", "t.h <> s.h"),
    ]:
        with Timer() as t:
            con.execute(
                "SELECT count(*) FILTER (WHERE " + cond + ") FROM s JOIN p t ON t.imp_uid = s.imp_uid"
            ).fetchall()
        out.append({"step": f"change test, 2,000 keys: {name}", "wall_s": t.wall, "cpu_s": t.cpu})
    for col, expr in [("amount", "amount + 1"), ("raw", "to_json({'x': amount})")]:
        con.execute("BEGIN")
        con.execute(f"UPDATE p SET {col} = {expr} WHERE imp_uid IN (SELECT imp_uid FROM s LIMIT 1000)")
        with Timer() as t:
            con.execute("COMMIT")
            con.execute("CHECKPOINT")
        out.append(
            {
                "step": f"1,000 scattered updates of {col}: COMMIT + CHECKPOINT",
                "wall_s": t.wall,
                "cpu_s": t.cpu,
            }
        )
    con.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=float, default=1e6)
    parser.add_argument("--json", help="write the figures to this JSON file")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    for layout, raw_type in LAYOUTS.items():
        with tempfile.TemporaryDirectory(prefix="bench-raw-") as tmp:
            for r in measure(int(args.rows), raw_type, Path(tmp)):
                rows.append({"raw": layout, **r})
    print(f"{int(args.rows):,} rows, ~1 KB raw each")
    print_table(rows, ["raw", "step", "wall_s", "cpu_s"])
    write_json(args.json, {"rows": int(args.rows), "steps": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
