"""The daily report says, per PortOne API, what the store read; a mixed merchant gets one report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from v2_world import mixed_world

from portone_recon.api import PortOneClient
from portone_recon.api.v2 import PortOneV2Client
from portone_recon.config import Settings
from portone_recon.reports import build_daily
from portone_recon.sandbox import SandboxWorld
from portone_recon.sandbox.v2_api import SandboxV2
from portone_recon.store import Store
from portone_recon.sync import sync
from portone_recon.sync.v2 import sync_v2

LOOKBACK = timedelta(days=200)


def _now(w: SandboxWorld) -> datetime:
    return datetime.fromtimestamp(w.now, UTC)


def _sync_v1(w: SandboxWorld, store: Store) -> None:
    with PortOneClient(imp_key=w.imp_key, imp_secret=w.imp_secret, api_base="https://v1.invalid",
                       transport=w.transport(), sleep=lambda s: None) as c:  # fmt: skip
        sync(c, store, progress=False, lookback=LOOKBACK)


def _sync_v2(v2: SandboxV2, store: Store, *, only_v2: bool) -> None:
    settings = Settings(api_secret="sandbox_v2_secret", v2_api_base="https://v2.invalid")
    with PortOneV2Client(settings, transport=v2.transport(), sleep=lambda s: None) as c:
        sync_v2(c, store, now=_now(v2.world), only_v2=only_v2, lookback=LOOKBACK)


def _per_source(store: Store, table: str) -> dict[str, int]:
    df = store.query(f"SELECT source_api, count(*) AS n FROM {table} GROUP BY 1")
    return {str(s): int(n) for s, n in zip(df["source_api"], df["n"], strict=True)}


def test_a_mixed_merchant_gets_one_report_naming_both_sources(tmp_path: Path) -> None:
    w, v2 = mixed_world()
    store = Store(tmp_path / "mixed.duckdb")
    _sync_v1(w, store)
    _sync_v2(v2, store, only_v2=True)
    report = build_daily(store.path, as_of=_now(w))
    assert report.sources is not None
    assert report.sources.sources() == ["v1", "v2"]

    table = report.sources.table().set_index("source_api")
    for what in ("schedules", "billing_keys"):
        truth = _per_source(store, what)
        assert set(truth) == {"v1", "v2"} and min(truth.values()) > 0, what
        assert {"v1": int(table.loc["PortOne V1", what]), "v2": int(table.loc["PortOne V2", what])} == truth
    # Each payment once: the sources add up to the world's transactions, each imp_uid one row.
    issued = {i for i, p in w.payments.items() if p.get("customer_uid_usage") == "issue"}
    distinct = int(store.query("SELECT count(DISTINCT imp_uid) AS n FROM payments")["n"][0])
    assert report.sources.transaction_total == distinct == len(w.payments)
    assert report.sources.payment_total == len(w.payments) - len(issued)
    truth = _per_source(store, "payments")
    assert int(table["payments"].sum()) + int(table["issue_transactions"].sum()) == sum(truth.values())
    assert int(table.loc["PortOne V2", "issue_transactions"]) == 0

    html = report.headline_html()
    assert "PortOne V1" in html and "PortOne V2" in html
    assert f"결제 합계 <b>{len(w.payments) - len(issued):,}건</b>" in html
    streams = set(report.sources.streams["stream"])
    assert {"payments:paid", "schedules", "billing_keys", "v2:payments", "v2:schedules"} <= streams
    for stream in streams:
        assert f"<td>{stream}</td>" in html, stream
    assert report.sources.streams["last_success"].notna().all()
    assert set(table["failing"]) == {0}

    summary = report.summary()["sources"]
    assert set(summary) == {"v1", "v2"}
    assert sum(s["payments"] + s["issue_transactions"] for s in summary.values()) == len(w.payments)
    assert set(summary["v2"]["streams"]) == {s for s in streams if s.startswith("v2:")}
    assert all(at is not None for s in summary.values() for at in s["streams"].values())


def test_a_v1_store_shows_only_v1(tmp_path: Path) -> None:
    w, _ = mixed_world()
    store = Store(tmp_path / "v1.duckdb")
    _sync_v1(w, store)
    report = build_daily(store.path, as_of=_now(w))
    assert report.sources is not None
    assert report.sources.sources() == ["v1"]
    html = report.headline_html()
    assert "PortOne V1" in html and "PortOne V2" not in html and "v2:" not in html
    assert "결제 합계" not in html  # one source: its row is the total
    assert set(report.summary()["sources"]) == {"v1"}


def test_a_v2_merchant_counts_payments_made_through_v1_under_v2_once(tmp_path: Path) -> None:
    w, v2 = mixed_world()
    store = Store(tmp_path / "v2.duckdb")
    _sync_v2(v2, store, only_v2=False)
    report = build_daily(store.path, as_of=_now(w))
    assert report.sources is not None
    assert report.sources.sources() == ["v2"]
    assert report.sources.transaction_total == len(w.payments)
    made_in_v1 = store.query("SELECT count(*) FILTER (WHERE api_version = 'V1') AS n FROM payments")
    assert int(made_in_v1["n"][0]) > 0


def test_a_failing_stream_is_counted_against_its_source(tmp_path: Path) -> None:
    w, v2 = mixed_world()
    store = Store(tmp_path / "f.duckdb")
    _sync_v1(w, store)
    _sync_v2(v2, store, only_v2=True)
    with store.connect() as con:
        con.execute(
            "UPDATE sync_state SET last_error = 'HTTP 503 from /payment-schedules' "
            "WHERE stream = 'v2:schedules'"
        )
    report = build_daily(store.path, as_of=_now(w))
    assert report.sources is not None
    failing = dict(zip(report.sources.table()["source_api"], report.sources.table()["failing"], strict=True))
    assert failing == {"PortOne V1": 0, "PortOne V2": 1}
    assert "HTTP 503 from /payment-schedules" in report.headline_html()
