"""Bad inputs on the command line: each gets exit code 2 and a message naming the culprit, no
traceback, and leaves the store exactly as it was."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from portone_recon._time import KST, instant_arg, parse_duration
from portone_recon.cli import EXIT_BROKEN_PIPE, main
from portone_recon.config import Settings
from portone_recon.errors import ConfigError, ReconcileError, SourceError, UsageError
from portone_recon.orders import load_orders, load_subscriptions
from portone_recon.orders.load import LoadWarning
from portone_recon.reconcile import reconcile
from portone_recon.store import Store

CANARY = "canary-secret-77ab"
ORDERS = 120  # above the shrink guard's minimum snapshot size


def orders_csv(rows: int, *, amount: str = "9900", first_amount: str | None = None) -> str:
    lines = ["merchant_uid,customer_uid,amount,status,paid_at"]
    for i in range(rows):
        a = first_amount if first_amount is not None and i == 1 else amount
        lines.append(f"ord_{i:04d},cus_{i % 40:03d},{a},paid,2026-10-{1 + i % 28:02d}T10:00:00+09:00")
    return "\n".join(lines) + "\n"


def subscriptions_csv(rows: list[tuple[str, str, str, str, str]]) -> str:
    head = "customer_uid,status,amount,anchor_day,interval_months,started_at,cancelled_at"
    body = [f"{c},{s},9900,{a},{n},2026-01-05T10:00:00+09:00,{x}" for c, s, a, n, x in rows]
    return "\n".join([head, *body]) + "\n"


@pytest.fixture(scope="module")
def seeded_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with a 120-row orders snapshot ("shop"), three subscriptions and one reconcile run."""
    folder = tmp_path_factory.mktemp("template")
    db = folder / "recon.duckdb"
    store = Store(db, lock_timeout=2.0)
    (folder / "orders.csv").write_text(orders_csv(ORDERS), encoding="utf-8")
    load_orders(store, folder / "orders.csv", source_name="shop", progress=False)
    subs = [
        ("cus_000", "active", "5", "1", ""),
        ("cus_001", "active", "5", "1", ""),
        ("cus_002", "cancelled", "5", "1", "2026-06-01"),
    ]
    (folder / "subs.csv").write_text(subscriptions_csv(subs), encoding="utf-8")
    load_subscriptions(store, folder / "subs.csv", source_name="subs", progress=False)
    reconcile(store, as_of="2026-11-01T09:00:00+09:00", progress=False)
    return db


@pytest.fixture
def seeded(seeded_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the template store in the test's folder, which is also the working directory (where
    portone_recon.toml is looked for); ``orders.csv`` there is the export the snapshot came from."""
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "recon.duckdb"
    shutil.copyfile(seeded_template, db)
    (tmp_path / "orders.csv").write_text(orders_csv(ORDERS), encoding="utf-8")
    return db


def fingerprint(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (and the file's header bytes): equal fingerprints, equal stores."""
    store = Store(db, lock_timeout=2.0)
    tables = store.query(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' ORDER BY 1",
        read_only=True,
    )["table_name"]
    out: dict[str, list[tuple[Any, ...]]] = {}
    for t in tables:
        frame = store.query(f"SELECT * FROM {t}", read_only=True)
        out[t] = sorted(tuple(repr(v) for v in row) for row in frame.itertuples(index=False))
    return out


def _sqlite(path: Path) -> None:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE orders (merchant_uid TEXT)")
    con.commit()
    con.close()


@dataclass(frozen=True)
class Case:
    """One bad input: files to write into the test folder, environment, command line, expected words."""

    argv: list[str]
    needles: list[str]
    files: dict[str, str | bytes] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    setup: Callable[[Path], None] | None = None


