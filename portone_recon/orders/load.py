"""Load a snapshot of the merchant's orders or subscriptions into the store, atomically."""

from __future__ import annotations

import html
import json
import time
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from tqdm.auto import tqdm

from portone_recon.errors import RowProblem, SourceError, StoreError, ValidationError
from portone_recon.orders.canonical import Target, canonicalize, row_warnings
from portone_recon.orders.mapping import ColumnMapping
from portone_recon.orders.sources import Source, SourceDescriptor, read_with_descriptor
from portone_recon.store import Store

MappingLike = ColumnMapping | Mapping[str, Any] | str | Path | None
_KEY: dict[str, str] = {"orders": "merchant_uid", "subscriptions": "subscription_id"}
#: A load that would replace a snapshot of at least SHRINK_MIN_ROWS rows with fewer than
#: SHRINK_RATIO of them is refused without ``allow_shrink``: far more often an export cut short
#: (a timeout, a filter left on) than a business that lost half its customers overnight.
SHRINK_MIN_ROWS = 100
SHRINK_RATIO = 0.5


class LoadWarning(UserWarning):
    """Rows that loaded but look wrong (each names its row); also in :attr:`LoadReport.warnings`."""


@dataclass(frozen=True)
class LoadReport:
    """What one load did.

    Attributes:
        target: ``orders`` or ``subscriptions``.
        source: the snapshot's name (the ``source`` column of its rows).
        rows_read: rows in the source.
        rows_loaded: rows now in the store for that source (checked equal to ``rows_read``).
        replaced_rows: rows of the previous snapshot of that source that this load replaced.
        seconds: wall time of the whole load.
        warnings: rows that loaded but look wrong, one line each naming the row.
    """

    target: str
    source: str
    rows_read: int
    rows_loaded: int
    replaced_rows: int
    seconds: float
    warnings: tuple[str, ...] = ()

    def __repr__(self) -> str:
        warned = f", {len(self.warnings)} warning(s)" if self.warnings else ""
        return (
            f"LoadReport({self.target}: {self.rows_loaded:,} of {self.rows_read:,} rows loaded from "
            f"{self.source}, replaced {self.replaced_rows:,}, {self.seconds:.2f} s{warned})"
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def _repr_html_(self) -> str:
        try:
            cells = "".join(
                f"<tr><th style='text-align:left'>{html.escape(k)}</th><td>{html.escape(_fmt(v))}</td></tr>"
                for k, v in self.to_dict().items()
            )
            return f"<b>LoadReport</b><table>{cells}</table>"
        except Exception:
            return "<b>LoadReport</b>"


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.2f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def load_orders(
    store: Store,
    source: Source,
    mapping: MappingLike = None,
    *,
    table: str | None = None,
    query: str | None = None,
    encoding: str | None = None,
    sheet: str | int = 0,
    source_name: str | None = None,
    allow_empty: bool = False,
    allow_shrink: bool = False,
    progress: bool | None = None,
) -> LoadReport:
    """Load the merchant's orders, replacing the previous snapshot of the same source atomically.

    Args:
        store: the store to write.
        source: a DataFrame, a ``.csv``/``.xlsx``/``.parquet`` path, or an SQLAlchemy URL (with
            ``table`` or ``query``).
        mapping: a :class:`ColumnMapping`, a dict ``{"columns": ..., "statuses": ...}``, or a JSON/TOML
            file path; None when the source already uses the canonical names and statuses.
        table: SQL only: the table to read (and that :class:`OrdersWriter` writes back to).
        query: SQL only: a SELECT instead of a table.
        encoding: CSV only: default detected (UTF-8, UTF-8 with BOM, CP949/EUC-KR).
        sheet: xlsx only: sheet name or index.
        source_name: the snapshot's name; default derived from the source (kind and location). Give
            the same name to daily exports with changing file names so each load replaces the last.
        allow_empty: accept a source with no rows (it empties that snapshot). Off by default: an empty
            export is far more often a broken job than a shop with no orders.
        allow_shrink: accept a source with fewer than half the rows of the snapshot it replaces (when
            that had at least 100). Off by default: such an export is usually cut short.
        progress: show a progress bar (default: when interactive).

    Raises:
        SourceError: the source cannot be read.
        ValidationError: bad rows (nothing is written).
        SourceError: also when the source is much smaller than the snapshot it replaces (nothing is
            written; see ``allow_shrink``).
        StoreError: the store could not be written (nothing is written).

    Rows that load but look wrong (a subscription cancelled before it started) are reported as a
    :class:`LoadWarning` and in :attr:`LoadReport.warnings`.
    """
    return _load(
        store,
        "orders",
        source,
        mapping,
        table,
        query,
        encoding,
        sheet,
        source_name,
        allow_empty,
        progress,
        allow_shrink=allow_shrink,
    )


def load_subscriptions(
    store: Store,
    source: Source,
    mapping: MappingLike = None,
    *,
    table: str | None = None,
    query: str | None = None,
    encoding: str | None = None,
    sheet: str | int = 0,
    source_name: str | None = None,
    allow_empty: bool = False,
    allow_shrink: bool = False,
    progress: bool | None = None,
) -> LoadReport:
    """Load the merchant's subscriptions; same sources, options and guarantees as :func:`load_orders`."""
    return _load(
        store,
        "subscriptions",
        source,
        mapping,
        table,
        query,
        encoding,
        sheet,
        source_name,
        allow_empty,
        progress,
        allow_shrink=allow_shrink,
    )


def _load(
    store: Store,
    target: Target,
    source: Source,
    mapping: MappingLike,
    table: str | None,
    query: str | None,
    encoding: str | None,
    sheet: str | int,
    source_name: str | None,
    allow_empty: bool,
    progress: bool | None,
    *,
    allow_shrink: bool = False,
) -> LoadReport:
    started = time.perf_counter()
    cmap = ColumnMapping.coerce(mapping)
    bar = tqdm(
        total=3, desc=f"load {target}", disable=None if progress is None else not progress, leave=False
    )
    try:
        bar.set_postfix_str("read")
        frame, desc = read_with_descriptor(
            source, table=table, query=query, encoding=encoding, sheet=sheet, name=source_name
        )
        label = source_name or desc.label
        where = label if label == desc.label else f"{label} ({desc.location})"  # names the file too
        if len(frame) == 0 and not allow_empty:
            raise SourceError(
                f"{label}: the source has no rows; refusing to empty the {target} snapshot "
                "(pass allow_empty=True if that is really meant)"
            )
        bar.update()
        bar.set_postfix_str("validate")
        rows = canonicalize(frame, target, cmap, source=where)
        odd = [f"{where}: {p}" for p in row_warnings(rows, target)]
        bar.update()
        bar.set_postfix_str("write")
        keep_shrink = allow_shrink or (allow_empty and len(frame) == 0)
        replaced, loaded = _write(
            store, target, rows, label, desc, cmap, len(frame), started, allow_shrink=keep_shrink
        )
        bar.update()
    finally:
        bar.close()
    for line in odd:
        warnings.warn(line, LoadWarning, stacklevel=3)
    return LoadReport(
        target=target,
        source=label,
        rows_read=len(frame),
        rows_loaded=loaded,
        replaced_rows=replaced,
        seconds=time.perf_counter() - started,
        warnings=tuple(odd),
    )


def _write(
    store: Store,
    target: Target,
    rows: pa.Table,
    label: str,
    desc: SourceDescriptor,
    cmap: ColumnMapping,
    rows_read: int,
    started: float,
    *,
    allow_shrink: bool = False,
) -> tuple[int, int]:
    key = _KEY[target]
    loaded_at = datetime.now(UTC)
    try:
        with store.transaction(checkpoint=True) as con:
            con.execute("SET enable_progress_bar = false")  # no stray bar on stdout (cron, notebooks)
            con.register("_incoming", rows)
            _refuse_foreign_keys(con, target, key, rows, label)
            replaced = _count(con, f"SELECT count(*) FROM {target} WHERE source = ?", [label])
            if not allow_shrink and replaced >= SHRINK_MIN_ROWS and rows_read < replaced * SHRINK_RATIO:
                raise SourceError(
                    f"{label}: {rows_read:,} rows would replace the {replaced:,} rows of the previous "
                    f"{target} snapshot (fewer than {SHRINK_RATIO:.0%}): is the export cut short? Nothing "
                    "changed. If the source really shrank, pass allow_shrink=True (CLI --allow-shrink)"
                )
            _insert(con, target, key, rows.column_names, label, loaded_at)
            loaded = _count(con, f"SELECT count(*) FROM {target} WHERE source = ?", [label])
            if loaded != rows_read:
                raise StoreError(
                    f"{store.path}: {label}: read {rows_read} rows but {loaded} landed in {target}; "
                    "rolled back, nothing changed"
                )
            con.execute(
                "INSERT OR REPLACE INTO source_loads (target, source, rows, loaded_at, kind, location, "
                "table_name, query, encoding, mapping, rows_read, replaced_rows, seconds) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    target,
                    label,
                    loaded,
                    loaded_at,
                    desc.kind,
                    desc.location,
                    desc.table,
                    desc.query,
                    desc.encoding,
                    json.dumps(cmap.to_dict(), ensure_ascii=False),
                    rows_read,
                    replaced,
                    time.perf_counter() - started,
                ],
            )
            con.unregister("_incoming")
    except duckdb.Error as exc:
        raise StoreError(
            f"{store.path}: loading {target} from {label} failed, nothing changed: {exc}"
        ) from exc
    return replaced, loaded


