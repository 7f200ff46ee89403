"""The store: migrations, time zone, transactions, and the lock policy across processes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from portone_recon.errors import MigrationError, StoreError, StoreLockedError
from portone_recon.store import TABLES, Store, open_store
from portone_recon.store import store as store_module

# A process that opens the file (write or read-only), says "ready", and holds it until told to close.
_HOLDER = textwrap.dedent(
    """
    import sys, duckdb
    con = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == "ro")
    print("ready", flush=True)
    sys.stdin.readline()
    con.close()
    print("closed", flush=True)
    sys.stdin.readline()
    """
)

#: A process that opens the file read-only once and exits (non-zero when it cannot).
_READER = "import sys, duckdb; duckdb.connect(sys.argv[1], read_only=True).close()"


class Holder:
    """Another process holding the store file."""

    def __init__(self, path: Path, mode: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _HOLDER, str(path), mode],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        assert line == "ready", line
        self.pid = self.proc.pid

    def release(self) -> None:
        """Close the holder's connection and wait until it says so (the process stays alive)."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == "closed"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)


@pytest.fixture
def holder_factory() -> Iterator[type[Holder]]:
    started: list[Holder] = []

    class _Tracked(Holder):
        def __init__(self, path: Path, mode: str) -> None:
            super().__init__(path, mode)
            started.append(self)

    yield _Tracked
    for h in started:
        h.stop()


# -- migrations ------------------------------------------------------------------------------------


def test_migrate_creates_every_table_and_records_versions(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.duckdb")
    version = store.migrate()
    known = [v for v, _, _ in store_module._migrations()]
    assert version == max(known) >= 2
    versions = store.query("SELECT version, name FROM schema_version ORDER BY version")
    assert versions["version"].tolist() == known
    assert versions["name"].iloc[0] == "0001_initial.sql"
    assert set(store.counts()) == set(TABLES)
    cols = set(
        store.query("SELECT column_name FROM duckdb_columns() WHERE table_name = 'source_loads'")[
            "column_name"
        ]
    )
    assert {"kind", "location", "table_name", "query", "mapping"} <= cols


def test_migrate_twice_changes_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.duckdb")
    first = store.migrate()
    again = Store(tmp_path / "s.duckdb").migrate()
    assert first == again
    assert first == store_module._migrations()[-1][0]
    assert len(store.query("SELECT * FROM schema_version")) == len(store_module._migrations())


def _store_at_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, version: int) -> Store:
    """A store migrated up to ``version`` only; ``store.migrate()`` afterwards applies the rest."""
    real = store_module._migrations()
    store = Store(tmp_path / "s.duckdb")
    monkeypatch.setattr(store_module, "_migrations", lambda: [m for m in real if m[0] <= version])
    assert store.migrate() == version
    monkeypatch.setattr(store_module, "_migrations", lambda: real)
    return store


def test_0003_moves_raw_to_zstd_and_keeps_every_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = _store_at_version(tmp_path, monkeypatch, 2)
    with store.transaction() as con:
        con.execute(
            "INSERT INTO payments (imp_uid, merchant_uid, status, amount, raw, synced_at) "
            "SELECT 'imp_' || i, 'm_' || i, 'paid', 1000 * i, '{\"imp_uid\": \"imp_' || i || '\"}', now() "
            "FROM range(5000) t(i)"
        )
        con.execute(
            "INSERT INTO schedules (merchant_uid, customer_uid, schedule_status, schedule_at, amount, raw, "
            "synced_at) VALUES ('s1', 'c1', 'scheduled', now(), 9900, '{\"merchant_uid\": \"s1\"}', now())"
        )
        con.execute(
            "INSERT INTO billing_keys (customer_uid, raw, synced_at) "
            "VALUES ('c1', '{\"customer_uid\": \"c1\"}', now())"
        )
    assert store.migrate() >= 3
    raw = store.query("SELECT imp_uid, raw::VARCHAR AS raw, amount FROM payments ORDER BY amount")
    assert len(raw) == 5000
    assert raw["raw"].iloc[4999] == '{"imp_uid": "imp_4999"}'
    sched = store.query("SELECT raw::VARCHAR AS r FROM schedules")["r"].tolist()
    assert sched == ['{"merchant_uid": "s1"}']
    keys = store.query("SELECT raw::VARCHAR AS r FROM billing_keys")["r"].tolist()
    assert keys == ['{"customer_uid": "c1"}']
    ddl = store.query(
        "SELECT table_name, sql FROM duckdb_tables() "
        "WHERE table_name IN ('payments', 'schedules', 'billing_keys')"
    )
    assert len(ddl) == 3
    assert all("raw JSON USING COMPRESSION ZSTD" in sql for sql in ddl["sql"])
    with store.connect() as con:  # a new row still goes through the primary key
        with pytest.raises(duckdb.ConstraintException):
            con.execute(
                "INSERT INTO payments (imp_uid, merchant_uid, status, amount, synced_at) "
                "VALUES ('imp_1', 'm', 'paid', 1, now())"
            )


