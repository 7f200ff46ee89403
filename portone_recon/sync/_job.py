"""What every sync run (V1 and V2) shares: its scratch DuckDB and whether it shows a progress bar."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager, suppress
from pathlib import Path
from typing import TypeVar

import duckdb

from portone_recon.errors import PortOneReconError, StoreLockedError, SyncError
from portone_recon.store.store import CONNECT_CONFIG

T = TypeVar("T")
#: A connection to the store to write a stream's error with (a transaction, or an autocommit connection).
Writer = Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]]

#: DuckDB's memory cap for a run's scratch database (it spills staged rows to the run's temporary folder
#: beyond it) and its threads. Peak RSS of a full sync is this plus the client's pages in flight and
#: Python itself.
MEMORY_LIMIT = "512MB"
JOB_THREADS = max(1, min(4, os.cpu_count() or 1))


def scratch(folder: Path, *, preserve_insertion_order: bool = True) -> duckdb.DuckDBPyConnection:
    """The run's own DuckDB: in memory, spilling to ``folder``, with the job's memory and thread caps.

    Spooled pages are staged here (TEMP tables) while the store is not open; the store is attached to
    this connection only to read what a pass needs and to merge and commit a stream.
    ``preserve_insertion_order=False`` for a run none of whose statements needs its rows in input order:
    keeping it makes large inserts and aggregates hold more than the cap.
    """
    spill = folder / "duckdb_spill"
    spill.mkdir(exist_ok=True)
    con = duckdb.connect(
        ":memory:",
        config={
            **CONNECT_CONFIG,
            "memory_limit": MEMORY_LIMIT,
            "threads": JOB_THREADS,
            "temp_directory": str(spill),
            "preserve_insertion_order": preserve_insertion_order,
        },
    )
    con.execute("SET TimeZone = 'Asia/Seoul'")
    return con


def auto_progress() -> bool:
    """A bar in Jupyter (its stderr is no TTY, so tqdm's own check would hide it), a line on a terminal."""
    ipython = sys.modules.get("IPython")
    if ipython is not None:
        try:
            shell = ipython.get_ipython()
            if shell is not None and "IPKernelApp" in getattr(shell, "config", {}):
                return True
        except Exception:  # any oddity of the host: fall back to the terminal check
            pass
    return sys.stderr.isatty()


def record_error(writer: Writer, stream: str, exc: BaseException) -> None:
    """Note a stream's failure in ``sync_state`` (its cursor untouched); never masks the original error.

    Not when the store itself could not be had (held by another process): a second wait for it would
    only delay the error.
    """
    if isinstance(exc, StoreLockedError):
        return
    with suppress(duckdb.Error, PortOneReconError), writer() as con:
        con.execute(
            "INSERT INTO sync_state (stream, last_error) VALUES (?, ?) "
            "ON CONFLICT (stream) DO UPDATE SET last_error = excluded.last_error",
            [stream, f"{type(exc).__name__}: {exc}"[:2000]],
        )


def guarded(stream: str, fn: Callable[[], T], writer: Writer, store_path: Path) -> T:
    """``fn()`` (one stream); a failure is recorded on the stream's row and raised, a DuckDB one as a
    :class:`SyncError` naming the stream and the store."""
    try:
        return fn()
    except PortOneReconError as exc:
        record_error(writer, stream, exc)
        raise
    except duckdb.Error as exc:
        record_error(writer, stream, exc)
        raise SyncError(f"stream {stream}: writing to {store_path} failed: {exc}") from exc
