"""portone_recon: reconcile PortOne V1 recurring payments with the merchant's own orders.

``import portone_recon as pr``::

    store = pr.open_store("portone_recon.duckdb")
    pr.sync(pr.PortOneClient.from_env(), store)
    pr.load_orders(store, "orders.csv")
    result = pr.reconcile(store)
    pr.acknowledge(store, ["3f2a..."], note="manual discount agreed by sales", until="2026-12-31")
    plan = pr.plan_for_store(store)  # the latest run, the store's subscriptions and triage decisions
    pr.apply(plan, client, store, dry_run=True)
    pr.run_report("daily", {"as_of": "2026-11-27"}, "reports/")
"""

from portone_recon.actions import ApplyReport, FixPlan, apply, plan_fixes, plan_for_store, rebook, reverify
from portone_recon.api import PortOneClient
from portone_recon.api.v2 import PortOneV2Client
from portone_recon.config import Secret, Settings
from portone_recon.errors import PortOneReconError
from portone_recon.orders import OrdersWriter, load_orders, load_subscriptions
from portone_recon.reconcile import ReconResult, acknowledge, load_result, reconcile, unacknowledge
from portone_recon.reports import run_report
from portone_recon.sandbox import CardBehaviour, SandboxWorld, Scenario, generate_merchant
from portone_recon.store import Store, open_store
from portone_recon.sync import SyncReport, sync

__version__ = "0.1.0"

__all__ = [
    "ApplyReport",
    "CardBehaviour",
    "FixPlan",
    "OrdersWriter",
    "PortOneClient",
    "PortOneReconError",
    "PortOneV2Client",
    "ReconResult",
    "SandboxWorld",
    "Scenario",
    "Secret",
    "Settings",
    "Store",
    "SyncReport",
    "__version__",
    "acknowledge",
    "apply",
    "generate_merchant",
    "load_orders",
    "load_result",
    "load_subscriptions",
    "open_store",
    "plan_fixes",
    "plan_for_store",
    "rebook",
    "reconcile",
    "reverify",
    "run_report",
    "sync",
    "unacknowledge",
]