TOML_CASES = {
    "toml concurrency as text": Case(
        ["reconcile", "--db", "{db}"],
        ["portone_recon.toml", "concurrency", "'4'"],
        files={"portone_recon.toml": 'concurrency = "4"\n'},
    ),
    "toml read_timeout with a unit": Case(
        ["reconcile", "--db", "{db}"],
        ["portone_recon.toml", "read_timeout", "30s"],
        files={"portone_recon.toml": '[portone_recon]\nread_timeout = "30s"\n'},
    ),
    "toml db_path as a number": Case(
        ["load-orders", "{tmp}/orders.csv", "--db", "{db}"],
        ["portone_recon.toml", "db_path", "5"],
        files={"portone_recon.toml": "db_path = 5\n"},
    ),
    "toml lock_timeout nan": Case(
        ["reconcile", "--db", "{db}"],
        ["portone_recon.toml", "lock_timeout", "finite"],
        files={"portone_recon.toml": "lock_timeout = nan\n"},
    ),
    "toml concurrency as a boolean": Case(
        ["reconcile", "--db", "{db}"],
        ["portone_recon.toml", "concurrency", "True"],
        files={"portone_recon.toml": "concurrency = true\n"},
    ),
    "toml not UTF-8": Case(
        ["reconcile", "--db", "{db}"],
        ["portone_recon.toml", "UTF-8"],
        files={"portone_recon.toml": '# 정산 설정\nimp_key = "가맹점"\n'.encode("cp949")},
    ),
    "toml secret beside the table": Case(
        ["reconcile", "--db", "{db}"],
        ["portone_recon.toml", "imp_secret", "environment"],
        files={"portone_recon.toml": f'imp_secret = "{CANARY}"\n[portone_recon]\nconcurrency = 2\n'},
    ),
    "toml secret inside the table": Case(
        ["reconcile", "--db", "{db}"],
        ["portone_recon.toml", "portone_recon.imp_secret", "environment"],
        files={"portone_recon.toml": f'[portone_recon]\nimp_secret = "{CANARY}"\n'},
    ),
    "toml secret under its variable name": Case(
        ["load-orders", "{tmp}/orders.csv", "--db", "{db}"],
        ["PORTONE_IMP_SECRET", "environment"],
        files={"portone_recon.toml": f'PORTONE_IMP_SECRET = "{CANARY}"\n'},
    ),
    "toml secret in a sub-table": Case(
        ["reconcile", "--db", "{db}"],
        ["portone_recon.credentials.secret", "environment"],
        files={"portone_recon.toml": f'[portone_recon.credentials]\nsecret = "{CANARY}"\n'},
    ),
    "toml secret in an array of tables": Case(
        ["reconcile", "--db", "{db}"],
        ["portone_recon.toml", "accounts[0].api_secret", "environment"],
        files={"portone_recon.toml": f'[[accounts]]\nname = "main"\napi_secret = "{CANARY}"\n'},
    ),
    "toml syntax error": Case(
        ["reconcile", "--db", "{db}"],
        ["portone_recon.toml", "cannot read settings", "line 1"],
        files={"portone_recon.toml": "concurrency = = 4\n"},
    ),
    "toml setting outside the table": Case(
        ["reconcile", "--db", "{db}"],
        ["portone_recon.toml", "read_timeout", "outside"],
        files={"portone_recon.toml": "read_timeout = 5\n[portone_recon]\nconcurrency = 2\n"},
    ),
}

ENV_CASES = {
    f"{var}={value}": Case(["reconcile", "--db", "{db}"], [var, value], env={var: value})
    for var, value in (
        ("PORTONE_READ_TIMEOUT", "nan"),
        ("PORTONE_READ_TIMEOUT", "inf"),
        ("PORTONE_LOCK_TIMEOUT", "nan"),
        ("PORTONE_CONNECT_TIMEOUT", "-inf"),
    )
}

TIME_CASES = {
    "sync since after until": Case(
        ["sync", "--db", "{db}", "--since", "2026-11-02", "--until", "2026-11-01"],
        ["--since 2026-11-02", "--until 2026-11-01"],
    ),
    "sync until unparseable": Case(
        ["sync", "--db", "{db}", "--until", "tomorrow"], ["--until", "'tomorrow'", "e.g. 2026-11-27"]
    ),
    "sync since unparseable": Case(
        ["sync", "--db", "{db}", "--since", "2026-13-01"], ["--since", "'2026-13-01'", "e.g."]
    ),
    "reconcile as-of far ahead": Case(
        ["reconcile", "--db", "{db}", "--as-of", "2099-01-01"], ["--as-of", "2099-01-01", "ahead of now"]
    ),
    "reconcile as-of unparseable": Case(
        ["reconcile", "--db", "{db}", "--as-of", "yesterday"], ["--as-of", "'yesterday'", "e.g."]
    ),
    "reconcile grace beyond any clock": Case(
        ["reconcile", "--db", "{db}", "--grace", "99999999999999d"],
        ["grace", "99999999999999d", "e.g. 15min"],
    ),
    "report as-of far ahead": Case(
        ["report", "daily", "--db", "{db}", "--out", "{tmp}/reports", "--as-of", "2099-01-01T00:00:00Z"],
        ["--as-of", "2099-01-01", "ahead of now"],
    ),
    "report fixup with no kinds": Case(
        ["report", "fixup", "--db", "{db}", "--out", "{tmp}/reports", "--kinds", " , "],
        ["--kinds ' , '", "names no kind"],
    ),
    "report as-of unparseable": Case(
        ["report", "monthly", "--db", "{db}", "--out", "{tmp}/reports", "--as-of", "2026/11/01"],
        ["--as-of", "'2026/11/01'", "e.g."],
    ),
}

