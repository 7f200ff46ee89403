"""The main job: ``portone-recon demo``.

Generate a sandbox merchant (about 2,000 subscribers over 13 months with every anomaly kind), sync it
into a DuckDB file through the API surface (a ``PortOneClient`` over the sandbox's in-process
transport), load the scenario's orders and subscriptions, then run the daily report (which
reconciles) and the monthly report.
"""

from __future__ import annotations

import html
import importlib
import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from portone_recon._time import KST
from portone_recon.config import Secret, Settings
from portone_recon.errors import ReportError
from portone_recon.reports.formatting import krw
from portone_recon.reports.metrics import default_month
from portone_recon.reports.runner import ReportResult, run_report
from portone_recon.store import Store

DEMO_MARKER_SUFFIX = ".demo.json"


def _marker(db: Path) -> Path:
    return db.with_name(db.name + DEMO_MARKER_SUFFIX)


def _fresh_db(db: Path) -> None:
    """Remove a previous demo's DuckDB file; refuse to touch a file the demo did not create."""
    if db.exists():
        if not _marker(db).exists():
            raise ReportError(
                f"{db} exists and was not created by `portone-recon demo`: pass another --db "
                "(the demo rebuilds its file from scratch)"
            )
        db.unlink()
    db.with_name(db.name + ".wal").unlink(missing_ok=True)


@dataclass(frozen=True)
class DemoResult:
    """What the demo did: the store, the reports and the time each step took."""

    db: Path
    as_of: datetime
    daily: ReportResult
    monthly: ReportResult
    timings: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    labelled: dict[str, int] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return round(sum(self.timings.values()), 2)

    def to_dict(self) -> dict[str, Any]:
        return {
            "db": str(self.db),
            "as_of": self.as_of.isoformat(),
            "daily": self.daily.to_dict(),
            "monthly": self.monthly.to_dict(),
            "timings": self.timings,
            "counts": self.counts,
            "labelled": self.labelled,
            "seconds": self.seconds,
        }

    def __repr__(self) -> str:
        s = self.daily.summary
        return (
            f"DemoResult(db={str(self.db)!r}, findings={s.get('finding_count')}, "
            f"amount_at_risk={s.get('amount_at_risk')}, {self.seconds:.1f}s)"
        )

    def _repr_html_(self) -> str:
        try:
            return f"<pre>{html.escape(self.text())}</pre>"
        except Exception as exc:  # a repr must never raise
            return f"<b>DemoResult</b> <i>unavailable ({html.escape(type(exc).__name__)})</i>"

    def text(self) -> str:
        """The short summary the CLI prints."""
        s = self.daily.summary
        m = self.monthly.summary
        lines = [
            f"demo store: {self.db} ({', '.join(f'{k} {v:,}' for k, v in self.counts.items())})",
            f"as of {self.as_of.astimezone(KST):%Y-%m-%d %H:%M} KST: {s.get('finding_count', 0):,} findings, "
            f"{krw(s.get('amount_at_risk', 0))} at risk (run {s.get('run_id')})",
        ]
        by_kind = s.get("counts_by_kind") or {}
        lines.append(f"  {'kind':<26} {'found':>6} {'injected':>8}")
        for kind in sorted(
            set(by_kind) | set(self.labelled), key=lambda k: list(by_kind).index(k) if k in by_kind else 99
        ):
            found, injected = int(by_kind.get(kind, 0)), int(self.labelled.get(kind, 0))
            if found or injected:
                lines.append(f"  {kind:<26} {found:>6,} {injected:>8,}")
        lines.append(
            f"{m.get('month')}: {m.get('active_subscribers', 0):,} active subscribers, "
            f"MRR {krw(m.get('mrr', 0))}, renewals paid {m.get('renewals_paid', 0):,} "
            f"/ failed {m.get('renewals_failed', 0):,}"
        )
        lines.append("open:")
        for r in (self.daily, self.monthly):
            lines.append(f"  {r.html}")
        steps = ", ".join(f"{k} {v:.1f}s" for k, v in self.timings.items())
        lines.append(f"done in {self.seconds:.1f}s ({steps})")
        return "\n".join(lines)


def _call(module: str, name: str) -> Callable[..., Any]:
    try:
        fn: Callable[..., Any] = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ReportError(f"demo needs {module}.{name}, which is not available: {exc}") from exc
    return fn


def _client_for(world: Any) -> Any:
    """A PortOneClient over the sandbox's in-process transport (the sandbox's own test credentials)."""
    client_cls = _call("portone_recon.api", "PortOneClient")
    return client_cls(
        imp_key=world.imp_key,
        imp_secret=world.imp_secret,
        api_base="https://api.iamport.kr",
        transport=world.transport(),
        sleep=lambda _s: None,
    )


