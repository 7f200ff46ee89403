"""Fast ingest: page bodies -> NDJSON spool -> one DuckDB ``read_json`` -> typed, checked staging -> upsert.

No Python loop touches individual items on the way in: each page body is appended to a spool file as
one line ``{"n": <page number>, "b": <the response body>}``. One statement then reads the whole spool,
unnests ``b.response.list`` into one JSON value per item (kept verbatim as ``raw``, with the page number
and the index in the page) and splits each item ONCE into its fields' JSON texts (``json_transform`` to
a struct of ``JSON``); the same statement (parallel over the spool) derives, from those texts alone,
both the typed column values and a per-row check: the JSON type is read from a value's first character
(``"`` string, digit or ``-`` number, ``true``/``false``, ``{``/``[``), so ``"amount": "8900"`` is refused,
not cast. Only when a row is bad is the slower, reference check (:func:`validate`, one JSON type per
field) run on that row to word the error. The de-duplication sort runs only when a key came twice. New
keys are appended without an anti-join when none exists yet.

The SQL here is generated from the column specs below (constants, never user input), so the type
checks, the extraction and the merge can never drift apart. Values are always bound parameters.
:func:`stage_items` + :func:`validate` + :func:`build_typed` are the reference path (one JSON function per
step); the tests check that the fast path types every value exactly as they do.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import duckdb
import orjson

from portone_recon.errors import MalformedResponseError
from portone_recon.sync._spool import Spool, SpoolChunk
from portone_recon.sync.report import TableCounts

Kind = Literal[
    "str", "req_str", "enum", "opt_enum", "amount", "opt_amount", "time", "req_time", "int", "bool"
]


@dataclass(frozen=True)
class Col:
    """One field of a PortOne object and the column it lands in."""

    name: str
    kind: Kind
    allowed: tuple[str, ...] = ()


@dataclass(frozen=True)
class Entity:
    """A PortOne object type, its target table and key.

    ``source`` is SQL over ``item`` giving the object whose fields are read (default the item itself).
    """

    table: str
    key: tuple[str, ...]
    cols: tuple[Col, ...]
    source: str = "item"

    @property
    def columns(self) -> list[str]:
        """The table columns the fields land in (an amount also fills its exact ``<name>_exact``)."""
        out: list[str] = []
        for c in self.cols:
            out.append(c.name)
            if c.kind in _MONEY:
                out.append(f"{c.name}_exact")
        return out


_MONEY = ("amount", "opt_amount")
#: Exact amounts: every currency PortOne serves has at most 2 decimals; no ISO 4217 currency more than 4.
EXACT = "DECIMAL(18, 4)"


def _s(*names: str) -> tuple[Col, ...]:
    return tuple(Col(n, "str") for n in names)


PAYMENT_STATUSES = ("ready", "paid", "failed", "cancelled")

PAYMENTS = Entity(
    table="payments",
    key=("imp_uid",),
    cols=(
        Col("imp_uid", "req_str"),
        Col("merchant_uid", "req_str"),
        *_s("customer_uid", "customer_uid_usage"),
        Col("status", "enum", PAYMENT_STATUSES),
        Col("amount", "amount"),
        Col("cancel_amount", "opt_amount"),
        *_s("currency", "pay_method", "channel", "pg_provider", "pg_tid", "name", "card_name", "card_number"),
        *_s("buyer_name", "buyer_email", "buyer_tel", "custom_data", "fail_reason", "cancel_reason"),
        Col("started_at", "time"),
        Col("paid_at", "time"),
        Col("failed_at", "time"),
        Col("cancelled_at", "time"),
        Col("sandbox", "bool"),
    ),
)

CANCELLATIONS = Entity(
    table="payment_cancellations",
    key=("imp_uid", "cancellation_id"),
    cols=(
        *_s("pg_tid", "cancellation_id", "reason", "receipt_url"),
        Col("amount", "amount"),
        Col("cancelled_at", "time"),
    ),
)

SCHEDULES = Entity(
    table="schedules",
    key=("merchant_uid",),
    cols=(
        Col("merchant_uid", "req_str"),
        Col("customer_uid", "req_str"),
        Col("schedule_status", "enum", ("scheduled", "executed", "revoked")),
        Col("payment_status", "opt_enum", PAYMENT_STATUSES),
        Col("imp_uid", "str"),
        Col("schedule_at", "req_time"),
        Col("executed_at", "time"),
        Col("revoked_at", "time"),
        Col("amount", "amount"),
        *_s("currency", "name", "fail_reason", "custom_data", "buyer_name", "buyer_email", "buyer_tel"),
    ),
)

#: A super billing key (``SuperBillingKeyAnnotation``: one ``customer_uid`` over several channels) has
#: its card fields in ``succeededChannels[]``: the first succeeded channel fills them, the top-level
#: fields of the plain shape (``CustomerAnnotation``) win where both exist.
_KEY_SOURCE = (
    "CASE WHEN json_type(item, '$.succeededChannels[0]') = 'OBJECT' "
    "THEN json_merge_patch(json_extract(item, '$.succeededChannels[0]'), item) ELSE item END"
)

BILLING_KEYS = Entity(
    table="billing_keys",
    key=("customer_uid",),
    source=_KEY_SOURCE,
    cols=(
        Col("customer_uid", "req_str"),
        *_s("pg_provider", "pg_id", "card_name", "card_code", "card_number"),
        Col("card_type", "int"),
        *_s("customer_name", "customer_email", "customer_tel"),
        Col("inserted", "time"),
        Col("updated", "time"),
    ),
)

_EXPECTED: dict[Kind, str] = {
    "str": "a string or null",
    "req_str": "a non-empty string",
    "enum": "one of {allowed}",
    "opt_enum": "null or one of {allowed}",
    "amount": "a number with at most 4 decimals, or null",
    "opt_amount": "a number with at most 4 decimals, or null",
    "time": "unix seconds (an integer >= 0)",
    "req_time": "unix seconds (an integer > 0)",
    "int": "an integer or null",
    "bool": "a boolean or null",
}

_INT_TYPES = "('BIGINT', 'UBIGINT')"

#: PortOne's "updated" of a payment (its latest event; the sandbox sorts ``-updated`` by the same rule),
#: newest first, then the later copy: the order in which duplicate copies of a payment are kept.
_UPDATED_ORDER = (
    "greatest(coalesce(epoch(started_at), 0), coalesce(epoch(paid_at), 0), coalesce(epoch(failed_at), 0), "
    "coalesce(epoch(cancelled_at), 0), coalesce(list_max(list_transform(CAST(cancel_history AS JSON[]), "
    "lambda x: TRY_CAST(x ->> 'cancelled_at' AS BIGINT))), 0)) DESC, n DESC, idx DESC"
)


def _sql_list(values: Sequence[str]) -> str:
    return "(" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + ")"


def _bad_condition(col: Col, i: int) -> str:
    """SQL that is true when field ``col`` (JSON type ``ty[i]``, text ``vs[i]``) is invalid."""
    t, v = f"ty[{i}]", f"vs[{i}]"
    absent = f"({t} IS NULL OR {t} = 'NULL')"
    dbl = f"TRY_CAST({v} AS DOUBLE)"
    integral = f"({t} IN {_INT_TYPES} OR ({t} = 'DOUBLE' AND {dbl} = floor({dbl})))"
    if col.kind in ("str", "int", "bool"):
        return "false"  # informative fields: any JSON value is stored (see _fast_column)
    if col.kind == "req_str":
        return f"{t} IS DISTINCT FROM 'VARCHAR' OR {v} = ''"
    if col.kind == "enum":
        return f"{t} IS DISTINCT FROM 'VARCHAR' OR {v} NOT IN {_sql_list(col.allowed)}"
    if col.kind == "opt_enum":
        return f"NOT {absent} AND ({t} <> 'VARCHAR' OR {v} NOT IN {_sql_list(col.allowed)})"
    if col.kind in _MONEY:
        exact = f"TRY_CAST({v} AS {EXACT})"
        number = f"{t} IN ('BIGINT', 'UBIGINT', 'DOUBLE')"
        return (
            f"NOT {absent} AND NOT coalesce({number} AND {exact} = TRY_CAST({v} AS DECIMAL(38, 12)), false)"
        )
    if col.kind == "time":
        return f"NOT {absent} AND NOT coalesce({integral} AND TRY_CAST({v} AS DOUBLE) >= 0, false)"
    if col.kind == "req_time":
        return f"NOT coalesce({integral} AND TRY_CAST({v} AS DOUBLE) > 0, false)"
    raise AssertionError(col.kind)  # pragma: no cover


def _json_type(col: Col) -> str:
    if col.kind in _MONEY:
        return EXACT
    if col.kind in ("time", "req_time", "int"):
        return "BIGINT"
    if col.kind == "bool":
        return "BOOLEAN"
    return "VARCHAR"


def _typed_expr(col: Col, src: str = "t") -> str:
    """SQL turning the transformed field into its column value."""
    ref = f"{src}.{col.name}"
    if col.kind in ("time", "req_time"):
        return f"CASE WHEN {ref} > 0 THEN to_timestamp({ref}) END"
    if col.kind in _MONEY:
        exact = f"coalesce({ref}, 0)" if col.kind == "opt_amount" else ref
        return f"CASE WHEN {exact} = trunc({exact}) THEN CAST({exact} AS BIGINT) END"
    if col.kind == "bool":
        return f"coalesce({ref}, false)"
    if col.name == "currency":
        return f"coalesce({ref}, 'KRW')"
    return ref


def _transform_spec(cols: Iterable[Col], extra: dict[str, str] | None = None) -> str:
    spec = {c.name: _json_type(c) for c in cols}
    spec.update(extra or {})
    return orjson.dumps(spec).decode()


# -- the fast path: every field's JSON text once, then typed values and checks from the texts ----------


def _is_str(v: str) -> str:
    return f"starts_with({v}, '\"')"


def _str_value(v: str) -> str:
    """A JSON string text -> its value (no escapes: strip the quotes; else let DuckDB unescape)."""
    return (
        f"CASE WHEN starts_with({v}, '\"') THEN CASE WHEN contains({v}, '\\') "
        f"THEN json_extract_string({v}, '$') ELSE {v}[2:-2] END END"
    )


def _int_value(v: str) -> str:
    """A JSON number text that is integral -> BIGINT; anything else (strings too) -> NULL."""
    d = f"TRY_CAST({v} AS DOUBLE)"
    return (
        f"CASE WHEN NOT starts_with({v}, '\"') AND {v} NOT IN ('true', 'false') AND {d} = floor({d}) "
        f"THEN TRY_CAST({v} AS BIGINT) END"
    )


def _fast_column(col: Col) -> tuple[list[str], str | None]:
    """(value expressions with their aliases, bad-condition or None) over ``f.<name>``, the field's JSON
    text or NULL.

    Tolerant where PortOne's published schema is looser than our guesses: informative strings take any
    JSON value (a number as its text), ``card_type``-like integers take numbers or numeric strings
    (unreadable: NULL), booleans anything (only ``true`` is true), and amounts any JSON number exact to
    4 decimals (the integer column is filled only when the amount is whole) or null. Only ids, statuses and
    the instants a row is placed by can make a row unreadable (it is quarantined, not stored).
    """
    v = f"f.{col.name}"
    kind = col.kind
    name = col.name
    bad: str | None
    if kind in ("str", "req_str", "enum", "opt_enum"):
        value = _str_value(v)
        if kind == "str":
            value = f"CASE WHEN starts_with({v}, '\"') THEN {value} ELSE {v}::VARCHAR END"
            bad = None
        elif kind == "req_str":
            bad = f"NOT coalesce({_is_str(v)}, false) OR {v} = '\"\"'"
        else:
            member = f"coalesce({_is_str(v)} AND {v}[2:-2] IN {_sql_list(col.allowed)}, false)"
            bad = f"NOT {member}" if kind == "enum" else f"{v} IS NOT NULL AND NOT {member}"
    elif kind == "bool":
        value = f"coalesce({v} = 'true', false)"
        bad = None
    elif kind in _MONEY:
        number = f"NOT starts_with({v}, '\"') AND {v} NOT IN ('true', 'false')"
        exact = f"CASE WHEN {number} THEN TRY_CAST({v} AS {EXACT}) END"
        if kind == "opt_amount":
            exact = f"coalesce({exact}, 0)"
        # Only a text with a fraction or an exponent can hold more than 4 decimals.
        lossy = (
            f"(contains({v}, '.') OR contains({v}, 'e') OR contains({v}, 'E')) "
            f"AND TRY_CAST({v} AS DECIMAL(38, 12)) IS DISTINCT FROM TRY_CAST({v} AS {EXACT})"
        )
        bad = f"{v} IS NOT NULL AND (({number}) IS NOT TRUE OR TRY_CAST({v} AS {EXACT}) IS NULL OR {lossy})"
        whole = f"CASE WHEN ({exact}) = trunc(({exact})) THEN CAST(({exact}) AS BIGINT) END"
        return [f"{whole} AS {name}", f"{exact} AS {name}_exact"], bad
    elif kind == "int":
        text = f"CASE WHEN starts_with({v}, '\"') THEN {v}[2:-2] ELSE {v}::VARCHAR END"
        d = f"TRY_CAST({text} AS DOUBLE)"
        value = f"CASE WHEN {d} = floor({d}) THEN TRY_CAST({d} AS BIGINT) END"
        bad = None
    else:
        num = _int_value(v)
        if kind == "time":
            bad = f"{v} IS NOT NULL AND NOT coalesce(({num}) >= 0, false)"
        else:  # req_time
            bad = f"NOT coalesce(({num}) > 0, false)"
        value = f"CASE WHEN ({num}) > 0 THEN to_timestamp(({num})) END"
    if name == "currency":
        value = f"coalesce({value}, 'KRW')"
    return [f"{value} AS {name}"], bad


_MIB = 1 << 20


def _read_spool_sql(max_line: int) -> str:
    """SELECT n, idx, item (one JSON value per item) from a spool file (its path is the one parameter).

    ``maximum_object_size`` is the smallest power of two (at least DuckDB's default, 16 MiB) above the
    file's longest line: DuckDB sizes its read buffers by it, and a huge fixed value (512 MiB) made
    the read single-threaded and 2-4x slower (benchmarks/RESULTS.md, section 2).
    """
    size = 16 * _MIB
    while size <= max_line + 1024:
        size *= 2
    return (
        "SELECT n, generate_subscripts(b.response.list, 1) - 1 AS idx, unnest(b.response.list) AS item "
        f"FROM read_json(?, format = 'newline_delimited', maximum_object_size = {size}, "
        "columns = {'n': 'BIGINT', 'b': 'STRUCT(response STRUCT(list JSON[]))'})"
    )


def stage_typed(
    con: duckdb.DuckDBPyConnection,
    spool: Spool,
    entity: Entity,
    typed_table: str,
    *,
    nested: str | None = None,
    final: bool = True,
) -> int:
    """Read the spool into TEMP table ``typed_table``: n, idx, typed columns, ``raw`` (and ``nested``).

    Stages every file the spool has finished so far into a TEMP part table; ``final`` closes the spool
    first, stages the rest and makes ``typed_table`` a TEMP view over the parts. So a stream's pages
    can be staged while later pages are still being fetched (TEMP rows are not committed state).

    Raises :class:`MalformedResponseError` for the first bad item (page order, then column order),
    worded by :func:`validate`. ``nested`` names an array field kept as JSON text (``cancel_history``);
    it must be an array or null. Returns the item count (0 when not ``final``).
    """
    if final:
        spool.close()
    chunks = spool.take_chunks()
    if not chunks and not final:
        return 0  # polled while the fetch runs: nothing finished yet
    fields = {c.name: "JSON" for c in entity.cols}
    if nested:
        fields[nested] = "JSON"
    spec = orjson.dumps(fields).decode()
    checks = ["WHEN NOT starts_with(item::VARCHAR, '{') THEN 0"]
    values = []
    for i, col in enumerate(entity.cols):
        exprs, bad = _fast_column(col)
        values.extend(exprs)
        if bad is not None:
            checks.append(f"WHEN {bad} THEN {i + 1}")
    extra = ""
    if nested:
        checks.append(f"WHEN f.{nested} IS NOT NULL AND NOT starts_with(f.{nested}, '[') THEN -1")
        extra = f", f.{nested} AS {nested}"
    # One statement per chunk, parallel over the file: read, unnest, split each item ONCE into its fields'
    # JSON texts (json_transform to a struct of JSON), then typed values and the per-row check from them.
    select = (
        f"SELECT n, idx, {', '.join(values)}, item AS raw, hash(item::VARCHAR) AS raw_hash{extra}, "
        f"CASE {' '.join(checks)} END AS bad "
        f"FROM (SELECT n, idx, item, json_transform({entity.source}, '{spec}') AS f FROM <source>)"
    )
    if spool.staged_into != typed_table:
        spool.staged_into, spool.staged_parts = typed_table, []
    # Each finished file becomes its own TEMP table: appending to one TEMP table chunk by chunk made some
    # appends 5x slower than the rest (about 1 s at 90k rows), and COMMIT 3x slower inside a transaction.
    for chunk in chunks:
        part = f"{typed_table}_part{len(spool.staged_parts)}"
        con.execute(f"DROP TABLE IF EXISTS {part}")
        try:
            con.execute(
                f"CREATE TEMP TABLE {part} AS "
                + select.replace("<source>", f"({_read_spool_sql(chunk.max_line)})"),
                [str(chunk.path)],
            )
        except duckdb.InvalidInputException as exc:
            raise _unreadable(chunk, spool.endpoints, exc) from None
        finally:
            chunk.remove()
        spool.staged_parts.append(part)
    if not final:
        return 0
    parts = spool.staged_parts
    if not parts:
        part = f"{typed_table}_part0"
        empty = "(SELECT NULL::BIGINT AS n, NULL::BIGINT AS idx, NULL::JSON AS item) WHERE false"
        con.execute(f"DROP TABLE IF EXISTS {part}")
        con.execute(f"CREATE TEMP TABLE {part} AS " + select.replace("<source>", empty))
        parts.append(part)
    # A view over the parts, not a copy (copying 1e5 staged rows cost 0.35 s after the last page).
    _drop_relation(con, typed_table)
    con.execute(
        f"CREATE TEMP VIEW {typed_table} AS " + " UNION ALL ".join(f"SELECT * FROM {p}" for p in parts)
    )
    row = con.execute(f"SELECT count(*) FROM {typed_table}").fetchone()
    return int(row[0]) if row else 0


_LINE_HEAD = re.compile(rb'\{"n":(\d+),')


def _unreadable(chunk: SpoolChunk, endpoints: Sequence[str], exc: Exception) -> MalformedResponseError:
    """DuckDB could not read a spool file: name the first page whose body is not a listing envelope."""
    with open(chunk.path, "rb") as f:
        for line in f:
            head = _LINE_HEAD.match(line)  # the page number, even when the rest is not JSON
            n = int(head[1]) if head else -1
            try:
                doc = orjson.loads(line)
                items = doc["b"]["response"]["list"]
                if not isinstance(items, list):
                    raise TypeError(type(items).__name__)
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as bad:
                endpoint = endpoints[n] if 0 <= n < len(endpoints) else ""
                what = "not JSON" if isinstance(bad, orjson.JSONDecodeError) else "not a listing envelope"
                return MalformedResponseError(
                    f"page body is {what} ({bad})", method="GET", endpoint=endpoint, field="<body>"
                )
    return MalformedResponseError(f"page bodies could not be read: {exc}", method="GET", endpoint="")


def _drop_relation(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Drop TEMP table or view ``name`` if it exists (DuckDB refuses DROP TABLE on a view)."""
    row = con.execute(
        "SELECT 'VIEW' FROM duckdb_views() WHERE temporary AND view_name = $n "
        "UNION ALL SELECT 'TABLE' FROM duckdb_tables() WHERE temporary AND table_name = $n",
        {"n": name},
    ).fetchone()
    if row is not None:
        con.execute(f"DROP {row[0]} {name}")


def _reason_sql(entity: Entity, nested: str | None) -> str:
    """SQL wording why a staged row (columns ``bad``, ``idx``, ``raw``) could not be read."""
    where = "'response.list[' || idx || ']"
    cases = [f"WHEN 0 THEN {where}: expected an object, got ' || coalesce(json_type(raw), '?')"]
    for i, col in enumerate(entity.cols):
        expected = _EXPECTED[col.kind].format(allowed=list(col.allowed)).replace("'", "''")
        got = (
            f"coalesce(json_type(raw, '$.{col.name}') || ' ' || "
            f"left(json_extract(raw, '$.{col.name}')::VARCHAR, 60), 'missing')"
        )
        cases.append(f"WHEN {i + 1} THEN {where}.{col.name}: expected {expected}, got ' || {got}")
    if nested:
        cases.append(
            f"WHEN -1 THEN {where}.{nested}: expected an array or null, got ' || "
            f"coalesce(json_type(raw, '$.{nested}'), '?')"
        )
    return f"CASE bad {' '.join(cases)} END"


def record_quarantine(
    con: duckdb.DuckDBPyConnection,
    entity: Entity,
    rows: str,
    endpoints: Sequence[str],
    *,
    stream: str,
    seen_at: datetime,
) -> TableCounts:
    """Upsert ``rows`` (SQL with n, idx, the key column, raw, raw_hash, reason) into ``quarantine``.

    Returns new rows and rows seen again (one per distinct raw text).
    """
    key = entity.key[0]
    con.execute("DROP TABLE IF EXISTS _sync_quarantine")
    con.execute(
        "CREATE TEMP TABLE _sync_quarantine AS SELECT $source AS source, "
        f"CAST({key} AS VARCHAR) AS record_key, "
        "coalesce(list_extract($endpoints::VARCHAR[], CAST(n AS BIGINT) + 1), '') AS endpoint, "
        f"reason, raw, raw_hash FROM {rows} "
        "QUALIFY row_number() OVER (PARTITION BY raw_hash ORDER BY n DESC, idx DESC) = 1",
        {"source": entity.table, "endpoints": list(endpoints)},
    )
    row = con.execute(
        "SELECT count(*) FILTER (WHERE q.raw_hash IS NULL), count(*) FILTER (WHERE q.raw_hash IS NOT NULL) "
        "FROM _sync_quarantine s LEFT JOIN quarantine q USING (source, raw_hash)"
    ).fetchone()
    new, again = (int(row[0]), int(row[1])) if row else (0, 0)
    con.execute(
        "INSERT INTO quarantine (source, record_key, endpoint, reason, stream, raw, raw_hash, first_seen, "
        "last_seen) SELECT source, record_key, endpoint, reason, $stream, raw, raw_hash, $at, $at "
        "FROM _sync_quarantine ON CONFLICT (source, raw_hash) DO UPDATE SET last_seen = excluded.last_seen, "
        "reason = excluded.reason, endpoint = excluded.endpoint, stream = excluded.stream, "
        "record_key = excluded.record_key",
        {"stream": stream, "at": seen_at},
    )
    return TableCounts(new, again)


def quarantine_bad(
    con: duckdb.DuckDBPyConnection,
    entity: Entity,
    typed_table: str,
    endpoints: Sequence[str],
    *,
    stream: str,
    seen_at: datetime,
    nested: str | None = None,
) -> TableCounts:
    """Move the staged rows marked ``bad`` into ``quarantine``; ``typed_table`` keeps the readable ones.

    A record the sync cannot read never stops the stream: it is kept as received, with its endpoint and
    the first field that failed, and everything else is stored.
    """
    row = con.execute(f"SELECT count(*) FROM {typed_table} WHERE bad IS NOT NULL").fetchone()
    if not row or not row[0]:
        return TableCounts()
    counts = record_quarantine(
        con,
        entity,
        f"(SELECT *, {_reason_sql(entity, nested)} AS reason FROM {typed_table} WHERE bad IS NOT NULL)",
        endpoints,
        stream=stream,
        seen_at=seen_at,
    )
    keep(con, typed_table, "bad IS NULL")
    return counts


def keep(con: duckdb.DuckDBPyConnection, typed_table: str, condition: str) -> None:
    """Replace ``typed_table`` (a table or a view) by a table of its rows matching ``condition``."""
    kept = f"{typed_table}_kept"
    con.execute(f"CREATE OR REPLACE TEMP TABLE {kept} AS SELECT * FROM {typed_table} WHERE {condition}")
    _drop_relation(con, typed_table)
    con.execute(f"ALTER TABLE {kept} RENAME TO {typed_table}")


def release_quarantine(con: duckdb.DuckDBPyConnection, entity: Entity, typed_table: str) -> None:
    """Forget quarantined records of ``entity`` whose key was just stored cleanly (PortOne fixed them)."""
    if not con.execute("SELECT 1 FROM quarantine WHERE source = ? LIMIT 1", [entity.table]).fetchone():
        return
    key = entity.key[0]
    con.execute(
        f"DELETE FROM quarantine WHERE source = ? AND record_key IN (SELECT {key} FROM {typed_table})",
        [entity.table],
    )


def dedupe(con: duckdb.DuckDBPyConnection, entity: Entity, typed_table: str, order_by: str) -> int:
    """Keep one row per key (the first by ``order_by``) when a key came twice; returns rows dropped.

    ``typed_table`` may be a table or a view (what :func:`stage_typed` leaves); it is replaced by a table.
    """
    key = ", ".join(entity.key)
    row = con.execute(f"SELECT count(*) - count(DISTINCT ({key})) FROM {typed_table}").fetchone()
    dupes = int(row[0]) if row else 0
    if dupes:
        kept = f"{typed_table}_kept"
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {kept} AS SELECT * FROM {typed_table} "
            f"QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY {order_by}) = 1"
        )
        _drop_relation(con, typed_table)
        con.execute(f"ALTER TABLE {kept} RENAME TO {typed_table}")
    return dupes