SOURCE_CASES = {
    "amount beyond int64": Case(
        ["load-orders", "{tmp}/big.csv", "--db", "{db}", "--source-name", "shop"],
        ["big.csv", "row 2", "'amount'", "64-bit", "12345678901234567890"],
        files={"big.csv": orders_csv(ORDERS, first_amount="12345678901234567890")},
    ),
    "negative amount": Case(
        ["load-orders", "{tmp}/neg.csv", "--db", "{db}", "--source-name", "shop"],
        ["neg.csv", "row 2", "'amount'", "negative"],
        files={"neg.csv": orders_csv(ORDERS, first_amount="-5")},
    ),
    "anchor day 40": Case(
        ["load-subscriptions", "{tmp}/s.csv", "--db", "{db}", "--source-name", "subs"],
        ["s.csv", "row 2", "'anchor_day'", "between 1 and 31"],
        files={
            "s.csv": subscriptions_csv(
                [("cus_000", "active", "5", "1", ""), ("cus_001", "active", "40", "1", "")]
            )
        },
    ),
    "interval beyond int32": Case(
        ["load-subscriptions", "{tmp}/s.csv", "--db", "{db}", "--source-name", "subs"],
        ["s.csv", "row 1", "'interval_months'"],
        files={"s.csv": subscriptions_csv([("cus_000", "active", "5", "99999999999", "")])},
    ),
    "mapping file not UTF-8": Case(
        ["load-orders", "{tmp}/orders.csv", "--db", "{db}", "--mapping", "{tmp}/map.json"],
        ["map.json", "UTF-8"],
        files={"map.json": '{"columns": {"amount": "결제금액"}}'.encode("cp949")},
    ),
    "a directory as the source": Case(
        ["load-orders", "{tmp}/exports", "--db", "{db}"],
        ["exports", "is a directory"],
        setup=lambda tmp: (tmp / "exports").mkdir(),
    ),
    "a directory with a csv name": Case(
        ["load-orders", "{tmp}/orders_dir.csv", "--db", "{db}"],
        ["orders_dir.csv", "is a directory"],
        setup=lambda tmp: (tmp / "orders_dir.csv").mkdir(),
    ),
    "export much smaller than the snapshot": Case(
        ["load-orders", "{tmp}/cut.csv", "--db", "{db}", "--source-name", "shop"],
        ["shop", "50 rows", "120 rows", "--allow-shrink", "Nothing changed"],
        files={"cut.csv": orders_csv(50)},
    ),
    "a SQLite file as the store": Case(
        ["load-orders", "{tmp}/orders.csv", "--db", "{tmp}/shop.sqlite"],
        ["shop.sqlite", "SQLite", "not a DuckDB"],
        setup=lambda tmp: _sqlite(tmp / "shop.sqlite"),
    ),
    "a SQLite file given to reconcile": Case(
        ["reconcile", "--db", "{tmp}/shop.sqlite"],
        ["shop.sqlite", "SQLite"],
        setup=lambda tmp: _sqlite(tmp / "shop.sqlite"),
    ),
    "sandbox port out of range": Case(["sandbox", "serve", "--port", "70000"], ["--port", "70000"]),
    "a directory as the store": Case(
        ["reconcile", "--db", "{tmp}"],
        ["is a directory"],
    ),
}

