"""CLI: ``portone-recon report daily|monthly|fixup`` and ``portone-recon demo``.

Heavy imports (papermill, matplotlib) happen inside the handlers, so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from portone_recon.reconcile.commands import add_fail_on_arguments

EXIT_OK = 0
EXIT_FINDINGS = 1


def register(subparsers: Any) -> None:
    """Add the ``report`` and ``demo`` subcommands."""
    rep = subparsers.add_parser(
        "report",
        help="run a report notebook (papermill) into reports/<name>/<date>/ with HTML and summary.json",
        description=(
            "Execute a report notebook, export it to HTML without code cells and write summary.json. "
            "Exit code 1 when open findings (not acknowledged, explained or won't-fix; new ones included) at "
            "or above --fail-on exist (with --fail-on-all: any finding), 0 otherwise, 2 on errors."
        ),
    )
    rep.add_argument("name", choices=("daily", "monthly", "fixup"), help="which report")
    rep.add_argument(
        "--as-of",
        dest="as_of",
        help="instant (ISO; a date alone is 00:00 KST); default now, at most a day ahead of now",
    )
    rep.add_argument("--month", help="monthly: YYYY-MM (default: the last complete month)")
    rep.add_argument("--db", help="the DuckDB store (default PORTONE_RECON_DB or ./portone_recon.duckdb)")
    rep.add_argument("--out", default="reports", help="reports folder (default reports/)")
    rep.add_argument(
        "--notebook-dir",
        dest="notebook_dir",
        default=None,
        help="run your own copy of the report notebook from DIR (same file name; default: the packaged one)",
    )
    add_fail_on_arguments(rep)
    rep.add_argument("--grace", default=None, help="daily/fixup: reconciliation grace (default 15min)")
    rep.add_argument("--sync", action="store_true", help="daily: sync PortOne first (credentials from env)")
    rep.add_argument(
        "--no-reconcile",
        dest="reconcile",
        action="store_false",
        help="daily: show the latest stored run instead of reconciling",
    )
    rep.add_argument("--kinds", help="fixup: comma-separated finding kinds (default all)")
    rep.add_argument("--apply", action="store_true", help="fixup: send the plan (default: plan only)")
    rep.add_argument(
        "--max-actions",
        dest="max_actions",
        type=int,
        default=None,
        help="fixup: cap on money-moving requests (default as fix apply)",
    )
    rep.add_argument(
        "--max-amount",
        dest="max_amount",
        type=int,
        default=None,
        help="fixup: cap on money charged or booked (default as fix apply)",
    )
    rep.set_defaults(func=_report)

    demo = subparsers.add_parser(
        "demo",
        help="sandbox merchant -> sync -> load orders -> reconcile -> daily and monthly reports",
    )
    demo.add_argument("--db", default="demo.duckdb", help="the DuckDB file to build (default demo.duckdb)")
    demo.add_argument("--out", default="reports", help="reports folder (default reports/)")
    demo.add_argument(
        "--subscribers", type=int, default=2000, help="subscribers in the scenario (default 2000)"
    )
    demo.add_argument("--months", type=int, default=13, help="months of history (default 13)")
    demo.add_argument("--seed", type=int, default=7, help="scenario seed (default 7)")
    demo.add_argument(
        "--api",
        choices=("v1", "v2", "mixed"),
        default="v1",
        help="read the merchant through PortOne V1 (default), V2, or both (a merchant moving to V2: half "
        "its customers keep V1 billing keys)",
    )
    demo.set_defaults(func=_demo)


def report_params(args: argparse.Namespace) -> dict[str, Any]:
    """The notebook parameters a ``report`` command line asks for (plain literals only)."""
    params: dict[str, Any] = {}
    if args.db:
        params["db"] = args.db
    if args.as_of:
        params["as_of"] = args.as_of
    if args.name == "monthly":
        if args.month:
            params["month"] = args.month
        return params
    if args.grace:
        params["grace"] = args.grace
    if args.name == "daily":
        params["sync"] = bool(args.sync)
        params["reconcile"] = bool(args.reconcile)
    else:
        if args.kinds:
            params["kinds"] = [k.strip() for k in args.kinds.split(",") if k.strip()]
        params["apply"] = bool(args.apply)
        if args.max_actions is not None:
            params["max_actions"] = args.max_actions
        if args.max_amount is not None:
            params["max_amount"] = args.max_amount
    return params


def _report(args: argparse.Namespace) -> int:
    from portone_recon._time import instant_arg, refuse_far_future
    from portone_recon.errors import ReportError, UsageError
    from portone_recon.reports.runner import run_report

    if args.month and args.name != "monthly":
        raise ReportError("--month applies to the monthly report only (use --as-of for daily/fixup)")
    if args.as_of:
        refuse_far_future(instant_arg(args.as_of, "--as-of"), "--as-of")
    if args.kinds is not None and not [k for k in args.kinds.split(",") if k.strip()]:
        raise UsageError(f"--kinds {args.kinds!r} names no kind; e.g. --kinds unpaid_renewal,missed_webhook")
    if args.max_actions is not None and args.max_actions < 0:
        raise UsageError(f"--max-actions must be 0 or more, got {args.max_actions}")
    result = run_report(args.name, report_params(args), args.out, notebook_dir=args.notebook_dir)
    s = result.summary
    print(f"{args.name} report written in {result.duration_s:.1f}s:")
    print(f"  html:     {result.html}")
    print(f"  notebook: {result.notebook}")
    print(f"  summary:  {result.summary_path}")
    if "finding_count" in s:
        sev = ", ".join(f"{k} {v}" for k, v in (s.get("counts_by_severity") or {}).items() if v)
        risk = s.get("amount_at_risk")  # the fix-up report carries counts, not amounts
        tail = f", KRW at risk {int(risk):,}" if risk is not None else ""
        print(f"  findings: {s['finding_count']:,} ({sev or 'none'}){tail}")
        if "open" in s:
            print(f"  open:     {int(s['open']):,} (acknowledged {int(s.get('acknowledged') or 0):,})")
    code = result.exit_code(args.fail_on, every=args.fail_on_all)
    if code:
        which = "findings" if args.fail_on_all else "open (unacknowledged) findings"
        print(f"{which} at or above {args.fail_on!r}: exit 1", file=sys.stderr)
    return code


def _demo(args: argparse.Namespace) -> int:
    from portone_recon.reports.demo import run_demo

    api = getattr(args, "api", "v1")
    print(
        f"demo: {args.subscribers:,} subscribers over {args.months} months (seed {args.seed}, "
        f"PortOne {api.upper() if api != 'mixed' else 'V1 + V2'})"
    )
    result = run_demo(
        args.db,
        args.out,
        subscribers=args.subscribers,
        months=args.months,
        seed=args.seed,
        echo=print,
        api=api,
    )
    print(result.text())
    return EXIT_OK