# -- staging and validation -------------------------------------------------------------------


def stage_items(con: duckdb.DuckDBPyConnection, spool: Spool, name: str) -> int:
    """Reference path: the spool into TEMP table ``name`` (n, idx, item JSON); returns the item count."""
    spool.close()
    con.execute(f"DROP TABLE IF EXISTS {name}")
    con.execute(f"CREATE TEMP TABLE {name} (n BIGINT, idx BIGINT, item JSON)")
    for chunk in spool.take_chunks():
        try:
            con.execute(f"INSERT INTO {name} {_read_spool_sql(chunk.max_line)}", [str(chunk.path)])
        finally:
            chunk.remove()
    row = con.execute(f"SELECT count(*) FROM {name}").fetchone()
    return int(row[0]) if row else 0


def find_bad(
    con: duckdb.DuckDBPyConnection,
    source: str,
    entity_cols: Sequence[Col],
    endpoints: Sequence[str],
    *,
    item: str = "item",
    path: str = "response.list[{idx}]",
    extra_cols: str = "",
    limit: int | None = None,
) -> list[tuple[int, int, MalformedResponseError]]:
    """The items (page order) with a bad field: ``(n, idx, error naming endpoint and field)``.

    ``source`` is a table or subquery with columns n, idx, ``item`` (and for nested lists ``cidx``).
    """
    paths = "[" + ", ".join(f"'$.{c.name}'" for c in entity_cols) + "]"
    # Materialise the per-field JSON types and texts once (one JSON parse per item): DuckDB would
    # re-evaluate the list expressions once per reference in the checks below.
    con.execute("DROP TABLE IF EXISTS _sync_check")
    con.execute(
        f"CREATE TEMP TABLE _sync_check AS SELECT n, idx{extra_cols}, json_type({item}) AS it, "
        f"json_type({item}, {paths}) AS ty, json_extract_string({item}, {paths}) AS vs FROM {source}"
    )
    conds = ["WHEN it IS DISTINCT FROM 'OBJECT' THEN 0"]
    conds += [f"WHEN {_bad_condition(c, i + 1)} THEN {i + 1}" for i, c in enumerate(entity_cols)]
    sql = (
        f"SELECT n, idx{extra_cols}, bad, it, ty, vs FROM ("
        f"SELECT *, CASE {' '.join(conds)} END AS bad FROM _sync_check) "
        f"WHERE bad IS NOT NULL ORDER BY n, idx{extra_cols}" + (f" LIMIT {int(limit)}" if limit else "")
    )
    out: list[tuple[int, int, MalformedResponseError]] = []
    for row in con.execute(sql).fetchall():
        n, idx = int(row[0]), int(row[1])
        extra_vals = row[2 : 2 + (extra_cols.count(",") if extra_cols else 0)]
        bad, item_type, types, values = row[-4], row[-3], row[-2], row[-1]
        where = path.format(idx=idx, **{f"x{i}": int(v) for i, v in enumerate(extra_vals)})
        endpoint = endpoints[n] if 0 <= n < len(endpoints) else ""
        if bad == 0:
            err = MalformedResponseError(
                f"expected an object, got {item_type}", method="GET", endpoint=endpoint, field=where
            )
        else:
            col = entity_cols[bad - 1]
            got_type = types[bad - 1] if types else None
            got = "missing" if got_type is None else f"{got_type} {values[bad - 1]!r:.60}"
            expected = _EXPECTED[col.kind].format(allowed=list(col.allowed))
            err = MalformedResponseError(
                f"expected {expected}, got {got}",
                method="GET",
                endpoint=endpoint,
                field=f"{where}.{col.name}",
            )
        out.append((n, idx, err))
    return out


