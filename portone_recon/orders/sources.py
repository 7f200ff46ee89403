"""Read an orders/subscriptions source into a raw DataFrame: DataFrame, CSV, xlsx, Parquet or SQL."""

from __future__ import annotations

import codecs
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from portone_recon.errors import SourceError

SourceKind = Literal["dataframe", "csv", "xlsx", "parquet", "sql"]
Source = pd.DataFrame | str | Path

_SUFFIX_KIND: dict[str, SourceKind] = {
    ".csv": "csv",
    ".txt": "csv",
    ".xlsx": "xlsx",
    ".xlsm": "xlsx",
    ".parquet": "parquet",
    ".pq": "parquet",
}
_SQL_EXTRA = "the 'sql' extra (pip install 'portone-recon[sql]': sqlalchemy, psycopg, pymysql)"


@dataclass(frozen=True)
class SourceDescriptor:
    """Where a snapshot came from; recorded in ``source_loads`` (never with a password).

    Attributes:
        kind: dataframe | csv | xlsx | parquet | sql.
        location: absolute file path, SQLAlchemy URL without password, or a DataFrame's name.
        table: the SQL table, when read by table.
        query: the SQL query, when read by query.
        encoding: the CSV encoding used (detected or given).
    """

    kind: SourceKind
    location: str
    table: str | None = None
    query: str | None = None
    encoding: str | None = None

    @property
    def label(self) -> str:
        """A short stable name, the ``source`` column of the loaded rows."""
        if self.kind == "dataframe":
            return self.location
        base = f"{self.kind}:{self.location}"
        if self.table:
            return f"{base}#table={self.table}"
        if self.query:
            digest = hashlib.sha1(self.query.encode("utf-8")).hexdigest()[:12]
            return f"{base}#query={digest}"
        return base

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "location": self.location,
            "table": self.table,
            "query": self.query,
            "encoding": self.encoding,
        }


def is_sql_url(text: str) -> bool:
    """True for an SQLAlchemy URL such as ``postgresql+psycopg://user@host/db``."""
    head, sep, _ = text.partition("://")
    return bool(sep) and head.replace("+", "").replace("_", "").isalnum() and not Path(text).exists()


def _sqlalchemy() -> Any:
    try:
        import sqlalchemy
    except ImportError as exc:
        raise SourceError(f"reading or writing a SQL source needs {_SQL_EXTRA}") from exc
    return sqlalchemy


def safe_url(url: str) -> str:
    """The URL without its password (and without password-like query parameters)."""
    sa = _sqlalchemy()
    try:
        parsed = sa.engine.make_url(url)
    except Exception:
        # Never echo the text back: it may hold a password.
        raise SourceError(
            "not a valid SQLAlchemy URL (expected e.g. postgresql+psycopg://user@host/db)"
        ) from None
    query = {k: v for k, v in parsed.query.items() if "pass" not in k.lower() and "pwd" not in k.lower()}
    # URL.set(password=None) keeps the password ("None" means unchanged there): rebuild instead.
    bare = sa.engine.URL.create(
        parsed.drivername,
        username=parsed.username,
        host=parsed.host,
        port=parsed.port,
        database=parsed.database,
        query=query,
    )
    text: str = bare.render_as_string(hide_password=False)
    return text


def make_engine(url: str) -> Any:
    """An SQLAlchemy engine; a missing driver is named together with the ``sql`` extra."""
    sa = _sqlalchemy()
    try:
        return sa.create_engine(url)
    except ImportError as exc:  # the DBAPI driver (psycopg, pymysql) is missing
        raise SourceError(
            f"{safe_url(url)}: driver not installed ({exc.name}); install {_SQL_EXTRA}"
        ) from exc
    except Exception as exc:
        raise SourceError(f"{safe_url(url)}: cannot create a database engine: {type(exc).__name__}") from exc


def split_table(table: str) -> tuple[str | None, str]:
    """``"schema.table"`` -> ``("schema", "table")``; ``"table"`` -> ``(None, "table")``."""
    schema, dot, name = table.rpartition(".")
    return (schema or None) if dot else None, name