CASES = {**TOML_CASES, **ENV_CASES, **TIME_CASES, **SOURCE_CASES}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_gets_a_message_and_changes_nothing(
    name: str,
    seeded: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    case = CASES[name]
    for fname, content in case.files.items():
        target = tmp_path / fname
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content, encoding="utf-8")
    if case.setup is not None:
        case.setup(tmp_path)
    others = {p: p.read_bytes() for p in tmp_path.glob("*.sqlite")}
    for var, value in case.env.items():
        monkeypatch.setenv(var, value)
    before = fingerprint(seeded)
    capsys.readouterr()

    code = main([a.format(db=seeded, tmp=tmp_path) for a in case.argv])

    captured = capsys.readouterr()
    assert code == 2, captured
    assert "Traceback" not in captured.err
    first = captured.err.splitlines()[0]
    assert first.startswith(f"portone-recon {case.argv[0]}: error: "), captured.err
    for needle in case.needles:
        assert needle in captured.err, (needle, captured.err)
    assert CANARY not in captured.err + captured.out
    for var in case.env:
        monkeypatch.delenv(var)
    (tmp_path / "portone_recon.toml").unlink(missing_ok=True)
    assert fingerprint(seeded) == before
    assert {p: p.read_bytes() for p in tmp_path.glob("*.sqlite")} == others
    assert not (tmp_path / "reports").exists()


def test_allow_shrink_lets_a_smaller_export_replace_the_snapshot(
    seeded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "cut.csv").write_text(orders_csv(50), encoding="utf-8")
    argv = ["load-orders", str(tmp_path / "cut.csv"), "--db", str(seeded), "--source-name", "shop"]
    assert main([*argv, "--allow-shrink"]) == 0
    assert "loaded 50 orders" in capsys.readouterr().out
    store = Store(seeded)
    assert int(store.query("SELECT count(*) AS n FROM orders")["n"][0]) == 50
    # In Python the same guard holds, and allow_shrink=True is the way through.
    (tmp_path / "cut2.csv").write_text(orders_csv(20), encoding="utf-8")
    report = load_orders(store, tmp_path / "cut2.csv", source_name="shop", progress=False)
    assert report.rows_loaded == 20  # 50 rows are below the guard's minimum snapshot size
    big = tmp_path / "big.csv"
    big.write_text(orders_csv(300), encoding="utf-8")
    load_orders(store, big, source_name="shop", progress=False)
    with pytest.raises(SourceError, match="allow_shrink=True"):
        load_orders(store, tmp_path / "cut.csv", source_name="shop", progress=False)
    assert int(store.query("SELECT count(*) AS n FROM orders")["n"][0]) == 300
    load_orders(store, tmp_path / "cut.csv", source_name="shop", allow_shrink=True, progress=False)
    assert int(store.query("SELECT count(*) AS n FROM orders")["n"][0]) == 50


def test_shrink_guard_counts_only_the_replaced_snapshot(seeded: Path, tmp_path: Path) -> None:
    store = Store(seeded)
    (tmp_path / "half.csv").write_text(orders_csv(60), encoding="utf-8")
    load_orders(store, tmp_path / "half.csv", source_name="shop", progress=False)  # 60 of 120: not fewer
    small = tmp_path / "other.csv"
    small.write_text(orders_csv(3).replace("ord_", "web_"), encoding="utf-8")
    load_orders(store, small, source_name="web", progress=False)  # a new source replaces nothing