def validate(
    con: duckdb.DuckDBPyConnection,
    source: str,
    entity_cols: Sequence[Col],
    endpoints: Sequence[str],
    *,
    item: str = "item",
    path: str = "response.list[{idx}]",
    extra_cols: str = "",
) -> None:
    """Raise :class:`MalformedResponseError` for the first item (page order) with a bad field."""
    bad = find_bad(con, source, entity_cols, endpoints, item=item, path=path, extra_cols=extra_cols, limit=1)
    if bad:
        raise bad[0][2]


# -- typed staging and merge --------------------------------------------------------------------


def build_typed(
    con: duckdb.DuckDBPyConnection,
    entity: Entity,
    items_table: str,
    typed_table: str,
    *,
    extra_select: str = "",
    order_by: str = "n DESC, idx DESC",
) -> None:
    """TEMP table ``typed_table``: one typed row per key (the newest when a key came twice)."""
    spec = _transform_spec(entity.cols)
    exprs = []
    for c in entity.cols:
        exprs.append(f"{_typed_expr(c)} AS {c.name}")
        if c.kind in _MONEY:
            ref = f"t.{c.name}"
            exprs.append(f"{f'coalesce({ref}, 0)' if c.kind == 'opt_amount' else ref} AS {c.name}_exact")
    cols = ", ".join(exprs)
    key = ", ".join(entity.key)
    con.execute(f"DROP TABLE IF EXISTS {typed_table}")
    con.execute(
        f"CREATE TEMP TABLE {typed_table} AS SELECT * EXCLUDE (t) FROM ("
        f"SELECT n, idx, {cols}, item::VARCHAR AS raw, hash(item::VARCHAR) AS raw_hash{extra_select}, t "
        "FROM ("
        f"SELECT n, idx, item, json_transform(item, '{spec}') AS t FROM {items_table})) "
        f"QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY {order_by}) = 1"
    )