def _sync_v2(scenario: Any, store: Store, *, mixed: bool) -> Any:
    """Read the sandbox merchant through its V2 surface (a mixed merchant: every other customer on V1)."""
    world = scenario.world
    v1_customers: list[str] = []
    if mixed:
        customers = sorted({p["customer_uid"] for p in world.payments.values() if p.get("customer_uid")})
        v1_customers = customers[::2]
    surface = _call("portone_recon.sandbox.v2_api", "SandboxV2")(world, v1_customers=v1_customers)
    settings = Settings(api_secret=Secret("sandbox_v2_secret"))
    client_cls = _call("portone_recon.api.v2", "PortOneV2Client")
    with client_cls(settings, transport=surface.transport(), sleep=lambda _s: None) as client:
        return _call("portone_recon.sync.v2", "sync_v2")(client, store, now=scenario.as_of, only_v2=mixed)


def run_demo(
    db: str | Path = "demo.duckdb",
    out_dir: str | Path = "reports",
    *,
    subscribers: int = 2000,
    months: int = 13,
    seed: int = 7,
    notebook_dir: str | Path | None = None,
    echo: Callable[[str], None] | None = None,
    api: str = "v1",
) -> DemoResult:
    """Run the whole job on a generated sandbox merchant and write the daily and monthly reports.

    Args:
        db: the DuckDB file to (re)build; refuses to replace a file a demo did not create.
        out_dir: the reports folder.
        subscribers / months / seed: the scenario's size and randomness.
        notebook_dir: where the report notebooks are (default: the ones shipped in the package).
        echo: called with a line per finished step (e.g. ``print``).
        api: ``v1`` reads the merchant through V1, ``v2`` through V2 (a V2 merchant), ``mixed`` through
            both into one store (every other customer keeps a V1 billing key; each payment once).
    """
    if api not in ("v1", "v2", "mixed"):
        raise ReportError(f"demo api must be v1, v2 or mixed, got {api!r}")
    say = echo or (lambda _line: None)
    timings: dict[str, float] = {}
    path = Path(db).expanduser().resolve()

    def step(name: str, fn: Callable[[], Any]) -> Any:
        t0 = time.perf_counter()
        value = fn()
        timings[name] = round(time.perf_counter() - t0, 2)
        say(f"  {name:<10} {timings[name]:6.1f}s")
        return value

    _fresh_db(path)  # refuse early, before any work, to replace a file the demo did not create
    generate = _call("portone_recon.sandbox.scenario", "generate_merchant")
    scenario = step("generate", lambda: generate(subscribers=subscribers, months=months, seed=seed))
    store = Store(path)
    store.migrate()
    _marker(path).write_text(
        json.dumps({"subscribers": subscribers, "months": months, "seed": seed}) + "\n", encoding="utf-8"
    )
    if api in ("v1", "mixed"):
        sync = _call("portone_recon.sync", "sync")
        client = _client_for(scenario.world)
        try:
            step("sync", lambda: sync(client, store, progress=False))
        finally:
            close = getattr(client, "close", None)
            if callable(close):
                close()
    if api in ("v2", "mixed"):
        step("sync v2", lambda: _sync_v2(scenario, store, mixed=api == "mixed"))
    load_orders = _call("portone_recon.orders", "load_orders")
    load_subscriptions = _call("portone_recon.orders", "load_subscriptions")
    step("orders", lambda: load_orders(store, scenario.orders, source_name="demo-orders", progress=False))
    step(
        "subs",
        lambda: load_subscriptions(
            store, scenario.subscriptions, source_name="demo-subscriptions", progress=False
        ),
    )
    as_of: datetime = scenario.as_of
    counts = {
        k: v for k, v in store.counts().items() if k in ("payments", "schedules", "orders", "subscriptions")
    }
    # The two notebooks run side by side (kernel start and imports dominate); the monthly report only
    # reads, and each library call holds the file briefly, so the store's lock wait covers the overlap.
    with ThreadPoolExecutor(max_workers=2) as pool:
        t0 = time.perf_counter()
        daily_f = pool.submit(
            run_report,
            "daily",
            {"db": str(path), "as_of": as_of.isoformat(), "grace": "15min"},
            out_dir,
            notebook_dir=notebook_dir,
        )
        monthly_f = pool.submit(
            run_report,
            "monthly",
            {"db": str(path), "as_of": as_of.isoformat(), "month": f"{default_month(as_of):%Y-%m}"},
            out_dir,
            notebook_dir=notebook_dir,
        )
        daily: ReportResult = daily_f.result()
        monthly: ReportResult = monthly_f.result()
        timings["reports"] = round(time.perf_counter() - t0, 2)
        each = f"daily {daily.duration_s:.1f}s, monthly {monthly.duration_s:.1f}s"
        say(f"  {'reports':<10} {timings['reports']:6.1f}s ({each})")
    labels = getattr(scenario, "labels", None)
    labelled = (
        {str(k): int(v) for k, v in labels["kind"].value_counts().items()}
        if labels is not None and "kind" in labels
        else {}
    )
    return DemoResult(
        db=path, as_of=as_of, daily=daily, monthly=monthly, timings=timings, counts=counts, labelled=labelled
    )
