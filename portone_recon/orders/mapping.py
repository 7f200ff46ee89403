"""How a merchant's columns and status values map onto the canonical orders/subscriptions format."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from portone_recon.errors import SourceError

#: Canonical orders columns (also the CLI's file format). ``currency`` is optional (default KRW).
ORDER_COLUMNS: tuple[str, ...] = (
    "merchant_uid",
    "customer_uid",
    "amount",
    "status",
    "imp_uid",
    "paid_at",
    "refunded_amount",
    "subscription_id",
    "ordered_at",
)
#: Canonical subscriptions columns. ``subscription_id`` defaults to ``customer_uid`` (one subscription per
#: card); ``plan``, ``currency``, ``trial_ends_at`` and ``cancelled_at`` are optional.
SUBSCRIPTION_COLUMNS: tuple[str, ...] = (
    "customer_uid",
    "status",
    "amount",
    "interval_months",
    "anchor_day",
    "started_at",
    "cancelled_at",
    "subscription_id",
    "plan",
    "trial_ends_at",
)
ORDER_STATUSES: tuple[str, ...] = ("pending", "paid", "failed", "cancelled", "refunded")
#: ``trialing``: no charge before ``trial_ends_at``; ``paused``: no renewal expected; ``cancelled`` with a
#: future ``cancelled_at``: cancels at period end (renewals stop at ``cancelled_at``).
SUBSCRIPTION_STATUSES: tuple[str, ...] = ("active", "trialing", "paused", "cancelled")
OPTIONAL_COLUMNS: tuple[str, ...] = ("currency",)


@dataclass(frozen=True)
class ColumnMapping:
    """Renames the merchant's columns and maps their status values to canonical ones.

    Attributes:
        columns: ``{canonical: source_column}``, e.g. ``{"merchant_uid": "주문번호"}``. Canonical columns
            not named here are looked up under their own name.
        statuses: ``{raw: canonical}``, e.g. ``{"결제완료": "paid", "결제대기": "pending"}``. A raw value
            that is already canonical (``paid``) is accepted without an entry.
        paid_value: the raw status the :class:`~portone_recon.orders.OrdersWriter` writes back for a paid
            order; default: the first raw value mapped to ``paid`` (else ``"paid"``).

    Build one from a dict (``ColumnMapping.from_dict``) or a JSON/TOML file (``ColumnMapping.from_file``)
    shaped ``{"columns": {...}, "statuses": {...}, "paid_value": "..."}``.
    """

    columns: Mapping[str, str] = field(default_factory=dict)
    statuses: Mapping[str, str] = field(default_factory=dict)
    paid_value: str | None = None

    def __post_init__(self) -> None:
        known = set(ORDER_COLUMNS) | set(SUBSCRIPTION_COLUMNS) | set(OPTIONAL_COLUMNS)
        unknown = sorted(set(self.columns) - known)
        if unknown:
            raise SourceError(
                f"mapping: unknown canonical column(s) {unknown}; columns maps canonical -> source "
                f"column, canonical names are {sorted(known)}"
            )
        statuses = set(ORDER_STATUSES) | set(SUBSCRIPTION_STATUSES)
        bad = sorted(f"{raw!r}: {canon!r}" for raw, canon in self.statuses.items() if canon not in statuses)
        if bad:
            raise SourceError(
                f"mapping: statuses maps raw -> canonical; unknown canonical status in {bad}; "
                f"canonical statuses are {sorted(statuses)}"
            )
        sources = list(self.columns.values())
        dup = sorted({v for v in sources if sources.count(v) > 1})
        if dup:
            raise SourceError(f"mapping: source column(s) {dup} mapped to more than one canonical column")
        object.__setattr__(self, "columns", dict(self.columns))
        object.__setattr__(self, "statuses", {str(k).strip(): v for k, v in self.statuses.items()})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ColumnMapping:
        """Build from ``{"columns": {...}, "statuses": {...}, "paid_value": ...}``."""
        allowed = {"columns", "statuses", "paid_value"}
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise SourceError(f"mapping: unknown key(s) {unknown}; allowed: {sorted(allowed)}")
        columns = data.get("columns") or {}
        statuses = data.get("statuses") or {}
        paid_value = data.get("paid_value")
        if not isinstance(columns, Mapping) or not isinstance(statuses, Mapping):
            raise SourceError("mapping: 'columns' and 'statuses' must be objects (dicts)")
        if paid_value is not None and not isinstance(paid_value, str):
            raise SourceError("mapping: 'paid_value' must be a string")
        return cls(
            columns={str(k): str(v) for k, v in columns.items()},
            statuses={str(k): str(v) for k, v in statuses.items()},
            paid_value=paid_value,
        )

    @classmethod
    def from_file(cls, path: str | Path) -> ColumnMapping:
        """Read a ``.json`` or ``.toml`` mapping file (UTF-8)."""
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise SourceError(f"{p}: cannot read the mapping file: {exc}") from exc
        except UnicodeDecodeError as exc:
            raise SourceError(
                f"{p}: the mapping file is not UTF-8 text (byte {exc.start}); save it as UTF-8"
            ) from None
        try:
            data = tomllib.loads(text) if p.suffix.lower() == ".toml" else json.loads(text)
        except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
            raise SourceError(
                f"{p}: not valid {'TOML' if p.suffix.lower() == '.toml' else 'JSON'}: {exc}"
            ) from exc
        if not isinstance(data, dict):
            raise SourceError(f"{p}: a mapping file holds an object with 'columns' and/or 'statuses'")
        try:
            return cls.from_dict(data)
        except SourceError as exc:
            raise SourceError(f"{p}: {exc}") from None

    @classmethod
    def coerce(cls, value: ColumnMapping | Mapping[str, Any] | str | Path | None) -> ColumnMapping:
        """Accept a ColumnMapping, a plain dict, a file path, or None (identity)."""
        if value is None:
            return cls()
        if isinstance(value, ColumnMapping):
            return value
        if isinstance(value, str | Path):
            return cls.from_file(value)
        return cls.from_dict(value)

    def source_column(self, canonical: str) -> str:
        """The merchant's name for a canonical column."""
        return self.columns.get(canonical, canonical)

    def canonical_status(self, raw: str) -> str | None:
        """The canonical status of a raw value (stripped), or None when unknown."""
        key = raw.strip()
        if key in self.statuses:
            return self.statuses[key]
        return key if key in ORDER_STATUSES or key in SUBSCRIPTION_STATUSES else None

    def raw_statuses(self, canonical: str) -> list[str]:
        """Every raw value that means ``canonical`` (mapped ones first, then the canonical word)."""
        raws = [raw for raw, canon in self.statuses.items() if canon == canonical]
        if canonical not in self.statuses:
            raws.append(canonical)
        return raws

    def raw_paid_value(self) -> str:
        """The raw status written back for a paid order."""
        if self.paid_value is not None:
            return self.paid_value
        return self.raw_statuses("paid")[0]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"columns": dict(self.columns), "statuses": dict(self.statuses)}
        if self.paid_value is not None:
            out["paid_value"] = self.paid_value
        return out

    def __repr__(self) -> str:
        return f"ColumnMapping({len(self.columns)} column(s), {len(self.statuses)} status value(s))"

    def _repr_html_(self) -> str:
        try:
            from html import escape

            rows = "".join(
                f"<tr><td>{escape(k)}</td><td>{escape(v)}</td></tr>" for k, v in self.columns.items()
            )
            stat = "".join(
                f"<tr><td>{escape(k)}</td><td>{escape(v)}</td></tr>" for k, v in self.statuses.items()
            )
            return (
                "<b>ColumnMapping</b><table><tr><th>canonical</th><th>source column</th></tr>"
                f"{rows}</table><table><tr><th>raw status</th><th>canonical</th></tr>{stat}</table>"
            )
        except Exception:
            return "<b>ColumnMapping</b>"