def merge(
    con: duckdb.DuckDBPyConnection,
    entity: Entity,
    typed_table: str,
    synced_at: datetime,
    *,
    changed: str = "t.raw_hash IS DISTINCT FROM s.raw_hash",
    extra_set: dict[str, str] | None = None,
    columns: Sequence[str] | None = None,
    with_raw: bool = True,
) -> TableCounts:
    """Insert new keys, update rows whose content changed; untouched rows keep their ``synced_at``.

    "Changed" compares ``raw_hash`` (a 64-bit hash of the raw JSON text, migration 0004) by default: the
    join reads 8 bytes per stored row instead of decompressing every stored ``raw``; a NULL hash (unknown)
    always counts as changed.
    """
    names = list(columns) if columns is not None else entity.columns
    extra = dict(extra_set or {})
    target = entity.table
    join = " AND ".join(f"t.{k} = s.{k}" for k in entity.key)
    row = con.execute(
        f"SELECT count(*) FILTER (WHERE t.{entity.key[0]} IS NULL), "
        f"count(*) FILTER (WHERE t.{entity.key[0]} IS NOT NULL AND ({changed})), count(*) "
        f"FROM {typed_table} s LEFT JOIN {target} t ON {join}"
    ).fetchone()
    new, updated, total = (int(row[0]), int(row[1]), int(row[2])) if row else (0, 0, 0)
    set_cols = [n for n in names if n not in entity.key]
    has_raw = with_raw and "raw" not in extra
    assignments = [f"{n} = s.{n}" for n in set_cols]
    if has_raw:
        assignments += ["raw = s.raw", "raw_hash = s.raw_hash"]
    assignments += [f"{k} = {v}" for k, v in extra.items()]
    assignments.append("synced_at = $synced_at")
    if updated:
        con.execute(
            f"UPDATE {target} AS t SET {', '.join(assignments)} FROM {typed_table} s "
            f"WHERE {join} AND ({changed})",
            {"synced_at": synced_at},
        )
    if new:
        raw_cols = ["raw", "raw_hash"] if has_raw else []
        insert_cols = [*names, *raw_cols, *extra.keys(), "synced_at"]
        values = [f"s.{n}" for n in names] + [f"s.{c}" for c in raw_cols] + list(extra.values())
        values.append("$synced_at")
        con.execute(
            f"INSERT INTO {target} ({', '.join(insert_cols)}) "
            f"SELECT {', '.join(values)} FROM {typed_table} s "
            # Every key is new (a first sync): no anti-join needed (keys are unique in typed_table).
            + ("" if new == total else f"WHERE NOT EXISTS (SELECT 1 FROM {target} t WHERE {join})"),
            {"synced_at": synced_at},
        )
    return TableCounts(new, updated)


