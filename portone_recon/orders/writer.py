"""Write a re-verified payment back to the merchant's SQL orders table, only where still unpaid."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from portone_recon._time import KST, parse_instant
from portone_recon.errors import SourceError
from portone_recon.orders.mapping import ColumnMapping
from portone_recon.orders.sources import _sqlalchemy, make_engine, safe_url, split_table
from portone_recon.store import Store

#: Canonical statuses a write-back may turn into paid (a cancelled or refunded order is never revived).
UNPAID_STATUSES: tuple[str, ...] = ("pending", "failed")

PaidRow = Mapping[str, Any]


class OrdersWriter:
    """Marks orders paid in the merchant's own SQL table, through the same mapping as the load.

    Each call runs in one transaction and only changes rows whose status is still unpaid (a raw value
    meaning ``pending`` or ``failed``) and whose amount equals the verified amount. The status written
    is the merchant's own raw value for paid (:meth:`ColumnMapping.raw_paid_value`).

    Args:
        url: SQLAlchemy URL of the orders database (its password is never shown in errors).
        table: the orders table (``schema.table`` allowed).
        mapping: the same mapping the orders were loaded with (dict, file path or ColumnMapping).
        unpaid_statuses: canonical statuses that may become paid.
    """

    def __init__(
        self,
        url: str,
        table: str,
        mapping: ColumnMapping | Mapping[str, Any] | str | Path | None = None,
        *,
        unpaid_statuses: Iterable[str] = UNPAID_STATUSES,
    ) -> None:
        self._url = url
        self.location = safe_url(url)
        self.table = table
        self.mapping = ColumnMapping.coerce(mapping)
        self.unpaid_statuses = tuple(unpaid_statuses)
        self._engine: Any = None
        self._table: Any = None

    @classmethod
    def from_store(
        cls,
        store: Store,
        *,
        source: str | None = None,
        url: str | None = None,
    ) -> OrdersWriter:
        """The writer for the SQL source the orders snapshot was loaded from.

        Args:
            store: the store whose ``source_loads`` recorded the snapshot.
            source: the snapshot's name; default: the only (or latest) SQL orders source.
            url: the full URL (with password) when the recorded one (stored without password) is not
                enough to connect; it must point at the same database.
        """
        sql = (
            "SELECT source, location, table_name, mapping FROM source_loads "
            "WHERE target = 'orders' AND kind = 'sql'"
        )
        params: list[Any] = []
        if source is not None:
            sql += " AND source = ?"
            params.append(source)
        rows = store.query(sql + " ORDER BY loaded_at DESC", params)
        if rows.empty:
            which = f"source {source!r}" if source else "any SQL source"
            raise SourceError(
                f"{store.path}: no orders snapshot was loaded from {which}; nothing to write to"
            )
        row = rows.iloc[0]
        if row["table_name"] is None or pd.isna(row["table_name"]):
            raise SourceError(
                f"{row['source']}: loaded from a query, not a table; build OrdersWriter(url, table) yourself"
            )
        if url is not None and safe_url(url) != row["location"]:
            raise SourceError(f"url {safe_url(url)} is not the recorded source database {row['location']}")
        mapping = ColumnMapping.coerce(_json(row["mapping"]))
        return cls(url or str(row["location"]), str(row["table_name"]), mapping)

    def __repr__(self) -> str:
        return f"OrdersWriter({self.location!r}, table={self.table!r})"

    # -- writing ----------------------------------------------------------------------------------

    def mark_paid(self, merchant_uid: str, *, imp_uid: str, paid_at: datetime | str, amount: int) -> int:
        """Mark one order paid; returns rows changed (0 when already paid, not unpaid, or amount differs)."""
        return self.mark_paid_many(
            [{"merchant_uid": merchant_uid, "imp_uid": imp_uid, "paid_at": paid_at, "amount": amount}]
        )

    def mark_paid_many(self, rows: Iterable[PaidRow] | pd.DataFrame) -> int:
        """Mark many orders paid in one transaction; returns the total rows changed.

        Args:
            rows: mappings (or a DataFrame) with ``merchant_uid``, ``imp_uid``, ``paid_at``, ``amount``.
        """
        items: list[PaidRow] = (
            [{str(k): v for k, v in r.items()} for r in rows.to_dict("records")]
            if isinstance(rows, pd.DataFrame)
            else list(rows)
        )
        if not items:
            return 0
        sa = _sqlalchemy()
        tbl = self._reflect()
        m = self.mapping
        cols = tbl.c
        needed = {"merchant_uid", "status", "amount"}
        for canon in sorted(needed):
            if m.source_column(canon) not in cols:
                raise SourceError(f"{self._where}: no column {m.source_column(canon)!r} ({canon})")
        unpaid_raw = [raw for canon in self.unpaid_statuses for raw in m.raw_statuses(canon)]
        paid_value = m.raw_paid_value()
        changed = 0
        try:
            with self._engine_().begin() as con:
                for i, item in enumerate(items):
                    merchant_uid, imp_uid, paid_at, amount = _check_item(item, i)
                    values: dict[str, Any] = {m.source_column("status"): paid_value}
                    if m.source_column("imp_uid") in cols:
                        values[m.source_column("imp_uid")] = imp_uid
                    pcol = m.source_column("paid_at")
                    if pcol in cols:
                        values[pcol] = _paid_at_value(cols[pcol].type, paid_at, sa)
                    stmt = (
                        sa.update(tbl)
                        .where(cols[m.source_column("merchant_uid")] == merchant_uid)
                        .where(cols[m.source_column("status")].in_(unpaid_raw))
                        .where(cols[m.source_column("amount")] == amount)
                        .values(values)
                    )
                    changed += int(con.execute(stmt).rowcount)
        except sa.exc.SQLAlchemyError as exc:
            detail = str(getattr(exc, "orig", None) or type(exc).__name__).splitlines()[0]
            raise SourceError(f"{self._where}: write-back failed, nothing changed: {detail}") from exc
        return changed

    def add_pending(
        self,
        merchant_uid: str,
        *,
        customer_uid: str,
        amount: int,
        currency: str = "KRW",
        subscription_id: str | None = None,
    ) -> int:
        """Create the pending order of a charge portone_recon books (a rebook), unless it exists.

        The merchant's webhook handler then finds the order when PortOne charges it, and the next
        reconcile sees it. Columns the table lacks (currency, subscription_id) are left out; the status
        written is the merchant's raw value for ``pending``. Returns rows inserted (0 when it existed).
        """
        sa = _sqlalchemy()
        tbl = self._reflect()
        m = self.mapping
        cols = tbl.c
        for canon in ("merchant_uid", "status", "amount"):
            if m.source_column(canon) not in cols:
                raise SourceError(f"{self._where}: no column {m.source_column(canon)!r} ({canon})")
        values: dict[str, Any] = {
            m.source_column("merchant_uid"): merchant_uid,
            m.source_column("status"): m.raw_statuses("pending")[0],
            m.source_column("amount"): int(amount),
        }
        for canon, value in (
            ("customer_uid", customer_uid),
            ("currency", currency),
            ("subscription_id", subscription_id),
        ):
            if value is not None and m.source_column(canon) in cols:
                values[m.source_column(canon)] = value
        mu_col = cols[m.source_column("merchant_uid")]
        try:
            with self._engine_().begin() as con:
                exists = con.execute(sa.select(mu_col).where(mu_col == merchant_uid)).first()
                if exists is not None:
                    return 0
                con.execute(sa.insert(tbl).values(values))
        except sa.exc.SQLAlchemyError as exc:
            detail = str(getattr(exc, "orig", None) or type(exc).__name__).splitlines()[0]
            raise SourceError(f"{self._where}: could not add order {merchant_uid}: {detail}") from exc
        return 1

    # -- internals --------------------------------------------------------------------------------

    @property
    def _where(self) -> str:
        return f"{self.location}#table={self.table}"

    def _engine_(self) -> Any:
        if self._engine is None:
            self._engine = make_engine(self._url)
        return self._engine

    def _reflect(self) -> Any:
        if self._table is None:
            sa = _sqlalchemy()
            schema, name = split_table(self.table)
            try:
                self._table = sa.Table(name, sa.MetaData(), schema=schema, autoload_with=self._engine_())
            except sa.exc.NoSuchTableError:
                raise SourceError(f"{self._where}: no such table") from None
            except sa.exc.SQLAlchemyError as exc:
                detail = str(getattr(exc, "orig", None) or type(exc).__name__).splitlines()[0]
                raise SourceError(f"{self._where}: cannot read the table: {detail}") from exc
        return self._table

    def close(self) -> None:
        """Release the database connections."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def __enter__(self) -> OrdersWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _json(value: Any) -> Any:
    import json

    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    return json.loads(value) if isinstance(value, str) else value


