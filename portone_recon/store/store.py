"""The DuckDB store: open, migrate, lock policy, transactions.

Each library operation opens the file for its own length and closes it (:meth:`Store.connect`), so an
analyst's open notebook never holds the file and the 06:00 cron run is not locked out. Every connection
runs ``SET TimeZone = 'Asia/Seoul'``: DuckDB buckets dates by the session time zone, and a 00:30 KST
payment must land on its KST day. Extension auto-install and auto-load are off on every connection:
a file that is not a DuckDB database (a SQLite file given by mistake) is refused with a message, never
answered by downloading an extension.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import pandas as pd

from portone_recon.config import DEFAULT_DB, Settings
from portone_recon.errors import ConfigError, MigrationError, StoreError, StoreLockedError

_T = TypeVar("_T")
_LOCK_PID = re.compile(r"\(PID (\d+)\)")
#: Passed to every ``duckdb.connect``: no network, whatever the file claims to need.
CONNECT_CONFIG: dict[str, str | bool | int | float | list[str]] = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
}
#: A DuckDB database file carries these bytes at offset 8 (its header's magic).
_DUCKDB_MAGIC = (8, b"DUCK")
#: First bytes of other files people take for a database, for the message.
_KNOWN_HEADERS = ((b"SQLite format 3\x00", "a SQLite database"), (b"PAR1", "a Parquet file"))
MIGRATIONS_PACKAGE = "portone_recon.store.migrations"

#: Data tables in the order a person reads them; used by the HTML summary.
TABLES = (
    "payments",
    "payment_cancellations",
    "schedules",
    "billing_keys",
    "orders",
    "subscriptions",
    "sync_state",
    "recon_runs",
    "findings",
    "actions",
    "finding_triage",
    "quarantine",
)


def _migrations() -> list[tuple[int, str, str]]:
    """Every ``NNNN_name.sql`` in the migrations package, in version order (numbers must be unique)."""
    found = []
    for entry in resources.files(MIGRATIONS_PACKAGE).iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:4].isdigit():
            found.append((int(name[:4]), name, entry.read_text(encoding="utf-8")))
    found.sort()
    seen: dict[int, str] = {}
    for version, name, _ in found:
        if version in seen:
            raise MigrationError(
                f"two migrations share number {version:04d}: {seen[version]} and {name}; renumber one"
            )
        seen[version] = name
    return found


def is_lock_error(exc: BaseException) -> bool:
    return isinstance(exc, duckdb.IOException) and "lock" in str(exc).lower()


@contextmanager
def atomic(con: duckdb.DuckDBPyConnection, path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """BEGIN ... COMMIT on an open connection; any exception rolls back and propagates (the first error
    is kept), and a failed COMMIT is a :class:`StoreError` naming ``path``."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        with suppress(duckdb.Error):  # already aborted: keep the first error
            con.execute("ROLLBACK")
        raise
    try:
        con.execute("COMMIT")
    except duckdb.Error as exc:
        raise StoreError(f"{path}: commit failed, nothing was written: {exc}") from exc