def test_an_active_subscription_cancelled_before_it_started_loads_with_a_warning(
    seeded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [
        ("cus_000", "active", "5", "1", ""),
        ("cus_001", "active", "5", "1", "2025-12-20T10:00:00+09:00"),  # before 2026-01-05
        ("cus_002", "cancelled", "5", "1", "2025-12-20T10:00:00+09:00"),  # a sign-up cancelled early
        ("cus_003", "active", "5", "1", "2026-12-31T10:00:00+09:00"),  # cancels at period end
    ]
    (tmp_path / "s.csv").write_text(subscriptions_csv(rows), encoding="utf-8")
    argv = ["load-subscriptions", str(tmp_path / "s.csv"), "--db", str(seeded), "--source-name", "subs"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if "warning" in line]
    assert len(warnings) == 1, err
    assert "row 2" in warnings[0] and "'cancelled_at'" in warnings[0] and "cancelled before it started" in err
    with pytest.warns(LoadWarning, match="row 2, column 'cancelled_at'") as record:
        report = load_subscriptions(Store(seeded), tmp_path / "s.csv", source_name="subs", progress=False)
    assert len(record) == 1
    assert len(report.warnings) == 1 and "1 warning(s)" in repr(report)


def test_every_store_connection_has_extension_autoload_off(tmp_path: Path) -> None:
    store = Store(tmp_path / "x.duckdb")
    with store.connect() as con:
        row = con.execute(
            "SELECT current_setting('autoinstall_known_extensions'), "
            "current_setting('autoload_known_extensions')"
        ).fetchone()
    assert row == (False, False)
    with store.connect(read_only=True) as con:
        row = con.execute("SELECT current_setting('autoload_known_extensions')").fetchone()
    assert row == (False,)


def test_an_empty_file_is_not_taken_for_a_store(tmp_path: Path) -> None:
    (tmp_path / "empty.duckdb").write_bytes(b"")
    with pytest.raises(Exception, match="an empty file"):
        Store(tmp_path / "empty.duckdb").migrate()


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1.0])
def test_store_refuses_a_lock_timeout_that_never_ends(tmp_path: Path, value: float) -> None:
    with pytest.raises(ConfigError, match="lock_timeout"):
        Store(tmp_path / "x.duckdb", lock_timeout=value)


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ({"read_timeout": float("nan")}, "read_timeout"),
        ({"connect_timeout": float("inf")}, "connect_timeout"),
        ({"concurrency": "4"}, "concurrency"),
        ({"db_path": 5}, "db_path"),
    ],
)
def test_settings_refuse_bad_overrides(tmp_path: Path, override: dict[str, Any], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        Settings.from_env({}, toml_path=tmp_path / "none.toml", **override)


def test_reconcile_refuses_a_far_future_as_of_in_python_too(seeded: Path) -> None:
    store = Store(seeded)
    runs = len(store.query("SELECT * FROM recon_runs"))
    with pytest.raises(ReconcileError, match=r"as_of: .* ahead of now"):
        reconcile(store, as_of="2099-01-01", progress=False)
    with pytest.raises(ReconcileError, match="as_of: not an ISO 8601"):
        reconcile(store, as_of="later", progress=False)
    assert len(store.query("SELECT * FROM recon_runs")) == runs
    # Up to a day ahead is accepted (clock skew, the KST date line).
    soon = datetime.now(tz=KST) + timedelta(hours=20)
    assert reconcile(store, as_of=soon, progress=False).as_of == soon


def test_usage_error_is_also_a_value_error() -> None:
    assert issubclass(UsageError, ValueError)


@pytest.mark.parametrize(
    "argv",
    [
        ["reconcile", "--db", "{db}", "--as-of", "2026-11-01T09:00:00+09:00"],
        ["load-orders", "{tmp}/orders.csv", "--db", "{db}", "--source-name", "shop"],
    ],
    ids=["reconcile", "load-orders"],
)
def test_a_closed_output_pipe_is_no_traceback(seeded: Path, tmp_path: Path, argv: list[str]) -> None:
    """``portone-recon ... | head -1``: the reader is gone before the command writes."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTONE_")}
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "portone_recon", *(a.format(db=seeded, tmp=tmp_path) for a in argv)],
            stdout=write_end,
            stderr=subprocess.PIPE,
            cwd=tmp_path,
            env=env,
            timeout=120,
            check=False,
        )
    finally:
        os.close(write_end)
    err = proc.stderr.decode()
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    assert proc.returncode == EXIT_BROKEN_PIPE, err


@pytest.mark.parametrize("value", [float("inf"), float("nan"), "9999999999999999d", 1e300])
def test_a_duration_beyond_any_clock_is_a_value_error(value: float | str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(value)


def test_instant_arguments_name_themselves_and_show_an_example() -> None:
    with pytest.raises(UsageError, match=r"^--since: not an ISO 8601 date or instant: '11/27' \(e\.g\. 2026"):
        instant_arg("11/27", "--since")
    with pytest.raises(UsageError, match="--until"):
        instant_arg(20261127, "--until")  # type: ignore[arg-type]  # a number from a careless caller
    with pytest.raises(UsageError, match="--until"):
        instant_arg("9999-12-31T23:59:59-12:00", "--until")  # past datetime's range once in KST
    assert instant_arg("2026-11-27", "--until") == datetime(2026, 11, 27, tzinfo=KST)
