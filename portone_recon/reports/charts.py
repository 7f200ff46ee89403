"""Static charts (PNG) for the reports: Hangul labels, KRW axes with thousands separators, KST dates.

Figures are built with :class:`matplotlib.figure.Figure` (never pyplot), so a notebook shows exactly
the image a function returns, once, and no global figure state leaks between cells.
"""

from __future__ import annotations

import importlib
import io
import warnings
from datetime import date, datetime, timedelta
from typing import Any

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from portone_recon._time import KST
from portone_recon.reports.formatting import SEVERITIES, SEVERITY_COLORS, SEVERITY_LABELS

with warnings.catch_warnings():  # koreanize_matplotlib 0.1.1 still uses distutils' LooseVersion
    warnings.simplefilter("ignore", DeprecationWarning)
    # registers its bundled Hangul font (NanumGothic) and makes it matplotlib's default family
    importlib.import_module("koreanize_matplotlib")

# matplotlib.dates is untyped: reach it through Any.
mdates: Any = importlib.import_module("matplotlib.dates")
_KRW = FuncFormatter(lambda v, _pos: f"{v:,.0f}원")
_COUNT = FuncFormatter(lambda v, _pos: f"{v:,.0f}")


def to_png(fig: Figure, *, dpi: int = 100) -> bytes:
    """Render a figure to PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


def image(fig: Figure) -> Any:
    """An IPython image of the figure, embedded in the notebook (and so in the HTML) as PNG."""
    ipy_display: Any = importlib.import_module("IPython.display")
    return ipy_display.Image(data=to_png(fig), format="png")


def _month_label(value: Any) -> str:
    return pd.Timestamp(value).strftime("%Y-%m")


def trend_chart(trend: pd.DataFrame, *, as_of: datetime, days: int = 30) -> Figure:
    """Open findings per KST day (latest run of each day), stacked by severity."""
    fig = Figure(figsize=(9, 3.6))
    ax = fig.add_subplot()
    end = as_of.astimezone(KST).date()
    start = end - timedelta(days=days - 1)
    x: list[Any] = [pd.Timestamp(d).date() for d in trend["day"]] if len(trend) else []
    bottom = [0] * len(x)
    for sev in reversed(SEVERITIES):
        values = [int(v) for v in trend[sev]] if len(trend) else []
        ax.bar(x, values, bottom=bottom, color=SEVERITY_COLORS[sev], label=SEVERITY_LABELS[sev], width=0.8)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.set_xlim(date_to_num(start - timedelta(days=1)), date_to_num(end + timedelta(days=1)))
    ax.xaxis.set_major_locator(mdates.AutoDateLocator(minticks=4, maxticks=10))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d"))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_formatter(_COUNT)
    ax.set_ylim(0, max(max(bottom or [0]) * 1.25, 1))  # room for the legend above the bars
    ax.set_title(f"미해결 발견 항목 추이 (최근 {days}일, KST 기준)")
    ax.set_ylabel("건수")
    if not len(trend):
        ax.text(0.5, 0.5, "기간 내 대사 실행 기록 없음", transform=ax.transAxes, ha="center", va="center")
    else:
        handles, labels = ax.get_legend_handles_labels()
        ax.legend(handles[::-1], labels[::-1], loc="upper left", ncols=4, fontsize="small")
    ax.grid(axis="y", alpha=0.3)
    return fig


def date_to_num(d: date) -> float:
    return float(mdates.date2num(datetime(d.year, d.month, d.day)))


def mrr_chart(series: pd.DataFrame) -> Figure:
    """MRR at each month's end (bars, KRW axis) with the month-over-month change annotated."""
    fig = Figure(figsize=(9, 3.6))
    ax = fig.add_subplot()
    labels = [_month_label(m) for m in series["month_start"]]
    values = [int(v) for v in series["mrr"]]
    bars = ax.bar(labels, values, color="#1e88e5")
    for bar, change in zip(bars, series["mrr_change"], strict=True):
        if pd.notna(change):
            sign = "+" if change >= 0 else ""
            ax.annotate(
                f"{sign}{int(change):,}",
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                ha="center",
                va="bottom",
                fontsize="x-small",
            )
    ax.yaxis.set_major_formatter(_KRW)
    ax.set_title("월간 반복 매출 (MRR, 월말 기준)")
    ax.tick_params(axis="x", labelrotation=45, labelsize="small")
    ax.grid(axis="y", alpha=0.3)
    return fig


