"""Hand-built worlds for the reconciliation rules: a tiny builder over a fresh store."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from portone_recon._time import KST
from portone_recon.reconcile import ReconResult, reconcile
from portone_recon.store import Store

AS_OF = datetime(2026, 11, 27, 6, 0, tzinfo=KST)
PRICE = 9900


def kst(y: int, m: int, d: int, h: int = 10, mi: int = 0, s: int = 0) -> datetime:
    return datetime(y, m, d, h, mi, s, tzinfo=KST)


class World:
    """Rows to put in the store; ``run()`` writes them (one connection) and reconciles."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._rows: list[tuple[str, dict[str, Any]]] = []
        self._imp = 0

    def _add(self, table: str, **row: Any) -> None:
        self._rows.append((table, row))

    def new_imp(self) -> str:
        self._imp += 1
        return f"imp_{self._imp:012d}"

    # -- PortOne side -----------------------------------------------------------------------------

    def payment(
        self,
        merchant_uid: str,
        *,
        customer_uid: str | None = None,
        status: str = "paid",
        amount: int = PRICE,
        cancel_amount: int = 0,
        currency: str = "KRW",
        at: datetime | None = None,
        paid_at: datetime | None = None,
        cancelled_at: datetime | None = None,
        imp_uid: str | None = None,
        usage: str | None = "payment.scheduled",
        sandbox: bool = False,
    ) -> str:
        imp = imp_uid or self.new_imp()
        at = at or paid_at or AS_OF - timedelta(days=3)
        if status in ("paid", "cancelled") and paid_at is None and status == "paid":
            paid_at = at
        self._add(
            "payments",
            imp_uid=imp,
            merchant_uid=merchant_uid,
            customer_uid=customer_uid,
            customer_uid_usage=usage if customer_uid else None,
            status=status,
            amount=amount,
            cancel_amount=cancel_amount,
            currency=currency,
            started_at=at,
            paid_at=paid_at,
            failed_at=at if status == "failed" else None,
            cancelled_at=cancelled_at if cancelled_at else (at if status == "cancelled" else None),
            fail_reason="[F113] 한도초과" if status == "failed" else None,
            sandbox=sandbox,
            synced_at=AS_OF,
        )
        return imp

    def cancellation(self, imp_uid: str, amount: int, at: datetime, cid: str | None = None) -> None:
        self._add(
            "payment_cancellations",
            imp_uid=imp_uid,
            cancellation_id=cid or f"c_{imp_uid}_{int(at.timestamp())}",
            amount=amount,
            cancelled_at=at,
            synced_at=AS_OF,
        )

    def schedule(
        self,
        merchant_uid: str,
        customer_uid: str,
        schedule_at: datetime,
        *,
        status: str = "scheduled",
        payment_status: str | None = None,
        imp_uid: str | None = None,
        amount: int = PRICE,
    ) -> None:
        self._add(
            "schedules",
            merchant_uid=merchant_uid,
            customer_uid=customer_uid,
            schedule_status=status,
            payment_status=payment_status,
            imp_uid=imp_uid,
            schedule_at=schedule_at,
            executed_at=schedule_at if status == "executed" else None,
            revoked_at=schedule_at - timedelta(days=1) if status == "revoked" else None,
            amount=amount,
            synced_at=AS_OF,
        )

    def key(self, customer_uid: str, *, deleted: bool = False) -> None:
        self._add("billing_keys", customer_uid=customer_uid, deleted=deleted, synced_at=AS_OF)

    # -- merchant side ----------------------------------------------------------------------------

    def order(
        self,
        merchant_uid: str,
        customer_uid: str | None,
        *,
        status: str = "pending",
        amount: int = PRICE,
        paid_at: datetime | None = None,
        refunded_amount: int = 0,
        imp_uid: str | None = None,
        currency: str = "KRW",
        subscription_id: str | None = None,
        ordered_at: datetime | None = None,
    ) -> None:
        self._add(
            "orders",
            subscription_id=subscription_id,
            ordered_at=ordered_at,
            merchant_uid=merchant_uid,
            customer_uid=customer_uid,
            amount=amount,
            currency=currency,
            status=status,
            imp_uid=imp_uid,
            paid_at=paid_at,
            refunded_amount=refunded_amount,
            source="test",
            loaded_at=AS_OF,
        )

    def sub(
        self,
        customer_uid: str,
        *,
        anchor_day: int,
        status: str = "active",
        amount: int = PRICE,
        cancelled_at: datetime | None = None,
        subscription_id: str | None = None,
        interval_months: int = 1,
        started_at: datetime | None = None,
        trial_ends_at: datetime | None = None,
        currency: str = "KRW",
        plan: str | None = None,
    ) -> None:
        self._add(
            "subscriptions",
            subscription_id=subscription_id or customer_uid,
            customer_uid=customer_uid,
            plan=plan,
            status=status,
            amount=amount,
            currency=currency,
            interval_months=interval_months,
            anchor_day=anchor_day,
            trial_ends_at=trial_ends_at,
            started_at=started_at or kst(2025, 1, anchor_day if anchor_day <= 28 else 28),
            cancelled_at=cancelled_at,
            source="test",
            loaded_at=AS_OF,
        )

    # -- composite ---------------------------------------------------------------------------------

    def renewal(
        self,
        customer_uid: str,
        at: datetime,
        *,
        amount: int = PRICE,
        merchant_uid: str | None = None,
        webhook: bool = True,
    ) -> str:
        """A schedule that executed and was paid, its payment and (webhook handled) its paid local order."""
        mu = merchant_uid or f"sub-{customer_uid}-{at:%Y%m}"
        imp = self.payment(mu, customer_uid=customer_uid, amount=amount, at=at + timedelta(seconds=3))
        self.schedule(
            mu, customer_uid, at, status="executed", payment_status="paid", imp_uid=imp, amount=amount
        )
        if webhook:
            self.order(
                mu, customer_uid, status="paid", amount=amount, paid_at=at + timedelta(seconds=5), imp_uid=imp
            )
        else:
            self.order(mu, customer_uid, status="pending", amount=amount)
        return imp

    def failed_renewal(self, customer_uid: str, at: datetime, *, merchant_uid: str | None = None) -> str:
        """A schedule that executed and failed, its failed payment and (webhook handled) its failed order."""
        mu = merchant_uid or f"sub-{customer_uid}-{at:%Y%m}"
        imp = self.payment(mu, customer_uid=customer_uid, status="failed", at=at)
        self.schedule(mu, customer_uid, at, status="executed", payment_status="failed", imp_uid=imp)
        self.order(mu, customer_uid, status="failed")
        return imp

    def booked(
        self, customer_uid: str, at: datetime, *, amount: int = PRICE, merchant_uid: str | None = None
    ) -> str:
        """A future schedule with its pending local order."""
        mu = merchant_uid or f"sub-{customer_uid}-{at:%Y%m}"
        self.schedule(mu, customer_uid, at, amount=amount)
        self.order(mu, customer_uid, status="pending", amount=amount)
        return mu

    def healthy(
        self, customer_uid: str, anchor_day: int, months: list[tuple[int, int]], *, amount: int = PRICE
    ) -> None:
        """A healthy subscriber: key, subscription, paid renewals on each (year, month), next one booked."""
        from portone_recon._time import add_months, anchored_date

        self.key(customer_uid)
        self.sub(customer_uid, anchor_day=anchor_day, amount=amount)
        for y, m in months:
            d = anchored_date(y, m, anchor_day)
            self.renewal(customer_uid, kst(d.year, d.month, d.day), amount=amount)
        ny, nm = add_months(*months[-1], 1)
        d = anchored_date(ny, nm, anchor_day)
        self.booked(customer_uid, kst(d.year, d.month, d.day), amount=amount)

    # -- writing and running -------------------------------------------------------------------------

    def flush(self) -> None:
        if not self._rows:
            return
        with self.store.transaction() as con:
            for table, row in self._rows:
                cols = ", ".join(row)
                marks = ", ".join("?" for _ in row)
                con.execute(f"INSERT INTO {table} ({cols}) VALUES ({marks})", list(row.values()))
        self._rows.clear()

    def execute(self, sql: str, params: list[Any] | None = None) -> None:
        self.flush()
        with self.store.transaction() as con:
            con.execute(sql, params or [])

    def synced(self, stream: str, covered_from: datetime, cursor: datetime = AS_OF) -> None:
        """A sync_state row: ``stream`` holds every row from ``covered_from`` up to ``cursor``."""
        self._add("sync_state", stream=stream, cursor=cursor, last_success=cursor, covered_from=covered_from)

    def run(self, as_of: datetime = AS_OF, grace: str = "15min", **kw: Any) -> ReconResult:
        self.flush()
        return reconcile(self.store, as_of=as_of, grace=grace, progress=False, **kw)


def keys(result: ReconResult, kind: str, column: str) -> set[str]:
    """The values of ``column`` among the findings of ``kind``."""
    return set(result[kind][column].dropna().astype(str))


def kinds_of(result: ReconResult) -> dict[str, int]:
    """Non-zero counts by kind."""
    return {k: n for k, n in result.counts.items() if n}