# -- per-entity pipelines ------------------------------------------------------------------------


def stage_payments(con: duckdb.DuckDBPyConnection, spool: Spool, *, final: bool = False) -> int:
    """Stage the finished files of a payments spool (all of it with ``final``) into ``_sync_payments``."""
    return stage_typed(con, spool, PAYMENTS, "_sync_payments", nested="cancel_history", final=final)


def stage_schedules(con: duckdb.DuckDBPyConnection, spool: Spool, *, final: bool = False) -> int:
    """Stage the finished files of a schedules spool (all of it with ``final``) into ``_sync_schedules``."""
    return stage_typed(con, spool, SCHEDULES, "_sync_schedules", final=final)


def ingest_payments(
    con: duckdb.DuckDBPyConnection,
    spool: Spool,
    synced_at: datetime,
    *,
    stream: str = "",
) -> dict[str, TableCounts]:
    """Stage (what is not staged yet), check and merge a spool of payment pages (and cancel_history).

    Unreadable payments (and payments with an unreadable refund entry) go to ``quarantine``.
    """
    stage_payments(con, spool, final=True)
    held = quarantine_bad(
        con,
        PAYMENTS,
        "_sync_payments",
        spool.endpoints,
        stream=stream,
        seen_at=synced_at,
        nested="cancel_history",
    )
    # Only payments with refunds have history entries: unnest those few (every copy is checked).
    con.execute("DROP TABLE IF EXISTS _sync_hist")
    con.execute(
        "CREATE TEMP TABLE _sync_hist AS SELECT n, idx, "
        "generate_subscripts(h, 1) - 1 AS cidx, unnest(h) AS item, imp_uid FROM ("
        "SELECT n, idx, imp_uid, CAST(cancel_history AS JSON[]) AS h FROM _sync_payments "
        "WHERE cancel_history IS NOT NULL AND cancel_history <> '[]')"
    )
    bad = find_bad(
        con,
        "_sync_hist",
        CANCELLATIONS.cols,
        spool.endpoints,
        path="response.list[{idx}].cancel_history[{x0}]",
        extra_cols=", cidx",
    )
    if bad:
        held += _quarantine_history(con, bad, spool.endpoints, stream, synced_at)
    # The same imp_uid twice (it moved between status listings mid-run): keep its latest state.
    dedupe(con, PAYMENTS, "_sync_payments", _UPDATED_ORDER)
    counts = {"payments": merge(con, PAYMENTS, "_sync_payments", synced_at)}
    counts["payment_cancellations"] = _merge_cancellations(con, synced_at)
    release_quarantine(con, PAYMENTS, "_sync_payments")
    counts["quarantine"] = held
    return counts


