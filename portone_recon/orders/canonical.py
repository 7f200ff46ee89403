"""Turn a raw source frame into the canonical orders/subscriptions table, or refuse it with every problem.

Nothing here writes: :func:`canonicalize` either returns an Arrow table ready for DuckDB or raises one
:class:`~portone_recon.errors.ValidationError` naming the rows (1-based data rows, header excluded) and
columns at fault. Naive datetimes mean Asia/Seoul; money must be a whole, non-negative number of won.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from portone_recon._time import KST, parse_instant
from portone_recon.errors import RowProblem, ValidationError
from portone_recon.orders.mapping import (
    ORDER_COLUMNS,
    ORDER_STATUSES,
    SUBSCRIPTION_COLUMNS,
    SUBSCRIPTION_STATUSES,
    ColumnMapping,
)

Target = Literal["orders", "subscriptions"]

#: Columns that must exist in the source (others of the canonical set are optional).
REQUIRED: dict[str, tuple[str, ...]] = {
    "orders": ("merchant_uid", "customer_uid", "amount", "status"),
    "subscriptions": ("customer_uid", "status", "amount"),  # subscription_id defaults to customer_uid
}
_INT_TEXT = re.compile(r"^[+-]?\d+(?:\.0*)?$")
_GROUPED = re.compile(r"^[+-]?\d{1,3}(?:,\d{3})+$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_TS = pa.timestamp("us", tz="UTC")
_INT64_MAX = 2**63 - 1
_INT64_MIN = -(2**63)
#: The longest billing interval accepted (months): ten years; anything longer is a typo.
MAX_INTERVAL_MONTHS = 120

_Problems = list[tuple[int, str, str, Any]]  # (row index 0-based, column, problem, value)


def _is_missing(v: Any) -> bool:
    if v is None or v is pd.NaT or v is pd.NA:
        return True
    if isinstance(v, float) and math.isnan(v):
        return True
    return isinstance(v, str) and not v.strip()


def _text_value(v: Any) -> str | None:
    if _is_missing(v):
        return None
    if isinstance(v, str):
        return v.strip()
    if isinstance(v, bool | np.bool_):
        return str(v)
    if isinstance(v, int | np.integer):
        return str(int(v))
    if isinstance(v, float | np.floating) and float(v).is_integer():
        return str(int(v))  # Excel turns 00123-less ids into 123.0
    if isinstance(v, Decimal) and v == v.to_integral_value():
        return str(int(v))
    return str(v).strip()


def _is_str_dtype(series: pd.Series) -> bool:
    return series.dtype != object and pd.api.types.is_string_dtype(series.dtype)


def _is_plain_int_dtype(series: pd.Series) -> bool:
    return isinstance(series.dtype, np.dtype) and series.dtype.kind in "iu"


def _texts(series: pd.Series) -> list[str | None]:
    if _is_str_dtype(series):  # fast path: CSV text columns
        s = series.str.strip()
        s = s.mask(s == "")
        return s.astype(object).where(s.notna(), None).tolist()
    if _is_plain_int_dtype(series):
        ids: list[str | None] = list(series.astype(str).tolist())
        return ids
    return [_text_value(v) for v in series.tolist()]


def _int_value(v: Any) -> int | str | None:
    """An int, None (empty), or a str naming the problem."""
    if _is_missing(v):
        return None
    if isinstance(v, bool | np.bool_):
        return "not an integer"
    if isinstance(v, int | np.integer):
        return int(v)
    if isinstance(v, float | np.floating):
        f = float(v)
        return int(f) if math.isfinite(f) and f.is_integer() else "not a whole number"
    if isinstance(v, Decimal):
        return int(v) if v.is_finite() and v == v.to_integral_value() else "not a whole number"
    if isinstance(v, str):
        s = v.strip()
        if _GROUPED.match(s):
            s = s.replace(",", "")
        if _INT_TEXT.match(s):
            return int(s.split(".")[0])
        return "not a whole number"
    return "not a whole number"


def _ints(series: pd.Series, column: str, problems: _Problems) -> list[int | None]:
    if _is_plain_int_dtype(series) and not (
        series.dtype.kind == "u" and len(series) and series.max() > _INT64_MAX
    ):
        return [int(v) for v in series.to_numpy(dtype=np.int64)]
    if _is_str_dtype(series):  # fast path for clean text; anything odd goes through _int_value
        s = series.str.strip()
        simple = s.str.fullmatch(r"[+-]?\d{1,18}").fillna(False).to_numpy(dtype=bool)
        if simple.all():
            return [int(v) for v in s.astype("int64").to_numpy()]
    out: list[int | None] = []
    for i, v in enumerate(series.tolist()):
        r = _int_value(v)
        if isinstance(r, int) and not _INT64_MIN <= r <= _INT64_MAX:
            r = f"beyond the 64-bit integer range (at most {_INT64_MAX:,})"
        if isinstance(r, str):
            problems.append((i, column, r, v))
            out.append(None)
        else:
            out.append(r)
    return out


def _instant_value(v: Any) -> datetime | str | None:
    if _is_missing(v):
        return None
    if isinstance(v, pd.Timestamp):
        v = v.to_pydatetime()
    if isinstance(v, datetime):
        aware = v.replace(tzinfo=KST) if v.tzinfo is None else v
        return aware.astimezone(UTC)
    if isinstance(v, date):
        return datetime(v.year, v.month, v.day, tzinfo=KST).astimezone(UTC)
    if isinstance(v, str):
        try:
            return parse_instant(v).astimezone(UTC)
        except ValueError:
            return "not an ISO 8601 date/time (e.g. 2026-11-01T00:30:00+09:00)"
    return "not a date/time"


# An offset after a time of day ("2026-11-01" alone ends in "-01" but has none).
_OFFSET = r"\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:Z|[+-]\d{2}(?::?\d{2})?)$"


def _instants(series: pd.Series, column: str, problems: _Problems) -> pd.Series:
    """Instants as a ``datetime64[us, UTC]`` Series (NaT when empty); naive values mean Asia/Seoul."""
    result: pd.Series
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        result = series.dt.tz_convert("UTC")
        return result.astype("datetime64[us, UTC]").reset_index(drop=True)
    if pd.api.types.is_datetime64_dtype(series.dtype):
        result = series.dt.tz_localize(KST).dt.tz_convert("UTC")
        return result.astype("datetime64[us, UTC]").reset_index(drop=True)
    if _is_str_dtype(series):
        fast = _instants_from_text(series)
        if fast is not None:
            return fast
    out: list[datetime | None] = []
    for i, v in enumerate(series.tolist()):
        r = _instant_value(v)
        if isinstance(r, str):
            problems.append((i, column, r, v))
            out.append(None)
        else:
            out.append(r)
    return pd.Series(pd.array(out, dtype="datetime64[us, UTC]"))


def _instants_from_text(series: pd.Series) -> pd.Series | None:
    """Vectorised ISO 8601 parse; None when any cell needs the careful per-cell path."""
    s = series.reset_index(drop=True).str.strip()
    empty = s.isna() | (s == "")
    matched = pc.match_substring_regex(pa.array(s, type=pa.string(), from_pandas=True), _OFFSET)
    has_offset = pd.Series(matched.to_numpy(zero_copy_only=False), index=s.index).fillna(False).astype(bool)
    has_offset &= ~empty
    naive = ~empty & ~has_offset
    out = pd.Series(pd.NaT, index=s.index, dtype="datetime64[us, UTC]")
    try:
        if has_offset.any():
            out[has_offset] = pd.to_datetime(s[has_offset], format="ISO8601", utc=True).astype(
                "datetime64[us, UTC]"
            )
        if naive.any():
            local = pd.to_datetime(s[naive], format="ISO8601")
            out[naive] = local.dt.tz_localize(KST).dt.tz_convert("UTC").astype("datetime64[us, UTC]")
    except (ValueError, TypeError, OverflowError):
        return None
    return out


def _statuses(
    raw: list[str | None],
    column: str,
    allowed: tuple[str, ...],
    mapping: ColumnMapping,
    problems: _Problems,
) -> list[str | None]:
    cache: dict[str, str | None] = {}
    out: list[str | None] = []
    for i, v in enumerate(raw):
        if v is None:
            problems.append((i, column, "empty status", None))
            out.append(None)
            continue
        if v not in cache:
            c = mapping.canonical_status(v)
            cache[v] = c if c in allowed else None
        canon = cache[v]
        if canon is None:
            problems.append(
                (
                    i,
                    column,
                    f"unknown status (expected one of {', '.join(allowed)}, or map it in statuses)",
                    v,
                )
            )
        out.append(canon)
    return out


def _duplicates(keys: list[str | None], column: str, problems: _Problems) -> None:
    first: dict[str, int] = {}
    for i, k in enumerate(keys):
        if k is None:
            continue
        if k in first:
            problems.append((i, column, f"duplicate {column} (first in row {first[k] + 1})", k))
        else:
            first[k] = i


def _required_values(values: list[Any], column: str, problems: _Problems) -> None:
    already = {p[0] for p in problems if p[1] == column}  # unparseable cells are reported once
    for i, v in enumerate(values):
        if v is None and i not in already:
            problems.append((i, column, f"empty {column}", None))


def canonicalize(
    frame: pd.DataFrame,
    target: Target,
    mapping: ColumnMapping,
    *,
    source: str,
) -> pa.Table:
    """Validate ``frame`` and return the canonical rows as Arrow (no ``source``/``loaded_at`` yet).

    Args:
        frame: the raw rows (as :func:`~portone_recon.orders.read_source` returns them).
        target: ``"orders"`` or ``"subscriptions"``.
        mapping: column renames and status values.
        source: the source's name, used in the error.

    Raises:
        ValidationError: missing columns, duplicate keys, non-integer or negative amounts, unparseable
            dates, unknown statuses; names up to 10 offending rows and columns.
    """
    names = {str(c).strip(): c for c in frame.columns}
    canonical_cols = ORDER_COLUMNS if target == "orders" else SUBSCRIPTION_COLUMNS
    present: dict[str, str] = {}
    missing: list[RowProblem] = []
    for col in (*canonical_cols, "currency"):
        src = mapping.source_column(col)
        if src in names:
            present[col] = names[src]
        elif col in REQUIRED[target] or (
            target == "subscriptions"
            and col == "anchor_day"
            and mapping.source_column("started_at") not in names
        ):
            have = ", ".join(list(names)[:12]) + (", ..." if len(names) > 12 else "")
            shown = f"looked for source column {src!r}; " if src != col else ""
            missing.append(RowProblem(None, col, f"missing column ({shown}the source has: {have})"))
    if missing:
        raise ValidationError(source, missing)

    n = len(frame)
    problems: _Problems = []

    def series(name: str) -> pd.Series:
        return frame[present[name]]

    def texts(name: str) -> list[str | None]:
        return _texts(series(name)) if name in present else [None] * n

    def ints(name: str) -> list[int | None]:
        return _ints(series(name), name, problems) if name in present else [None] * n

    def instants(name: str) -> pd.Series:
        if name in present:
            return _instants(series(name), name, problems)
        return pd.Series(pd.NaT, index=range(n), dtype="datetime64[us, UTC]")

    status_raw = texts("status")
    allowed = ORDER_STATUSES if target == "orders" else SUBSCRIPTION_STATUSES
    status = _statuses(status_raw, "status", allowed, mapping, problems)
    amount = ints("amount")
    _required_values(amount, "amount", problems)
    _nonnegative(amount, "amount", problems)
    currency = _currencies(texts("currency"), problems)

    data: dict[str, tuple[list[Any] | pd.Series, pa.DataType]]
    if target == "orders":
        merchant_uid = texts("merchant_uid")
        _required_values(merchant_uid, "merchant_uid", problems)
        _duplicates(merchant_uid, "merchant_uid", problems)
        refunded = ints("refunded_amount")
        _nonnegative(refunded, "refunded_amount", problems)
        refunded_filled = [0 if r is None else r for r in refunded]
        for i, (a, r) in enumerate(zip(amount, refunded_filled, strict=True)):
            if a is not None and a >= 0 and r > a:
                problems.append((i, "refunded_amount", f"refunded_amount exceeds amount {a}", r))
        data = {
            "merchant_uid": (merchant_uid, pa.string()),
            "customer_uid": (texts("customer_uid"), pa.string()),
            "amount": (amount, pa.int64()),
            "currency": (currency, pa.string()),
            "status": (status, pa.string()),
            "status_raw": (status_raw, pa.string()),
            "imp_uid": (texts("imp_uid"), pa.string()),
            "paid_at": (instants("paid_at"), _TS),
            "refunded_amount": (refunded_filled, pa.int64()),
            "subscription_id": (texts("subscription_id"), pa.string()),
            "ordered_at": (instants("ordered_at"), _TS),
        }
    else:
        customer_uid = texts("customer_uid")
        _required_values(customer_uid, "customer_uid", problems)
        # one subscription per card unless the source says otherwise: the id defaults to customer_uid
        sub_ids = [
            s if s is not None else c for s, c in zip(texts("subscription_id"), customer_uid, strict=True)
        ]
        _duplicates(sub_ids, "subscription_id" if "subscription_id" in present else "customer_uid", problems)
        interval = ints("interval_months")
        interval_filled = [1 if v is None else v for v in interval]
        for i, v in enumerate(interval_filled):
            if not 1 <= v <= MAX_INTERVAL_MONTHS:
                problems.append(
                    (i, "interval_months", f"interval_months must be between 1 and {MAX_INTERVAL_MONTHS}", v)
                )
        started = instants("started_at")
        cancelled = instants("cancelled_at")
        anchor = ints("anchor_day")
        bad_anchor = {p[0] for p in problems if p[1] == "anchor_day"}
        anchor_filled: list[int | None] = []
        start_day = started.dt.tz_convert(KST).dt.day.astype(object).where(started.notna(), None).tolist()
        for i, (a, d) in enumerate(zip(anchor, start_day, strict=True)):
            if a is None and d is not None:
                a = int(d)
            if a is None:
                if i not in bad_anchor:
                    problems.append(
                        (i, "anchor_day", "empty anchor_day and no started_at to take it from", None)
                    )
            elif not 1 <= a <= 31:
                problems.append((i, "anchor_day", "anchor_day must be between 1 and 31", a))
            anchor_filled.append(a)
        trial_ends = instants("trial_ends_at")
        for i, (st, t) in enumerate(zip(status, trial_ends.isna().tolist(), strict=True)):
            if st == "trialing" and t:
                problems.append((i, "trial_ends_at", "a trialing subscription needs trial_ends_at", None))
        data = {
            "subscription_id": (sub_ids, pa.string()),
            "customer_uid": (customer_uid, pa.string()),
            "plan": (texts("plan"), pa.string()),
            "status": (status, pa.string()),
            "status_raw": (status_raw, pa.string()),
            "amount": (amount, pa.int64()),
            "currency": (currency, pa.string()),
            "interval_months": (interval_filled, pa.int32()),
            "anchor_day": (anchor_filled, pa.int32()),
            "trial_ends_at": (trial_ends, _TS),
            "started_at": (started, _TS),
            "cancelled_at": (cancelled, _TS),
        }

    if problems:
        order = {c: k for k, c in enumerate((*canonical_cols, "currency"))}
        problems.sort(key=lambda p: (p[0], order.get(p[1], 99)))
        raise ValidationError(source, [RowProblem(i + 1, c, what, v) for i, c, what, v in problems])
    return pa.table({name: _arrow(values, typ) for name, (values, typ) in data.items()})


def _arrow(values: list[Any] | pd.Series, typ: pa.DataType) -> pa.Array:
    if isinstance(values, pd.Series):
        return pa.Array.from_pandas(values, type=typ)
    return pa.array(values, type=typ)


def _nonnegative(values: list[int | None], column: str, problems: _Problems) -> None:
    for i, v in enumerate(values):
        if v is not None and v < 0:
            problems.append((i, column, f"negative {column}", v))


def _currencies(values: list[str | None], problems: _Problems) -> list[str]:
    if all(v is None for v in values):
        return ["KRW"] * len(values)
    out: list[str] = []
    for i, v in enumerate(values):
        cur = "KRW" if v is None else v.upper()
        if not _CURRENCY.match(cur):
            problems.append((i, "currency", "not a 3-letter currency code", v))
        out.append(cur)
    return out


def row_warnings(rows: pa.Table, target: Target) -> list[RowProblem]:
    """Rows that load but look wrong (1-based rows of the canonical table ``canonicalize`` returned).

    A subscription that is not cancelled but whose ``cancelled_at`` lies before its ``started_at``
    contradicts itself (a cancelled sign-up that never started is fine).
    """
    if target != "subscriptions" or rows.num_rows == 0:
        return []
    status = rows.column("status").to_pylist()
    started = rows.column("started_at").to_pylist()
    cancelled = rows.column("cancelled_at").to_pylist()
    return [
        RowProblem(
            i + 1,
            "cancelled_at",
            f"{st} subscription cancelled before it started "
            f"(started_at {s.astimezone(KST):%Y-%m-%d %H:%M} KST)",
            c.astimezone(KST).isoformat(),
        )
        for i, (st, s, c) in enumerate(zip(status, started, cancelled, strict=True))
        if st != "cancelled" and s is not None and c is not None and c < s
    ]