class Store:
    """A DuckDB file holding PortOne data, local orders, findings and the action journal.

    Args:
        path: the DuckDB file (created when missing).
        lock_timeout: seconds to keep retrying while another process holds the file.
    """

    def __init__(self, path: str | Path = DEFAULT_DB, *, lock_timeout: float = 30.0) -> None:
        if isinstance(lock_timeout, bool) or not isinstance(lock_timeout, int | float):
            raise ConfigError(f"lock_timeout must be a number of seconds, got {lock_timeout!r}")
        if not math.isfinite(lock_timeout) or lock_timeout < 0:  # nan would wait forever
            raise ConfigError(f"lock_timeout must be a finite number of seconds >= 0, got {lock_timeout!r}")
        self.path = Path(path)
        self.lock_timeout = lock_timeout
        self._migrated = False

    @classmethod
    def from_settings(cls, settings: Settings) -> Store:
        return cls(settings.db_path, lock_timeout=settings.lock_timeout)

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    # -- connections ---------------------------------------------------------------------------

    @contextmanager
    def connect(self, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection for one operation; closed (and the file released) on exit."""
        if not read_only and not self._migrated:
            self.migrate()
        if read_only and not self.path.exists():
            raise StoreError(f"{self.path}: no such store; run `portone-recon sync` or open_store() first")
        con = self._open(read_only=read_only)
        try:
            yield con
        finally:
            con.close()

    @contextmanager
    def transaction(self, *, checkpoint: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A write connection inside BEGIN ... COMMIT; any exception rolls everything back.

        DuckDB 2.x auto-commits each statement of a batch, so every multi-statement write goes through
        here. With ``checkpoint=True`` a ``CHECKPOINT`` follows a successful commit (end of a run), so the
        write-ahead log is folded into the file before it is released.
        """
        with self.connect() as con:
            with atomic(con, self.path):
                yield con
            if checkpoint:
                con.execute("CHECKPOINT")

    def _open(self, *, read_only: bool) -> duckdb.DuckDBPyConnection:
        self._refuse_foreign_file()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot create its folder: {exc}") from exc
        con = self._waiting_for_lock(
            lambda: duckdb.connect(str(self.path), read_only=read_only, config=dict(CONNECT_CONFIG))
        )
        con.execute("SET TimeZone = 'Asia/Seoul'")
        return con

    def _waiting_for_lock(self, open_: Callable[[], _T]) -> _T:
        """``open_()``, retried while another process holds the file, up to ``lock_timeout`` seconds."""
        deadline = time.monotonic() + self.lock_timeout
        delay = 0.05
        while True:
            try:
                return open_()
            except duckdb.Error as exc:
                if not is_lock_error(exc):
                    raise StoreError(f"{self.path}: cannot open the store: {exc}") from exc
                if time.monotonic() >= deadline:
                    m = _LOCK_PID.search(str(exc))
                    pid = int(m.group(1)) if m else None
                    holder = f"process {pid}" if pid else "another process"
                    raise StoreLockedError(
                        f"{self.path} is held by {holder} (waited {self.lock_timeout:g} s). "
                        "Wait for that sync/apply to finish, or stop it"
                        + (f" (kill {pid})" if pid else "")
                        + "; portone_recon never keeps the file open between operations, so look for a "
                        "running job, or a notebook that called duckdb.connect() on it directly (close that "
                        "connection). To wait longer, set PORTONE_LOCK_TIMEOUT (seconds).",
                        path=str(self.path),
                        pid=pid,
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

    @contextmanager
    def attached(self, con: duckdb.DuckDBPyConnection, alias: str = "store") -> Iterator[None]:
        """The store ATTACHed (read-write) to ``con`` as its default catalog, DETACHed on exit.

        For a job that works in its own scratch database (``con``: TEMP tables, spilled to disk) and
        needs the store only now and then: the file, and so its write lock, is held only inside this
        block (other processes, a notebook, open it in between). DETACH folds the write-ahead log into
        the file. Waits for another holder as :meth:`connect` does.
        """
        if not self._migrated:
            self.migrate()
        self._refuse_foreign_file()
        row = con.execute("SELECT current_database()").fetchone()
        home = str(row[0]) if row else "memory"
        target = str(self.path).replace("'", "''")
        self._waiting_for_lock(lambda: con.execute(f"ATTACH '{target}' AS {alias}"))
        try:
            con.execute(f"USE {alias}")
            yield
        except BaseException:
            # Keep the first error; the caller has rolled its transaction back.
            with suppress(duckdb.Error):
                con.execute(f"USE {home}")
            with suppress(duckdb.Error):
                con.execute(f"DETACH {alias}")
            raise
        con.execute(f"USE {home}")
        con.execute(f"DETACH {alias}")

    def _refuse_foreign_file(self) -> None:
        """A path that exists but is not a DuckDB database: a :class:`StoreError` saying what it is."""
        if self.path.is_dir():
            raise StoreError(
                f"{self.path}: cannot open the store: it is a directory; pass the DuckDB file's path (--db)"
            )
        try:
            with self.path.open("rb") as fh:
                head = fh.read(16)
        except FileNotFoundError:
            return  # a new store
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot read the store: {exc}") from exc
        offset, magic = _DUCKDB_MAGIC
        if head[offset : offset + len(magic)] == magic:
            return
        what = next((name for prefix, name in _KNOWN_HEADERS if head.startswith(prefix)), None)
        if what is None:
            what = "an empty file" if not head else "some other kind of file"
        raise StoreError(
            f"{self.path}: cannot open the store: it is not a DuckDB database but {what}; pass the store "
            "portone_recon created (--db / PORTONE_RECON_DB), or a path that does not exist yet to create one"
        )

    # -- schema --------------------------------------------------------------------------------

    def migrate(self) -> int:
        """Apply every migration not applied yet, each in its own transaction. Returns the version."""
        con = self._open(read_only=False)
        try:
            con.execute(
                "CREATE TABLE IF NOT EXISTS schema_version ("
                "version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"
            )
            row = con.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
            current = int(row[0]) if row else 0
            known = _migrations()
            latest = known[-1][0] if known else 0
            if current > latest:
                raise MigrationError(
                    f"{self.path} is at schema version {current}, newer than this portone_recon "
                    f"knows ({latest}): upgrade portone_recon"
                )
            for version, name, sql in known:
                if version <= current:
                    continue
                con.execute("BEGIN TRANSACTION")
                try:
                    con.execute(sql)
                    con.execute(
                        "INSERT INTO schema_version VALUES (?, ?, now())",
                        [version, name],
                    )
                    con.execute("COMMIT")
                except duckdb.Error as exc:
                    con.execute("ROLLBACK")
                    raise MigrationError(f"{self.path}: migration {name} failed: {exc}") from exc
                current = version
            self._migrated = True
            return current
        finally:
            con.close()

    @property
    def schema_version(self) -> int:
        with self.connect() as con:
            row = con.execute("SELECT max(version) FROM schema_version").fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    # -- reading for people ------------------------------------------------------------------

    def query(
        self,
        sql: str,
        params: Sequence[Any] | dict[str, Any] | None = None,
        *,
        read_only: bool = False,
    ) -> pd.DataFrame:
        """Run a read query and return a DataFrame (times in Asia/Seoul).

        Args:
            sql: the query; bind values with ``?`` or ``$name`` and pass ``params``.
            params: the bound values.
            read_only: open the file read-only (shared with other readers; reports use this).
        """
        with self.connect(read_only=read_only) as con:
            return con.execute(sql, params).df() if params is not None else con.sql(sql).df()

    def table(self, name: str) -> pd.DataFrame:
        """A whole table as a DataFrame."""
        if name not in TABLES:
            raise StoreError(f"unknown table {name!r}; tables: {', '.join(TABLES)}")
        return self.query(f"SELECT * FROM {name}")

    def counts(self) -> dict[str, int]:
        """Row counts of every data table."""
        with self.connect() as con:
            parts = " UNION ALL ".join(f"SELECT '{t}', count(*) FROM {t}" for t in TABLES)
            return {str(k): int(v) for k, v in con.execute(parts).fetchall()}

    def checkpoint(self) -> None:
        """Fold the write-ahead log into the file (run at the end of a successful run)."""
        with self.connect() as con:
            con.execute("CHECKPOINT")

    def _repr_html_(self) -> str:
        try:
            counts = self.counts()
        except Exception as exc:  # a repr must never raise
            return f"<b>Store</b> {self.path}: <i>unavailable ({type(exc).__name__})</i>"
        rows = "".join(
            f"<tr><td>{t}</td><td style='text-align:right'>{n:,}</td></tr>" for t, n in counts.items()
        )
        return (
            f"<b>Store</b> <code>{self.path}</code><table><tr><th>table</th><th>rows</th></tr>{rows}</table>"
        )


def open_store(
    path: str | Path | None = None, *, settings: Settings | None = None, lock_timeout: float | None = None
) -> Store:
    """Open (creating and migrating when needed) the store at ``path``.

    Without ``path``: ``settings.db_path`` (``PORTONE_RECON_DB``), else ``./portone_recon.duckdb``.
    """
    if settings is None:
        settings = Settings.from_env()
    store = Store(
        path if path is not None else settings.db_path,
        lock_timeout=settings.lock_timeout if lock_timeout is None else lock_timeout,
    )
    store.migrate()
    return store


def existing_store(path: str | Path | None = None, *, settings: Settings | None = None) -> Store:
    """The store at ``path`` (default as in :func:`open_store`), refusing to create one.

    For commands that read what earlier steps wrote (reconcile, fix): a mistyped ``--db`` must be an
    error, not a silently created empty store with zero findings.
    """
    if settings is None:
        settings = Settings.from_env()
    target = Path(path) if path is not None else settings.db_path
    if not target.exists():
        raise StoreError(
            f"{target}: no such store. Sync and load orders into it first (`portone-recon sync --db ...`, "
            "`portone-recon load-orders ... --db ...`), or pass the right --db"
        )
    return open_store(target, settings=settings)