def renewals_chart(series: pd.DataFrame) -> Figure:
    """Renewals per month: paid on the first attempt, recovered after a failure, still unpaid."""
    fig = Figure(figsize=(9, 3.6))
    ax = fig.add_subplot()
    labels = [_month_label(m) for m in series["month_start"]]
    first = [int(p - r) for p, r in zip(series["paid"], series["recovered"], strict=True)]
    recovered = [int(v) for v in series["recovered"]]
    unpaid = [int(v) for v in series["unpaid"]]
    ax.bar(labels, first, color="#43a047", label="1차 결제 성공")
    ax.bar(labels, recovered, bottom=first, color="#fdd835", label="실패 후 회복")
    ax.bar(
        labels,
        unpaid,
        bottom=[a + b for a, b in zip(first, recovered, strict=True)],
        color="#e53935",
        label="미결제",
    )
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_formatter(_COUNT)
    top = max([a + b + c for a, b, c in zip(first, recovered, unpaid, strict=True)] or [0])
    ax.set_ylim(0, max(top * 1.25, 1))  # room for the legend above the bars
    ax.set_title("월별 정기결제 (예약 결제) 결과")
    ax.set_ylabel("건수")
    ax.tick_params(axis="x", labelrotation=45, labelsize="small")
    ax.legend(loc="upper left", ncols=3, fontsize="small")
    ax.grid(axis="y", alpha=0.3)
    return fig


def subscribers_chart(series: pd.DataFrame) -> Figure:
    """Active subscribers at month end (line) with new and churned subscribers (bars)."""
    fig = Figure(figsize=(9, 3.6))
    ax = fig.add_subplot()
    labels = [_month_label(m) for m in series["month_start"]]
    pos = list(range(len(labels)))
    ax.bar(
        [p - 0.2 for p in pos],
        [int(v) for v in series["new_subscribers"]],
        width=0.4,
        color="#43a047",
        label="신규",
    )
    ax.bar(
        [p + 0.2 for p in pos], [int(v) for v in series["churned"]], width=0.4, color="#e53935", label="이탈"
    )
    ax2 = ax.twinx()
    ax2.plot(
        pos, [int(v) for v in series["active_end"]], color="#1e88e5", marker="o", label="활성 구독자(월말)"
    )
    ax2.set_ylim(0, max(max([int(v) for v in series["active_end"]] + [0]) * 1.15, 1))
    ax.set_xticks(pos, labels, rotation=45, fontsize="small")
    for axis in (ax.yaxis, ax2.yaxis):
        axis.set_major_locator(MaxNLocator(integer=True))
        axis.set_major_formatter(_COUNT)
    ax.set_ylim(
        0,
        max(
            max([int(v) for v in series["new_subscribers"]] + [int(v) for v in series["churned"]] + [0])
            * 1.3,
            1,
        ),
    )
    ax.set_ylabel("신규 / 이탈")
    ax2.set_ylabel("활성 구독자")
    ax.set_title("구독자 추이")
    handles = ax.get_legend_handles_labels()
    handles2 = ax2.get_legend_handles_labels()
    ax.legend(handles[0] + handles2[0], handles[1] + handles2[1], loc="upper left", fontsize="small")
    ax.grid(axis="y", alpha=0.3)
    return fig


def reasons_chart(reasons: pd.DataFrame, *, title: str = "정기결제 실패 사유 (상위)") -> Figure:
    """Top failure reasons as horizontal bars (count)."""
    fig = Figure(figsize=(9, max(2.0, 0.45 * len(reasons) + 1.0)))
    ax = fig.add_subplot()
    if len(reasons):
        shown = reasons.iloc[::-1]
        ax.barh([str(r) for r in shown["fail_reason"]], [int(v) for v in shown["failures"]], color="#e53935")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.xaxis.set_major_formatter(_COUNT)
    else:
        ax.text(0.5, 0.5, "실패 없음", transform=ax.transAxes, ha="center", va="center")
        ax.set_yticks([])
    ax.set_title(title)
    ax.set_xlabel("건수")
    ax.grid(axis="x", alpha=0.3)
    return fig
