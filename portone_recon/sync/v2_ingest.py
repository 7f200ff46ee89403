"""The V2 sync's staging: spooled page bodies -> typed TEMP tables, unreadable items held aside.

Pages of ``GET /payments``, ``/payment-schedules`` and ``/billing-keys`` are spooled as received (one NDJSON
line ``{"n": <page>, "b": <body>}`` per page, :class:`~portone_recon.sync._spool.Spool`). One DuckDB
statement per spool file unnests ``b.items`` (each item's JSON kept as ``raw``) and reads every item with
the SQL reader of :mod:`portone_recon.sync.v2_sql` into a TEMP part table, so no Python loop touches an
item. Only the rare unreadable items come back to Python: the reference reader of
:mod:`portone_recon.api.v2.records` words why each cannot be stored (the reason kept in ``quarantine``).
"""

from __future__ import annotations

import duckdb
import orjson

from portone_recon.api.v2.records import read_billing_key, read_payment, read_schedule
from portone_recon.errors import MalformedResponseError
from portone_recon.sync._spool import Spool, SpoolChunk
from portone_recon.sync.v2_sql import V2Entity, select_sql

_MIB = 1 << 20
#: Unreadable items are worded by the reference reader this many at a time.
_BAD_BATCH = 1000
_READERS = {"payments": read_payment, "schedules": read_schedule, "billing_keys": read_billing_key}


def _read_spool_sql(max_line: int) -> str:
    """SELECT n, idx, item from one spool file of V2 pages (its path is the one parameter)."""
    size = 16 * _MIB
    while size <= max_line + 1024:
        size *= 2
    return (
        "SELECT n, generate_subscripts(b.items, 1) - 1 AS idx, unnest(b.items) AS item "
        f"FROM read_json(?, format = 'newline_delimited', maximum_object_size = {size}, "
        "columns = {'n': 'BIGINT', 'b': 'STRUCT(items JSON[])'})"
    )


class Staging:
    """A stream's spooled pages staged into TEMP part tables of ``con`` as spool files finish.

    Args:
        con: the run's scratch connection.
        entity: what the pages hold.
        spool: the stream's spool (its files are removed once staged).
        name: TEMP table stem.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, entity: V2Entity, spool: Spool, name: str) -> None:
        self.con = con
        self.entity = entity
        self.spool = spool
        self.name = name
        self.parts: list[str] = []
        self._waiting: list[SpoolChunk] = []

    def stage(self, *, final: bool = False, one: bool = False) -> int:
        """Stage finished spool files: every one, or with ``one`` the oldest only (the caller can change
        DuckDB's threads between files); with ``final``, close the spool and stage all the rest.
        Returns how many files were staged."""
        if final:
            self.spool.close()
        self._waiting.extend(self.spool.take_chunks())
        staged = 0
        while self._waiting:
            chunk = self._waiting.pop(0)
            part = f"{self.name}_part{len(self.parts)}"
            self.con.execute(f"DROP TABLE IF EXISTS {part}")
            source = f"({_read_spool_sql(chunk.max_line)})"
            try:
                self.con.execute(
                    f"CREATE TEMP TABLE {part} AS {select_sql(self.entity, source)}", [str(chunk.path)]
                )
            except duckdb.InvalidInputException as exc:
                raise MalformedResponseError(
                    f"page bodies could not be read: {exc}", method="GET", endpoint=self.entity.endpoint
                ) from None
            finally:
                chunk.remove()
            self.parts.append(part)
            staged += 1
            if one and not final:
                return staged
        return staged

    def union(self) -> str:
        """SQL of every staged row (an empty relation of the right shape when nothing was staged)."""
        if not self.parts:
            empty = "(SELECT NULL::BIGINT AS n, NULL::BIGINT AS idx, NULL::JSON AS item WHERE false)"
            part = f"{self.name}_part0"
            self.con.execute(f"DROP TABLE IF EXISTS {part}")
            self.con.execute(f"CREATE TEMP TABLE {part} AS {select_sql(self.entity, empty)}")
            self.parts.append(part)
        return "(" + " UNION ALL ".join(f"SELECT * FROM {p}" for p in self.parts) + ")"

    def finish(self, good: str, order_by: str, bad: str, *, leave_out: str | None = None) -> int:
        """``good``: one readable row per key (the first by ``order_by``), a TEMP view over the parts when
        every readable key came once (no copy), else a TEMP table; ``bad``: record_key, reason and raw of
        each unreadable item, worded by the reference reader. ``leave_out``: a condition on the typed
        columns of readable rows that are not kept at all. Returns the number of items staged."""
        rows = self.union()
        if leave_out is not None:
            rows = f"(SELECT * FROM {rows} WHERE bad OR NOT coalesce(({leave_out}), false))"
        key = self.entity.cols[0][0]
        row = self.con.execute(
            f"SELECT count(*), count(*) FILTER (WHERE bad), count(*) FILTER (WHERE NOT bad) - "
            f"count(DISTINCT {key}) FILTER (WHERE NOT bad) FROM {rows}"
        ).fetchone()
        total, held, dupes = (int(row[0]), int(row[1] or 0), int(row[2] or 0)) if row else (0, 0, 0)
        if held or dupes:
            self.con.execute(
                f"CREATE OR REPLACE TEMP TABLE {good} AS SELECT * EXCLUDE (bad, record_key) FROM {rows} "
                f"WHERE NOT bad QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY {order_by}) = 1"
            )
        else:
            self.con.execute(
                f"CREATE OR REPLACE TEMP VIEW {good} AS SELECT * EXCLUDE (bad, record_key) FROM {rows}"
            )
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {bad} (record_key VARCHAR, reason VARCHAR, raw JSON)")
        for offset in range(0, held, _BAD_BATCH):
            batch = self.con.execute(
                f"SELECT record_key, raw::VARCHAR FROM {rows} WHERE bad ORDER BY n, idx "
                f"LIMIT {_BAD_BATCH} OFFSET {offset}"
            ).fetchall()
            self.con.executemany(
                f"INSERT INTO {bad} VALUES (?, ?, ?)", [(k, self.reason(raw), raw) for k, raw in batch]
            )
        return total

    def drop(self, good: str) -> None:
        """Drop ``good`` and the staged parts (after the stream's merge)."""
        row = self.con.execute(
            "SELECT 'VIEW' FROM duckdb_views() WHERE temporary AND view_name = $n "
            "UNION ALL SELECT 'TABLE' FROM duckdb_tables() WHERE temporary AND table_name = $n",
            {"n": good},
        ).fetchone()
        if row is not None:
            self.con.execute(f"DROP {row[0]} {good}")
        for part in self.parts:
            self.con.execute(f"DROP TABLE IF EXISTS {part}")
        self.parts = []

    def reason(self, raw: str) -> str:
        """Why an item the SQL reader refused cannot be stored, in the reference reader's words."""
        _, why = _READERS[self.entity.name](orjson.loads(raw))
        return why or "not readable by the bulk reader (the single-record reader accepts it)"