def describe(
    source: Source,
    *,
    table: str | None = None,
    query: str | None = None,
    name: str | None = None,
) -> SourceDescriptor:
    """Describe a source without reading it (validates the option combination)."""
    if isinstance(source, pd.DataFrame):
        if table or query:
            raise SourceError("table= and query= apply to SQL sources only, not to a DataFrame")
        return SourceDescriptor("dataframe", name or "dataframe")
    text = str(source)
    if isinstance(source, str) and is_sql_url(text):
        if bool(table) == bool(query):
            raise SourceError(f"{safe_url(text)}: give exactly one of table= (--table) or query= (--query)")
        return SourceDescriptor("sql", safe_url(text), table=table, query=query)
    if table or query:
        raise SourceError(f"{text}: table= and query= apply to SQL sources (an SQLAlchemy URL) only")
    path = Path(text).expanduser()
    kind = _SUFFIX_KIND.get(path.suffix.lower())
    if path.is_dir() and kind != "parquet":  # a folder of Parquet parts is one dataset
        raise SourceError(
            f"{path} is a directory; give the export file in it (.csv, .xlsx or .parquet), "
            "or a folder of Parquet parts named *.parquet"
        )
    if kind is None:
        if path.suffix.lower() == ".xls":
            raise SourceError(f"{path}: old .xls workbooks are not supported; save it as .xlsx or .csv")
        what = f"unknown source type {path.suffix!r}" if path.suffix else "no file extension"
        raise SourceError(
            f"{path}: {what}; use .csv, .xlsx, .parquet, "
            "a DataFrame, or an SQLAlchemy URL with a table or query"
        )
    return SourceDescriptor(kind, str(path.resolve()))


def detect_encoding(data: bytes) -> str:
    """UTF-8 with BOM, UTF-8, else CP949 (a superset of EUC-KR, what Korean Excel writes)."""
    if data.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    try:
        data.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        data.decode("cp949")
        return "cp949"
    except UnicodeDecodeError:
        raise SourceError(
            "encoding not recognised (tried UTF-8, UTF-8 with BOM, CP949/EUC-KR); pass encoding= (--encoding)"
        ) from None


def read_source(
    source: Source,
    *,
    table: str | None = None,
    query: str | None = None,
    encoding: str | None = None,
    sheet: str | int = 0,
) -> pd.DataFrame:
    """The raw rows of a source, as the merchant wrote them (CSV cells stay text).

    Args:
        source: a DataFrame, a ``.csv``/``.xlsx``/``.parquet`` path, or an SQLAlchemy URL.
        table: SQL only: the table (``schema.table`` allowed).
        query: SQL only: a SELECT (instead of ``table``).
        encoding: CSV only: the encoding; default detected (UTF-8, UTF-8 BOM, CP949/EUC-KR).
        sheet: xlsx only: the sheet name or index.
    """
    frame, _ = read_with_descriptor(source, table=table, query=query, encoding=encoding, sheet=sheet)
    return frame


def read_with_descriptor(
    source: Source,
    *,
    table: str | None = None,
    query: str | None = None,
    encoding: str | None = None,
    sheet: str | int = 0,
    name: str | None = None,
) -> tuple[pd.DataFrame, SourceDescriptor]:
    """:func:`read_source` plus the descriptor to record (the encoding actually used included)."""
    desc = describe(source, table=table, query=query, name=name)
    if isinstance(source, pd.DataFrame):
        return source.copy(), desc
    if desc.kind == "sql":
        return _read_sql(str(source), desc), desc
    path = Path(desc.location)
    if not (path.is_file() or (desc.kind == "parquet" and path.is_dir())):
        raise SourceError(f"{path}: no such file")
    try:
        if desc.kind == "csv":
            data = path.read_bytes()
            try:
                enc = encoding or detect_encoding(data)
            except SourceError as exc:
                raise SourceError(f"{path}: {exc}") from None
            try:
                text = data.decode(enc)
            except (UnicodeDecodeError, LookupError) as exc:
                raise SourceError(f"{path}: cannot decode as {enc}: {exc}") from exc
            if text.startswith("\ufeff"):
                text = text[1:]
            frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skipinitialspace=False)
            return frame, SourceDescriptor("csv", desc.location, encoding=enc)
        if desc.kind == "xlsx":
            return pd.read_excel(path, sheet_name=sheet, engine="openpyxl"), desc
        return pd.read_parquet(path), desc
    except SourceError:
        raise
    except Exception as exc:
        raise SourceError(f"{path}: cannot read as {desc.kind}: {type(exc).__name__}: {exc}") from exc


def _read_sql(url: str, desc: SourceDescriptor) -> pd.DataFrame:
    sa = _sqlalchemy()
    engine = make_engine(url)
    where = desc.label
    try:
        if desc.table:
            schema, name = split_table(desc.table)
            tbl = sa.Table(name, sa.MetaData(), schema=schema, autoload_with=engine)
            stmt: Any = sa.select(tbl)
        else:
            stmt = sa.text(desc.query or "")
        with engine.connect() as con:
            return pd.read_sql_query(stmt, con)
    except sa.exc.NoSuchTableError:
        raise SourceError(f"{where}: no such table {desc.table!r}") from None
    except sa.exc.SQLAlchemyError as exc:
        detail = str(getattr(exc, "orig", None) or type(exc).__name__).splitlines()[0]
        raise SourceError(f"{where}: cannot read: {detail}") from exc
    finally:
        engine.dispose()