def test_0004_backfills_raw_hash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = _store_at_version(tmp_path, monkeypatch, 3)
    with store.transaction() as con:
        con.execute(
            "INSERT INTO payments (imp_uid, merchant_uid, status, amount, raw, synced_at) "
            "SELECT 'imp_' || i, 'm_' || i, 'paid', i, "
            "CASE WHEN i > 0 THEN '{\"i\": ' || i || '}' END, now() FROM range(100) t(i)"
        )
    assert store.migrate() >= 4
    got = store.query(
        "SELECT count(*) FILTER (WHERE raw_hash = hash(raw::VARCHAR)) AS ok, "
        "count(*) FILTER (WHERE raw IS NULL AND raw_hash IS NULL) AS unknown FROM payments"
    )
    assert (got["ok"].iloc[0], got["unknown"].iloc[0]) == (99, 1)


def test_store_newer_than_code_is_refused(store: Store) -> None:
    with store.transaction() as con:
        con.execute("INSERT INTO schema_version VALUES (999, '0999_future.sql', now())")
    with pytest.raises(MigrationError, match="newer than this portone_recon knows"):
        Store(store.path).migrate()


def test_failed_migration_rolls_back_whole_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = store_module._migrations()
    broken = (*real, (98, "0098_half.sql", "CREATE TABLE half_done (x INTEGER); CREATE TABLE broken ("))
    monkeypatch.setattr(store_module, "_migrations", lambda: list(broken))
    store = Store(tmp_path / "s.duckdb")
    with pytest.raises(MigrationError, match=r"0098_half\.sql"):
        store.migrate()
    monkeypatch.setattr(store_module, "_migrations", lambda: real)
    assert store.migrate() == real[-1][0]
    tables = set(store.query("SELECT table_name FROM duckdb_tables()")["table_name"])
    assert "half_done" not in tables
    assert "payments" in tables


def test_duplicate_migration_numbers_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = tmp_path / "fake_migrations_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "0001_a.sql").write_text("CREATE TABLE a (x INTEGER);")
    (pkg / "0001_b.sql").write_text("CREATE TABLE b (x INTEGER);")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(store_module, "MIGRATIONS_PACKAGE", "fake_migrations_pkg")
    with pytest.raises(MigrationError, match=r"0001_a\.sql and 0001_b\.sql"):
        Store(tmp_path / "s.duckdb").migrate()


# -- time zone and transactions ------------------------------------------------------------------


def test_every_connection_is_in_asia_seoul(store: Store) -> None:
    for read_only in (False, True):
        with store.connect(read_only=read_only) as con:
            row = con.execute("SELECT current_setting('TimeZone')").fetchone()
            assert row is not None and row[0] == "Asia/Seoul"


def test_0030_kst_instant_lands_on_its_kst_day(store: Store) -> None:
    day = store.query("SELECT (TIMESTAMPTZ '2026-10-31 15:30:00+00')::DATE AS d")["d"].iloc[0]
    assert day.date() == date(2026, 11, 1)