def _quarantine_history(
    con: duckdb.DuckDBPyConnection,
    bad: Sequence[tuple[int, int, MalformedResponseError]],
    endpoints: Sequence[str],
    stream: str,
    seen_at: datetime,
) -> TableCounts:
    """Quarantine the payments holding an unreadable ``cancel_history`` entry (payment and refunds)."""
    con.execute("CREATE OR REPLACE TEMP TABLE _sync_badhist (n BIGINT, idx BIGINT, reason VARCHAR)")
    first: dict[tuple[int, int], str] = {}
    for n, idx, err in bad:
        first.setdefault((n, idx), f"{err.field}: {err.detail.rsplit(' (field ', 1)[0]}")
    con.executemany("INSERT INTO _sync_badhist VALUES (?, ?, ?)", [(n, i, r) for (n, i), r in first.items()])
    counts = record_quarantine(
        con,
        PAYMENTS,
        "(SELECT p.*, b.reason FROM _sync_payments p JOIN _sync_badhist b USING (n, idx))",
        endpoints,
        stream=stream,
        seen_at=seen_at,
    )
    gone = "EXISTS (SELECT 1 FROM _sync_badhist b WHERE b.n = {t}.n AND b.idx = {t}.idx)"
    keep(con, "_sync_payments", "NOT " + gone.format(t="_sync_payments"))
    keep(con, "_sync_hist", "NOT " + gone.format(t="_sync_hist"))
    return counts