def _insert(
    con: duckdb.DuckDBPyConnection, target: str, key: str, columns: list[str], label: str, loaded_at: datetime
) -> None:
    """Make the source's rows equal to ``_incoming``: delete gone keys, update kept ones, insert new ones.

    Set-based statements over the registered Arrow table (never row by row). Not a plain delete-all +
    insert: DuckDB 2.0 commits a delete and re-insert of the same primary keys very slowly (about 50x).
    """
    con.execute(
        f"DELETE FROM {target} t WHERE t.source = ? "
        f"AND NOT EXISTS (SELECT 1 FROM _incoming n WHERE n.{key} = t.{key})",
        [label],
    )
    sets = ", ".join(f"{c} = n.{c}" for c in columns if c != key)
    con.execute(
        f"UPDATE {target} AS t SET {sets}, loaded_at = CAST(? AS TIMESTAMPTZ) FROM _incoming n "
        f"WHERE t.{key} = n.{key} AND t.source = ?",
        [loaded_at, label],
    )
    con.execute(
        f"INSERT INTO {target} BY NAME SELECT n.*, CAST(? AS VARCHAR) AS source, "
        f"CAST(? AS TIMESTAMPTZ) AS loaded_at FROM _incoming n "
        f"WHERE NOT EXISTS (SELECT 1 FROM {target} t WHERE t.{key} = n.{key})",
        [label, loaded_at],
    )