def test_transaction_rolls_back_every_statement(store: Store) -> None:
    def write_then_fail() -> None:
        with store.transaction() as con:
            con.execute("INSERT INTO sync_state (stream) VALUES ('a')")
            con.execute("INSERT INTO sync_state (stream) VALUES ('b')")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        write_then_fail()
    assert store.counts()["sync_state"] == 0


def test_transaction_commits_and_checkpoints(store: Store) -> None:
    with store.transaction(checkpoint=True) as con:
        con.execute("INSERT INTO sync_state (stream) VALUES ('a'), ('b')")
    assert store.counts()["sync_state"] == 2
    assert not Path(str(store.path) + ".wal").exists()


def test_failed_statement_inside_transaction_keeps_first_error(store: Store) -> None:
    def write_twice() -> None:
        with store.transaction() as con:
            con.execute("INSERT INTO sync_state (stream) VALUES ('a')")
            con.execute("INSERT INTO sync_state (stream) VALUES ('a')")  # primary key violation

    with pytest.raises(duckdb.Error, match="duplicate key"):
        write_twice()
    assert store.counts()["sync_state"] == 0


def test_read_only_on_a_missing_file_says_so(tmp_path: Path) -> None:
    with (
        pytest.raises(StoreError, match="no such store"),
        Store(tmp_path / "none.duckdb").connect(read_only=True),
    ):
        pass


def test_a_file_that_is_not_duckdb_is_a_store_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.duckdb"
    bad.write_bytes(b"this is not a database" * 1000)
    with pytest.raises(StoreError, match="cannot open the store") as info:
        Store(bad, lock_timeout=0.2).migrate()
    assert not isinstance(info.value, StoreLockedError)


def test_open_store_uses_settings_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORTONE_RECON_DB", str(tmp_path / "env.duckdb"))
    monkeypatch.setenv("PORTONE_LOCK_TIMEOUT", "7")
    monkeypatch.chdir(tmp_path)
    store = open_store()
    assert store.path == tmp_path / "env.duckdb"
    assert store.lock_timeout == 7.0
    assert store.schema_version >= 2


# -- locks across processes ----------------------------------------------------------------------


@pytest.mark.slow
def test_writer_in_another_process_gives_clear_lock_error(store: Store, holder_factory: type[Holder]) -> None:
    holder = holder_factory(store.path, "rw")
    blocked = Store(store.path, lock_timeout=0.3)
    for read_only in (False, True):
        with pytest.raises(StoreLockedError) as info, blocked.connect(read_only=read_only):
            pass
        err = info.value
        assert err.path == str(store.path)
        assert err.pid == holder.pid
        text = str(err)
        assert str(store.path) in text
        assert f"kill {holder.pid}" in text
        assert "waited 0.3 s" in text
        assert "PORTONE_LOCK_TIMEOUT" in text
    holder.release()
    assert blocked.counts()["orders"] == 0  # free again


@pytest.mark.slow
def test_lock_is_retried_until_the_holder_lets_go(
    store: Store, holder_factory: type[Holder], monkeypatch: pytest.MonkeyPatch
) -> None:
    holder = holder_factory(store.path, "rw")
    real_connect = duckdb.connect
    attempts: list[str] = []

    def connect(*args: object, **kwargs: object) -> duckdb.DuckDBPyConnection:
        try:
            return real_connect(*args, **kwargs)  # type: ignore[arg-type]
        except duckdb.IOException:
            attempts.append("locked")
            if len(attempts) == 2:
                holder.release()  # let go during the wait: the next retry must succeed
            raise

    monkeypatch.setattr(duckdb, "connect", connect)
    waiting = Store(store.path, lock_timeout=60)
    with waiting.transaction() as con:
        con.execute("INSERT INTO sync_state (stream) VALUES ('after-wait')")
    assert attempts == ["locked", "locked"]
    monkeypatch.setattr(duckdb, "connect", real_connect)
    assert waiting.counts()["sync_state"] == 1