def _merge_cancellations(con: duckdb.DuckDBPyConnection, synced_at: datetime) -> TableCounts:
    spec = _transform_spec(CANCELLATIONS.cols)
    # Only the newest copy of each payment counts (the same imp_uid may have come twice).
    con.execute("DROP TABLE IF EXISTS _sync_cancels")
    con.execute(
        "CREATE TEMP TABLE _sync_cancels AS SELECT h.imp_uid, "
        "coalesce(t.cancellation_id, coalesce(t.pg_tid, '') || '@' || coalesce(t.cancelled_at, 0)::VARCHAR) "
        "AS cancellation_id, t.pg_tid, "
        "CASE WHEN t.amount = trunc(t.amount) THEN CAST(t.amount AS BIGINT) END AS amount, "
        "t.amount AS amount_exact, "
        "CASE WHEN t.cancelled_at > 0 THEN to_timestamp(t.cancelled_at) END AS cancelled_at, "
        "t.reason, t.receipt_url FROM ("
        f"SELECT h.*, json_transform(h.item, '{spec}') AS t FROM _sync_hist h "
        "JOIN _sync_payments p ON p.n = h.n AND p.idx = h.idx) h "
        "QUALIFY row_number() OVER (PARTITION BY h.imp_uid, cancellation_id ORDER BY h.cidx DESC) = 1"
    )
    names = [
        "imp_uid",
        "cancellation_id",
        "pg_tid",
        "amount",
        "amount_exact",
        "cancelled_at",
        "reason",
        "receipt_url",
    ]
    changed = " OR ".join(f"t.{c} IS DISTINCT FROM s.{c}" for c in names[2:])
    counts = merge(
        con,
        CANCELLATIONS,
        "_sync_cancels",
        synced_at,
        changed=changed,
        columns=names,
        with_raw=False,
    )
    # Cancel records never disappear at PortOne; drop any stored one the newest copy no longer lists.
    con.execute(
        "DELETE FROM payment_cancellations AS c WHERE c.imp_uid IN (SELECT imp_uid FROM _sync_payments) "
        "AND NOT EXISTS (SELECT 1 FROM _sync_cancels s WHERE s.imp_uid = c.imp_uid "
        "AND s.cancellation_id = c.cancellation_id)"
    )
    return counts