def _check_item(item: PaidRow, index: int) -> tuple[str, str, datetime, int]:
    try:
        merchant_uid = str(item["merchant_uid"])
        imp_uid = str(item["imp_uid"])
        raw_amount = item["amount"]
        paid_at_raw = item["paid_at"]
    except KeyError as exc:
        raise SourceError(f"mark_paid row {index + 1}: missing {exc.args[0]!r}") from None
    if isinstance(raw_amount, bool) or not float(raw_amount).is_integer() or int(raw_amount) < 0:
        raise SourceError(
            f"mark_paid row {index + 1} ({merchant_uid}): amount must be a whole won, got {raw_amount!r}"
        )
    if isinstance(paid_at_raw, datetime | date | str):
        try:
            paid_at = parse_instant(paid_at_raw)
        except ValueError as exc:
            raise SourceError(f"mark_paid row {index + 1} ({merchant_uid}): paid_at: {exc}") from None
    else:
        raise SourceError(
            f"mark_paid row {index + 1} ({merchant_uid}): paid_at must be a datetime or ISO text"
        )
    return merchant_uid, imp_uid, paid_at, int(raw_amount)


def _paid_at_value(col_type: Any, paid_at: datetime, sa: Any) -> Any:
    """Write the instant in the column's own form: aware, naive KST wall time, or ISO 8601 text."""
    if isinstance(col_type, sa.DateTime):
        if getattr(col_type, "timezone", False):
            return paid_at.astimezone(UTC)
        return paid_at.astimezone(KST).replace(tzinfo=None)  # naive columns hold Asia/Seoul wall time
    if isinstance(col_type, sa.Date):
        return paid_at.astimezone(KST).date()
    return paid_at.astimezone(KST).isoformat()