@pytest.mark.slow
def test_readers_share_the_file_when_nobody_writes(store: Store, holder_factory: type[Holder]) -> None:
    with store.transaction() as con:
        con.execute("INSERT INTO sync_state (stream) VALUES ('x')")
    holder_factory(store.path, "ro")
    reader = Store(store.path, lock_timeout=0.3)
    assert reader.query("SELECT count(*) AS n FROM sync_state", read_only=True)["n"].iloc[0] == 1
    with pytest.raises(StoreLockedError), reader.connect():
        pass


@pytest.mark.slow
def test_an_operation_releases_the_file_when_it_returns(store: Store) -> None:
    store.query("SELECT count(*) FROM orders")
    store.counts()
    # Another process can now take the write lock: nothing in this process still holds the file.
    code = subprocess.run(
        [sys.executable, "-c", "import duckdb, sys; duckdb.connect(sys.argv[1]).close()", str(store.path)],
        timeout=60,
    ).returncode
    assert code == 0


def test_0007_keeps_subscriptions_orders_findings_and_sync_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _store_at_version(tmp_path, monkeypatch, 4)
    with store.transaction() as con:
        con.execute(
            "INSERT INTO subscriptions (customer_uid, status, amount, interval_months, anchor_day, "
            "started_at, source, loaded_at) VALUES "
            "('c1', 'active', 9900, 3, 31, '2026-01-31 10:00+09', 's', now()), "
            "('c2', 'cancelled', 4900, 1, 5, NULL, 's', now())"
        )
        con.execute(
            "INSERT INTO orders (merchant_uid, customer_uid, amount, status, source, loaded_at) "
            "VALUES ('o1', 'c1', 9900, 'paid', 's', now())"
        )
        con.execute(
            "INSERT INTO payments (imp_uid, merchant_uid, status, amount, paid_at, synced_at) "
            "VALUES ('i1', 'o1', 'paid', 9900, '2026-03-02 10:00+09', now())"
        )
        con.execute(
            "INSERT INTO sync_state (stream, cursor, detail) VALUES "
            "('payments:paid', '2026-11-27 06:00+09', '{\"from\": \"2026-11-27T04:00:00+09:00\"}')"
        )
        con.execute(
            "INSERT INTO findings (run_id, finding_id, kind, severity, amount_at_risk) "
            "VALUES ('r1', 'f1', 'phantom_paid', 'critical', 9900)"
        )
    assert store.migrate() >= 7
    subs = store.query(
        "SELECT subscription_id, customer_uid, status, amount, currency, interval_months, anchor_day, plan "
        "FROM subscriptions ORDER BY 1"
    )
    assert subs.values.tolist() == [
        ["c1", "c1", "active", 9900, "KRW", 3, 31, None],
        ["c2", "c2", "cancelled", 4900, "KRW", 1, 5, None],
    ]
    order = store.query("SELECT merchant_uid, subscription_id, ordered_at FROM orders")
    assert order.values.tolist()[0][:2] == ["o1", None]
    found = store.query("SELECT finding_id, subscription_id, period_start, currency FROM findings")
    assert found["finding_id"].tolist() == ["f1"] and found["subscription_id"].isna().all()
    # the paid stream is complete from its earliest stored payment (not the last incremental run's start)
    cov = store.query("SELECT covered_from FROM sync_state WHERE stream = 'payments:paid'")["covered_from"]
    assert cov.iloc[0].tz_convert("Asia/Seoul").isoformat().startswith("2026-03-02T10:00")
    with store.connect() as con:
        con.execute(
            "INSERT INTO subscriptions (subscription_id, customer_uid, status, amount, anchor_day, source, "
            "loaded_at) VALUES ('c1-music', 'c1', 'paused', 4900, 1, 's', now())"
        )
        with pytest.raises(duckdb.ConstraintException):
            con.execute(
                "INSERT INTO subscriptions (subscription_id, customer_uid, status, amount, anchor_day, "
                "source, loaded_at) VALUES ('x', 'c1', 'on_hold', 4900, 1, 's', now())"
            )


