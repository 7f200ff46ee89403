"""CLI: ``portone-recon load-orders`` and ``portone-recon load-subscriptions``."""

from __future__ import annotations

import argparse
import sys
import warnings
from typing import Any

from portone_recon.config import Settings
from portone_recon.orders.load import LoadWarning, load_orders, load_subscriptions
from portone_recon.orders.mapping import ColumnMapping
from portone_recon.store import Store


def register(subparsers: Any) -> None:
    """Add ``load-orders`` and ``load-subscriptions``."""
    for name, target in (("load-orders", "orders"), ("load-subscriptions", "subscriptions")):
        p = subparsers.add_parser(
            name,
            help=f"load the merchant's {target} (CSV, xlsx, Parquet or a SQL table/query) into the store",
            description=(
                f"Load a snapshot of the merchant's {target}, replacing the previous snapshot of the same "
                "source atomically. Bad rows are refused (row and column named) and nothing is written."
            ),
        )
        p.add_argument("source", metavar="SOURCE", help="a .csv/.xlsx/.parquet file or an SQLAlchemy URL")
        which = p.add_mutually_exclusive_group()
        which.add_argument("--table", help="SQL source: the table to read")
        which.add_argument("--query", help="SQL source: a SELECT to run instead of a table")
        p.add_argument("--mapping", metavar="FILE", help="JSON/TOML file: {columns: {...}, statuses: {...}}")
        p.add_argument("--encoding", help="CSV encoding (default: detect UTF-8, UTF-8 BOM, CP949/EUC-KR)")
        p.add_argument("--sheet", default="0", help="xlsx: sheet name or index (default 0)")
        p.add_argument("--source-name", help="the snapshot's name (keep it fixed for daily exports)")
        p.add_argument("--allow-empty", action="store_true", help="accept a source with no rows")
        p.add_argument(
            "--allow-shrink",
            action="store_true",
            help="accept a source with fewer than half the rows of the snapshot it replaces "
            "(refused by default when that snapshot had 100 rows or more: usually an export cut short)",
        )
        p.add_argument("--db", metavar="PATH", help="the DuckDB store (default PORTONE_RECON_DB)")
        p.set_defaults(func=_handler, target=target)


def _handler(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    store = Store(args.db or settings.db_path, lock_timeout=settings.lock_timeout)
    mapping = ColumnMapping.from_file(args.mapping) if args.mapping else None
    sheet: str | int = int(args.sheet) if str(args.sheet).isdigit() else args.sheet
    load = load_orders if args.target == "orders" else load_subscriptions
    with warnings.catch_warnings():  # printed below, one line each, without Python's file and line
        warnings.simplefilter("ignore", LoadWarning)
        report = load(
            store,
            args.source,
            mapping,
            table=args.table,
            query=args.query,
            encoding=args.encoding,
            sheet=sheet,
            source_name=args.source_name,
            allow_empty=args.allow_empty,
            allow_shrink=args.allow_shrink,
            progress=False,
        )
    print(
        f"loaded {report.rows_loaded} {report.target} from {report.source} "
        f"(replaced {report.replaced_rows}) in {report.seconds:.2f} s"
    )
    for line in report.warnings:
        print(f"portone-recon {args.command}: warning: {line}", file=sys.stderr)
    return 0
