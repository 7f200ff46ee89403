"""The .xlsx that finance forwards: a summary sheet, then one sheet per finding kind (openpyxl)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from portone_recon._time import KST
from portone_recon.errors import ReconcileError

if TYPE_CHECKING:
    from portone_recon.reconcile.result import ReconResult

_KRW_FORMAT = "#,##0"
_TIME_FORMAT = "yyyy-mm-dd hh:mm"
_MONEY_HEADERS = {"portone_amount", "local_amount", "amount_at_risk", "count", "new", "resolved"}
_TIME_HEADERS = {"event_at (KST)", "first_seen (KST)"}


def write_excel(result: ReconResult, path: Path) -> Path:
    """Write ``result`` to ``path`` and return it.

    Raises:
        ReconcileError: the file cannot be written.
    """
    summary = pd.DataFrame(
        [
            ("run_id", result.run_id),
            ("as of (KST)", result.as_of.astimezone(KST).strftime("%Y-%m-%d %H:%M")),
            ("grace", str(result.grace)),
            ("findings", len(result.findings)),
            ("KRW at risk", result.amount_at_risk),
            ("new since previous run", len(result.new)),
            ("resolved since previous run", len(result.resolved)),
            ("previous run", result.previous_run_id or ""),
            (
                "subscriptions",
                "INFERRED from PortOne data (no subscriptions loaded)"
                if result.subscriptions_inferred
                else "as loaded",
            ),
        ],
        columns=["item", "value"],
    )
    by_kind = result.by_kind()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with pd.ExcelWriter(path, engine="openpyxl") as writer:
            summary.to_excel(writer, sheet_name="summary", index=False)
            by_kind.to_excel(writer, sheet_name="summary", index=False, startrow=len(summary) + 2)
            sheet = writer.sheets["summary"]
            sheet.cell(row=6, column=2).number_format = _KRW_FORMAT
            _format_sheet(sheet, header_rows={1, len(summary) + 3})
            for kind in result.kinds:
                frame = result.excel_frame(result[kind])
                frame.to_excel(writer, sheet_name=kind[:31], index=False)
                _format_sheet(writer.sheets[kind[:31]], header_rows={1})
    except OSError as exc:
        raise ReconcileError(f"{path}: cannot write the Excel file: {exc}") from exc
    return path


def _format_sheet(sheet: object, header_rows: set[int]) -> None:
    """Number formats by header name, bold headers, sensible widths, frozen first row."""
    from openpyxl.styles import Font

    ws = sheet
    headers: dict[int, str] = {}
    widths: dict[int, int] = {}
    for row in ws.iter_rows():  # type: ignore[attr-defined]
        for cell in row:
            col = cell.column
            if cell.row in header_rows:
                cell.font = Font(bold=True)
                headers[col] = str(cell.value)
                widths[col] = max(widths.get(col, 0), len(str(cell.value or "")))
                continue
            name = headers.get(col, "")
            if name in _MONEY_HEADERS and isinstance(cell.value, int | float):
                cell.number_format = _KRW_FORMAT
            elif name in _TIME_HEADERS:
                cell.number_format = _TIME_FORMAT
            text = "" if cell.value is None else str(cell.value)
            widths[col] = max(widths.get(col, 0), min(len(text), 60))
    from openpyxl.utils import get_column_letter

    for col, width in widths.items():
        ws.column_dimensions[get_column_letter(col)].width = max(10, width + 2)  # type: ignore[attr-defined]
    ws.freeze_panes = "A2"  # type: ignore[attr-defined]