def test_0008_keeps_every_amount_exact_and_adds_the_quarantine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _store_at_version(tmp_path, monkeypatch, 4)
    with store.transaction() as con:
        con.execute(
            "INSERT INTO payments (imp_uid, merchant_uid, status, amount, cancel_amount, raw, synced_at) "
            "SELECT 'imp_' || i, 'm_' || i, 'paid', 1000 * i + 7, i, '{}', now() FROM range(300) t(i)"
        )
        con.execute(
            "INSERT INTO payment_cancellations (imp_uid, cancellation_id, amount, synced_at) "
            "VALUES ('imp_1', 'c1', 1, now())"
        )
        con.execute(
            "INSERT INTO schedules (merchant_uid, customer_uid, schedule_status, schedule_at, amount, "
            "synced_at) VALUES ('s1', 'c1', 'scheduled', now(), 9900, now())"
        )
    store.migrate()
    with store.connect() as con:
        rows = con.execute(
            "SELECT count(*), count(*) FILTER (WHERE amount_exact = amount AND cancel_amount_exact = "
            "cancel_amount), sum(amount) FROM payments"
        ).fetchone()
        assert rows == (300, 300, sum(1000 * i + 7 for i in range(300)))
        assert con.execute("SELECT amount_exact FROM payment_cancellations").fetchone() == (Decimal(1),)
        assert con.execute("SELECT amount, amount_exact FROM schedules").fetchone() == (9900, Decimal(9900))
        # a USD amount fits exactly; the integer column stays empty rather than rounded
        con.execute(
            "INSERT INTO payments (imp_uid, merchant_uid, status, amount, amount_exact, currency, synced_at) "
            "VALUES ('imp_usd', 'm_usd', 'paid', NULL, 9.99, 'USD', now())"
        )
        assert con.execute("SELECT amount_exact FROM payments WHERE imp_uid = 'imp_usd'").fetchone() == (
            Decimal("9.99"),
        )
        assert con.execute("SELECT count(*) FROM quarantine").fetchone() == (0,)


# -- attached to a scratch connection ------------------------------------------------------------


def test_attached_holds_the_file_only_inside_the_block(store: Store, holder_factory: type[Holder]) -> None:
    scratch = duckdb.connect(":memory:")
    try:
        scratch.execute("CREATE TEMP TABLE staged AS SELECT 'a' AS stream UNION ALL SELECT 'b'")
        with store.attached(scratch):
            # Unqualified names are the store's; TEMP tables of the scratch connection stay visible.
            scratch.execute("INSERT INTO sync_state (stream) SELECT stream FROM staged")
            other = subprocess.run(
                [sys.executable, "-c", _READER, str(store.path)], capture_output=True, text=True, timeout=60
            )
            assert other.returncode != 0 and "lock" in other.stderr.lower(), other.stderr
        holder = holder_factory(store.path, "ro")  # another process gets in once the block is left
        holder.release()
        assert scratch.execute("SELECT count(*) FROM staged").fetchone() == (2,)
        assert scratch.execute("SELECT current_database()").fetchone() == ("memory",)
    finally:
        scratch.close()
    assert store.counts()["sync_state"] == 2


def test_attached_waits_for_another_writer_then_names_it(store: Store, holder_factory: type[Holder]) -> None:
    holder = holder_factory(store.path, "rw")
    scratch = duckdb.connect(":memory:")
    try:
        blocked = Store(store.path, lock_timeout=0.3)
        with pytest.raises(StoreLockedError) as info, blocked.attached(scratch):
            pass
        assert info.value.pid == holder.pid
        holder.release()
        with blocked.attached(scratch):
            assert scratch.execute("SELECT count(*) FROM sync_state").fetchone() == (0,)
    finally:
        scratch.close()
