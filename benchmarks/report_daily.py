"""How long does the daily report notebook take end to end on a 1e6-order store?

Builds the store with reconcile_scale's generator (N orders, ~1.1% anomalies), then, each timed apart:

  kernel   start a python3 Jupyter kernel and wait until it answers (jupyter_client), then shut it down;
  trivial  papermill + HTML export of a one-cell notebook (kernel start + papermill/nbconvert overhead);
  daily    portone_recon.reports.run_report("daily", {"db": ..., "as_of": ...}) - executes the notebook
           (it reconciles), exports HTML, writes summary.json; per-cell durations from papermill metadata.

Usage:
  python benchmarks/report_daily.py [--orders 1e6] [--json OUT] [--keep DB]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Timer, load_average, print_table, write_json
from reconcile_scale import AS_OF, generate


def kernel_start() -> float:
    """Seconds from launching a python3 kernel to its first answer."""
    from jupyter_client.manager import start_new_kernel

    with Timer() as t:
        km, kc = start_new_kernel(kernel_name="python3")
        kc.execute_interactive("1", timeout=120)
    kc.stop_channels()
    km.shutdown_kernel(now=True)
    return t.wall


def trivial_notebook(folder: Path) -> float:
    """Seconds for papermill + HTML export of a one-cell notebook."""
    import nbformat
    import papermill as pm

    from portone_recon.reports.runner import export_html

    src = folder / "trivial.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("x"),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, src)
    with Timer() as t:
        pm.execute_notebook(
            str(src), str(folder / "trivial.out.ipynb"), progress_bar=False, kernel_name="python3"
        )
        export_html(folder / "trivial.out.ipynb", folder / "trivial.html")
    return t.wall


def cell_durations(notebook: Path) -> list[dict[str, Any]]:
    """Per-cell durations papermill recorded, longest first."""
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    rows = []
    for i, cell in enumerate(nb["cells"]):
        if cell.get("cell_type") != "code":
            continue
        d = cell.get("metadata", {}).get("papermill", {}).get("duration")
        src = "".join(cell.get("source", "")).strip().splitlines()
        rows.append({"cell": i, "seconds": float(d or 0.0), "source": (src[0] if src else "")[:60]})
    return sorted(rows, key=lambda r: -r["seconds"])


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--orders", type=float, default=1e6, help="orders in the store (default 1e6)")
    parser.add_argument("--json", help="write the figures to this JSON file")
    parser.add_argument("--keep", help="build (or with --reuse, reuse) the store here")
    parser.add_argument("--reuse", action="store_true", help="with --keep: reuse an existing store")
    args = parser.parse_args()

    from portone_recon.reports import run_report

    n = int(args.orders)
    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="report_daily_") as tmp:
        folder = Path(tmp)
        db = Path(args.keep) if args.keep else folder / "scale.duckdb"
        if not (args.reuse and db.exists()):
            if db.exists():
                db.unlink()
            gen = generate(db, n)
        else:
            gen = {"generate_s": None}
        k = kernel_start()
        trivial = trivial_notebook(folder)
        with Timer() as t:
            result = run_report("daily", {"db": str(db), "as_of": AS_OF}, out_dir=folder / "reports")
        cells = cell_durations(result.notebook)
        html_mib = result.html.stat().st_size / 2**20
        summary = result.summary
    figures = {
        "n": n,
        "generate_s": gen["generate_s"],
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "kernel_start_s": k,
        "trivial_notebook_s": trivial,
        "report_s": t.wall,
        "report_cpu_s_parent": t.cpu,
        "report_minus_trivial_s": t.wall - trivial,
        "html_mib": html_mib,
        "finding_count": summary.get("finding_count"),
        "cells": cells,
    }
    print(f"orders={n:,}  load={load_before:.1f}")
    print_table(
        [
            {"what": "kernel start (jupyter_client)", "seconds": k},
            {"what": "trivial notebook (papermill + HTML)", "seconds": trivial},
            {"what": "daily report end to end (run_report)", "seconds": t.wall},
            {"what": "  of which not kernel start", "seconds": t.wall - k},
        ],
        ["what", "seconds"],
    )
    print_table(cells[:8], ["cell", "seconds", "source"])
    write_json(args.json, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
