"""Display helpers: KRW to the won with thousands separators, instants in Asia/Seoul, HTML tables."""

from __future__ import annotations

import hashlib
import html
import importlib
import math
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from portone_recon._time import KST

#: Columns holding KRW amounts (integers, shown as 12,900).
MONEY_COLUMNS = frozenset(
    {
        "amount",
        "cancel_amount",
        "portone_amount",
        "local_amount",
        "amount_at_risk",
        "refunded_amount",
        "mrr",
        "mrr_change",
        "paid_amount",
        "recovered_amount",
        "unpaid_amount",
    }
)

#: Free-text columns (raw or labelled names): they wrap inside a bounded width while every other cell
#: (ids, amounts, times) stays on one line; a table wider than the page scrolls inside its own box.
WRAP_COLUMNS = frozenset(
    {
        "detail",
        "reason",
        "request",
        "note",
        "triage_note",
        "message",
        "resolved_how",
        "메모",
        "해결 경위",
        "설명",
        "내용",
    }
)

SEVERITIES = ("critical", "high", "medium", "low")
SEVERITY_LABELS = {"critical": "치명", "high": "높음", "medium": "보통", "low": "낮음"}
SEVERITY_COLORS = {"critical": "#b71c1c", "high": "#e65100", "medium": "#f9a825", "low": "#607d8b"}


def html_output(text: str) -> Any:
    """An IPython HTML display object (what a notebook cell shows as rich output)."""
    ipy_display: Any = importlib.import_module("IPython.display")
    return ipy_display.HTML(text)


def krw(value: Any, *, unit: str = "원") -> str:
    """An amount in won with thousands separators (``12,900원``); blank for missing values."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return ""
    try:
        return f"{round(float(value)):,}{unit}"
    except (TypeError, ValueError):
        return str(value)


def kst(value: Any, *, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """An instant shown in Asia/Seoul; naive values are taken as Asia/Seoul already."""
    if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(KST)
        return str(value.strftime(fmt))
    return str(value)


def duration(value: Any) -> str:
    """A timedelta as ``3일 4시간`` / ``5시간 12분`` / ``7분``."""
    if value is None or value is pd.NaT:
        return ""
    if isinstance(value, pd.Timedelta):
        value = value.to_pytimedelta()
    if not isinstance(value, timedelta):
        return str(value)
    total = int(value.total_seconds())
    sign = "-" if total < 0 else ""
    total = abs(total)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{sign}{days}일 {hours}시간"
    if hours:
        return f"{sign}{hours}시간 {minutes}분"
    return f"{sign}{minutes}분"


def percent(value: Any, *, digits: int = 1) -> str:
    """A ratio (0.123) as ``12.3%``; blank when undefined."""
    if (
        value is None
        or value is pd.NA
        or (isinstance(value, float) and (math.isnan(value) or math.isinf(value)))
    ):
        return ""
    return f"{float(value) * 100:.{digits}f}%"


def display_frame(df: pd.DataFrame, *, money: Iterable[str] = MONEY_COLUMNS) -> pd.DataFrame:
    """A copy for people: money as ``12,900``, instants as KST text, timedeltas as ``3일 4시간``."""
    money_set = set(money)
    out = pd.DataFrame(index=df.index)
    for col in df.columns:
        s = df[col]
        if col in money_set:
            out[col] = [krw(v, unit="") for v in s]
        elif isinstance(s.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(s.dtype):
            out[col] = [kst(v) for v in s]
        elif pd.api.types.is_timedelta64_dtype(s.dtype):
            out[col] = [duration(v) for v in s]
        elif pd.api.types.is_bool_dtype(s.dtype):
            out[col] = ["예" if bool(v) else "" for v in s]
        else:
            out[col] = [
                "" if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)) else v for v in s
            ]
    return out


def html_table(
    df: pd.DataFrame,
    *,
    money: Iterable[str] = MONEY_COLUMNS,
    max_rows: int | None = None,
    wrap: Iterable[str] = WRAP_COLUMNS,
) -> str:
    """An escaped HTML table of :func:`display_frame` that fits the page, with a note when cut.

    Money is right-aligned; ``wrap`` columns wrap at a bounded width; the table sits in a box that
    scrolls sideways when it is still wider than the page (a 1,024 px laptop), so nothing is cut off.
    Column rules are scoped to a class derived from the columns, so tables never restyle each other.
    """
    shown = df if max_rows is None else df.head(max_rows)
    scope = "pr-t" + hashlib.md5("\x1f".join(map(str, shown.columns)).encode()).hexdigest()[:8]
    body = display_frame(shown, money=money).to_html(
        index=False, escape=True, border=0, classes=["pr-table", scope]
    )
    money_set, wrap_set = set(money), set(wrap)
    rules = []
    for i, col in enumerate(shown.columns, start=1):
        cell = f"table.{scope} td:nth-child({i})"
        if col in money_set:
            rules.append(f"{cell}{{text-align:right}}")
        if col in wrap_set:
            head = f"table.{scope} th:nth-child({i})"
            rules.append(
                f"{cell}{{white-space:normal !important;min-width:16em;max-width:36em;"
                f"overflow-wrap:anywhere;text-align:left}}{head}{{text-align:left}}"
            )
    note = ""
    if max_rows is not None and len(df) > max_rows:
        note = (
            f"<p><i>{len(df) - max_rows:,}건 더 있음 "
            f"(전체 {len(df):,}건은 저장소의 findings 표에 있습니다).</i></p>"
        )
    style = f"<style>{''.join(rules)}</style>" if rules else ""
    box = f"<div class='pr-scroll' style='overflow-x:auto;max-width:100%'>{body}</div>"
    return style + box + note


def kv_table(rows: Mapping[str, Any]) -> str:
    """A two-column HTML table of already formatted labels and values (both escaped)."""
    cells = "".join(
        f"<tr><th style='text-align:left'>{html.escape(str(k))}</th>"
        f"<td style='text-align:right'>{html.escape(str(v))}</td></tr>"
        for k, v in rows.items()
    )
    return f"<table class='pr-kv'>{cells}</table>"