def _count(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> int:
    row = con.execute(sql, params).fetchone()
    return int(row[0]) if row else 0


def _refuse_foreign_keys(
    con: duckdb.DuckDBPyConnection, target: str, key: str, rows: pa.Table, label: str
) -> None:
    """Keys already loaded from another source would collide: refuse, naming rows and that source."""
    clash = con.execute(
        f"SELECT t.{key}, t.source FROM {target} t JOIN _incoming n USING ({key}) WHERE t.source <> ? "
        f"ORDER BY t.{key} LIMIT 1000",
        [label],
    ).fetchall()
    if not clash:
        return
    position = {k: i + 1 for i, k in enumerate(rows.column(key).to_pylist())}
    problems = [
        RowProblem(
            position.get(k),
            key,
            f"already loaded from source {other!r}; give source_name={other!r} (CLI --source-name) to "
            "replace that snapshot",
            k,
        )
        for k, other in clash
    ]
    problems.sort(key=lambda p: p.row or 0)
    total = _count(
        con,
        f"SELECT count(*) FROM {target} t JOIN _incoming n USING ({key}) WHERE t.source <> ?",
        [label],
    )
    if total > len(problems):
        problems.append(RowProblem(None, key, f"{total - len(problems)} more keys already loaded elsewhere"))
    raise ValidationError(label, problems)