def ingest_schedules(
    con: duckdb.DuckDBPyConnection, spool: Spool, synced_at: datetime, *, stream: str = ""
) -> dict[str, TableCounts]:
    """Stage (what is not staged yet), check and merge a spool of schedule pages (unreadable ones held)."""
    stage_schedules(con, spool, final=True)
    held = quarantine_bad(
        con, SCHEDULES, "_sync_schedules", spool.endpoints, stream=stream, seen_at=synced_at
    )
    dedupe(con, SCHEDULES, "_sync_schedules", "n DESC, idx DESC")
    counts = merge(con, SCHEDULES, "_sync_schedules", synced_at)
    release_quarantine(con, SCHEDULES, "_sync_schedules")
    return {"schedules": counts, "quarantine": held}


def ingest_billing_keys(
    con: duckdb.DuckDBPyConnection,
    spool: Spool,
    missing: Sequence[str],
    synced_at: datetime,
    seen_at: datetime | None = None,
    *,
    stream: str = "",
    by_lookup: Collection[str] = (),
) -> dict[str, TableCounts]:
    """Merge found billing keys (un-deleting re-issued ones) and mark ``missing`` ones deleted.

    ``missing`` must be keys PortOne says are gone: by their own GET's 404 (``deleted_proof =
    'single_get'``), or, for those also in ``by_lookup``, by the multi-lookup leaving them out
    (``'lookup'``; see :mod:`portone_recon.sync._keys`). A deletion stored on the lookup's word that a
    GET has since proven is upgraded. ``deleted_seen_at`` is ``seen_at`` (PortOne's clock at the run;
    default ``synced_at``), set once. A key the V2 sync stored (``source_api = 'v2'``) is left alone:
    the V1 lookups do not see V2 keys. Unreadable keys are quarantined.
    """
    seen = seen_at if seen_at is not None else synced_at
    stage_typed(con, spool, BILLING_KEYS, "_sync_keys")
    held = quarantine_bad(con, BILLING_KEYS, "_sync_keys", spool.endpoints, stream=stream, seen_at=synced_at)
    dedupe(con, BILLING_KEYS, "_sync_keys", "n DESC, idx DESC")
    counts = merge(
        con,
        BILLING_KEYS,
        "_sync_keys",
        synced_at,
        changed="(t.raw_hash IS DISTINCT FROM s.raw_hash OR t.deleted) "
        "AND t.source_api IS DISTINCT FROM 'v2'",
        extra_set={
            "raw": "s.raw",
            "raw_hash": "s.raw_hash",
            "deleted": "false",
            "deleted_seen_at": "NULL",
            "deleted_proof": "NULL",
        },
    )
    release_quarantine(con, BILLING_KEYS, "_sync_keys")
    if not missing:
        return {"billing_keys": counts, "quarantine": held}
    lookup = set(by_lookup)
    con.execute("DROP TABLE IF EXISTS _sync_missing")
    con.execute("CREATE TEMP TABLE _sync_missing (customer_uid VARCHAR, proof VARCHAR)")
    con.execute(
        "INSERT INTO _sync_missing SELECT DISTINCT * FROM "
        "(SELECT unnest($ids::VARCHAR[]) AS customer_uid, unnest($proofs::VARCHAR[]) AS proof)",
        {
            "ids": list(missing),
            "proofs": ["lookup" if c in lookup else "single_get" for c in missing],
        },
    )
    row = con.execute(
        "SELECT count(*) FILTER (WHERE b.customer_uid IS NULL), "
        "count(*) FILTER (WHERE NOT b.deleted AND b.source_api IS DISTINCT FROM 'v2') "
        "FROM _sync_missing m LEFT JOIN billing_keys b USING (customer_uid)"
    ).fetchone()
    new, updated = (int(row[0]), int(row[1])) if row else (0, 0)
    con.execute(
        "UPDATE billing_keys SET deleted = true, deleted_seen_at = $seen, deleted_proof = m.proof, "
        "synced_at = $at FROM _sync_missing m WHERE billing_keys.customer_uid = m.customer_uid "
        "AND NOT billing_keys.deleted AND billing_keys.source_api IS DISTINCT FROM 'v2'",
        {"at": synced_at, "seen": seen},
    )
    con.execute(
        "UPDATE billing_keys SET deleted_proof = 'single_get', synced_at = $at FROM _sync_missing m "
        "WHERE billing_keys.customer_uid = m.customer_uid AND billing_keys.deleted "
        "AND billing_keys.deleted_proof = 'lookup' AND m.proof = 'single_get'",
        {"at": synced_at},
    )
    con.execute(
        "INSERT INTO billing_keys (customer_uid, deleted, deleted_seen_at, deleted_proof, synced_at) "
        "SELECT customer_uid, true, $seen, proof, $at FROM _sync_missing m "
        "WHERE NOT EXISTS (SELECT 1 FROM billing_keys b WHERE b.customer_uid = m.customer_uid)",
        {"at": synced_at, "seen": seen},
    )
    return {"billing_keys": counts + TableCounts(new, updated), "quarantine": held}
