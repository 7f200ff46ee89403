"""Run a report notebook with papermill, export HTML without code, write ``summary.json``.

``reports/<name>/<date>/`` receives ``<name>.ipynb`` (executed; written even when a cell fails),
``<name>.html`` (no code cells, no CDN scripts: opens offline) and ``summary.json``. The notebook
writes its summary to the ``summary_path`` parameter; run_report adds duration and paths.
Parameters are plain literals only, and never a secret: papermill copies them into the notebook.
"""

from __future__ import annotations

import html
import importlib
import math
import time
from dataclasses import dataclass, field
from datetime import date, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from portone_recon._time import KST, instant_arg, now_kst, parse_instant, refuse_far_future
from portone_recon.config import Settings
from portone_recon.errors import ReportError
from portone_recon.reconcile.triage import DEFAULT_FAIL_ON
from portone_recon.reports.metrics import default_month, parse_month
from portone_recon.reports.summary import findings_at_or_above, read_summary, write_summary

#: Report name -> notebook file (in the package's ``reports/notebooks/``).
NOTEBOOKS = {
    "daily": "daily_reconciliation.ipynb",
    "monthly": "monthly_subscriptions.ipynb",
    "fixup": "fixup.ipynb",
}
KERNEL_NAME = "python3"
_SECRET_WORDS = ("secret", "token", "password", "passwd", "credential")
_PLAIN = (str, int, float, bool, type(None))


def default_notebook_dir() -> Path:
    """The report notebooks shipped inside the package (``portone_recon/reports/notebooks/``).

    Inside the package so a wheel install finds them; run a merchant's own copy with ``notebook_dir=``.
    """
    return Path(__file__).resolve().parent / "notebooks"


def _check_plain(name: str, value: Any) -> None:
    if isinstance(value, list | tuple):
        for item in value:
            _check_plain(name, item)
        return
    if isinstance(value, dict):
        for k, v in value.items():
            _check_plain(f"{name}.{k}", v)
        return
    if not isinstance(value, _PLAIN) or (isinstance(value, float) and not math.isfinite(value)):
        raise ReportError(
            f"parameter {name!r}: only plain literals (str, number, bool, None, lists) are allowed"
        )


def _check_params(params: dict[str, Any], secret: str) -> None:
    for name, value in params.items():
        lowered = name.lower()
        if any(w in lowered for w in _SECRET_WORDS):
            raise ReportError(
                f"parameter {name!r} looks like a credential: secrets are read from the environment inside "
                "the kernel, never passed as parameters (papermill copies parameters into the notebook)"
            )
        _check_plain(name, value)
        if len(secret) >= 6 and secret in repr(value):
            raise ReportError(f"parameter {name!r} holds the API secret: remove it (use PORTONE_IMP_SECRET)")


def _folder_key(name: str, params: dict[str, Any]) -> str:
    """The ``<date>`` folder: the KST date of as_of, or the month (YYYY-MM) of a monthly report."""
    if name == "monthly":
        return f"{parse_month(str(params.get('month'))):%Y-%m}"
    as_of = params.get("as_of")
    when = parse_instant(as_of) if as_of else now_kst()
    return f"{when.astimezone(KST).date():%Y-%m-%d}"


def _normalise(name: str, params: dict[str, Any], settings: Settings) -> dict[str, Any]:
    out = dict(params)
    try:
        as_of = out.get("as_of")
        when = refuse_far_future(instant_arg(as_of, "as_of"), "as_of") if as_of else now_kst()
        if name in ("daily", "fixup"):
            out["as_of"] = when.isoformat()
        if name == "monthly":
            out["as_of"] = when.isoformat()
            month = out.get("month")
            out["month"] = f"{(parse_month(month) if month else default_month(when)):%Y-%m}"
    except ValueError as exc:
        raise ReportError(f"{name}: {exc}") from None
    db = out.get("db") or str(settings.db_path)
    out["db"] = str(Path(str(db)).expanduser().resolve())
    for key, value in list(out.items()):
        if isinstance(value, date | datetime):
            out[key] = value.isoformat()
        elif isinstance(value, Path):
            out[key] = str(value)
    return out


@dataclass(frozen=True)
class ReportResult:
    """One executed report: where its files are and what its summary says."""

    name: str
    folder: Path
    notebook: Path
    html: Path
    summary_path: Path
    summary: dict[str, Any] = field(repr=False)
    duration_s: float

    def exit_code(self, fail_on: str | None = DEFAULT_FAIL_ON, *, every: bool = False) -> int:
        """1 when open findings at or above ``fail_on`` exist (None/'none': never), else 0.

        Args:
            fail_on: the least severity that counts.
            every: count acknowledged / explained findings too.
        """
        return 1 if findings_at_or_above(self.summary, fail_on, every=every) else 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "folder": str(self.folder),
            "notebook": str(self.notebook),
            "html": str(self.html),
            "summary_path": str(self.summary_path),
            "duration_s": self.duration_s,
            "summary": self.summary,
        }

    def __repr__(self) -> str:
        count = self.summary.get("finding_count")
        extra = f", findings={count}" if count is not None else ""
        return f"ReportResult({self.name!r}, html={str(self.html)!r}{extra}, {self.duration_s:.1f}s)"

    def _repr_html_(self) -> str:
        try:
            return (
                f"<b>{html.escape(self.name)}</b> report in {self.duration_s:.1f} s: "
                f"<a href='{html.escape(self.html.resolve().as_uri())}'>{html.escape(str(self.html))}</a>"
            )
        except Exception as exc:  # a repr must never raise
            return f"<b>ReportResult</b> <i>unavailable ({html.escape(type(exc).__name__)})</i>"


def export_html(notebook_path: Path, html_path: Path) -> Path:
    """Export an executed notebook to HTML without code cells, prompts, stderr or CDN scripts."""
    nbformat: Any = importlib.import_module("nbformat")
    nbconvert: Any = importlib.import_module("nbconvert")

    nb = nbformat.read(str(notebook_path), as_version=4)
    for cell in nb.cells:
        if cell.get("cell_type") == "code":
            cell["outputs"] = [
                o
                for o in cell.get("outputs", [])
                if not (o.get("output_type") == "stream" and o.get("name") == "stderr")
            ]
    templates = resources.files("portone_recon.reports") / "templates"
    exporter = nbconvert.HTMLExporter(
        extra_template_basedirs=[str(templates)],
        template_name="offline",
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )
    body, _ = exporter.from_notebook_node(nb)
    html_path.write_text(body, encoding="utf-8")
    return html_path


def _failing_cell(source: Path, executed: Path) -> tuple[int | None, int | None, str]:
    """Where the error is: (index in the committed notebook, execution count, the cell's key line).

    Papermill adds cells to the executed copy (injected parameters, an error banner), so the index
    is looked up in the committed notebook by cell id; the key line is the first line of code.
    """
    try:
        nbformat: Any = importlib.import_module("nbformat")
        ran = nbformat.read(str(executed), as_version=4)
        original = nbformat.read(str(source), as_version=4)
    except Exception:
        return None, None, ""
    ids = {c.get("id"): i for i, c in enumerate(original.cells)}
    for cell in ran.cells:
        if any(o.get("output_type") == "error" for o in cell.get("outputs", [])):
            lines = [ln.strip() for ln in str(cell.get("source", "")).splitlines()]
            code = [ln for ln in lines if ln and not ln.startswith(("#", "import ", "from "))]
            key = (code or [ln for ln in lines if ln] or [""])[0][:120]
            return ids.get(cell.get("id")), cell.get("execution_count"), key
    return None, None, ""


def run_report(
    name: str,
    params: dict[str, Any] | None = None,
    out_dir: str | Path = "reports",
    *,
    kernel_name: str = KERNEL_NAME,
    notebook_dir: str | Path | None = None,
    cell_timeout: float = 600.0,
) -> ReportResult:
    """Execute report ``name`` (daily, monthly, fixup) and write its files under ``out_dir``.

    Args:
        name: ``daily``, ``monthly`` or ``fixup``.
        params: the notebook's parameters (plain literals; see its ``parameters`` cell). ``db`` defaults
            to PORTONE_RECON_DB / ./portone_recon.duckdb; ``as_of`` to now; ``month`` to last month.
        out_dir: the reports folder; files go to ``<out_dir>/<name>/<date>/``.
        kernel_name: the Jupyter kernel (``python3``).
        notebook_dir: a folder holding your own copy of the notebook (same file name); default: the
            notebooks shipped in the package.
        cell_timeout: seconds one cell may run.

    Raises:
        ReportError: bad parameters, or a cell failed (names the cell; the partial notebook is written).
    """
    import papermill as pm
    from papermill.exceptions import PapermillException, PapermillExecutionError

    started = time.monotonic()
    if name not in NOTEBOOKS:
        raise ReportError(f"unknown report {name!r}; reports: {', '.join(NOTEBOOKS)}")
    source = Path(notebook_dir or default_notebook_dir()) / NOTEBOOKS[name]
    if not source.is_file():
        raise ReportError(
            f"{source}: notebook not found; a notebook_dir / --notebook-dir must hold {NOTEBOOKS[name]}"
        )
    settings = Settings.from_env()
    given = dict(params or {})
    _check_params(given, settings.imp_secret.reveal())
    full = _normalise(name, given, settings)
    try:
        declared = set(pm.inspect_notebook(str(source)))
    except PapermillException as exc:
        raise ReportError(f"{source}: cannot read its parameters: {exc}") from exc
    unknown = sorted(set(full) - declared)
    if unknown:
        raise ReportError(f"{name}: unknown parameter(s) {unknown}; the notebook takes {sorted(declared)}")
    if not Path(full["db"]).is_file():
        raise ReportError(f"{full['db']}: no such store; run `portone-recon sync` (or `demo`) first")
    folder = Path(out_dir) / name / _folder_key(name, full)
    folder.mkdir(parents=True, exist_ok=True)
    stem = Path(NOTEBOOKS[name]).stem
    notebook = folder / f"{stem}.ipynb"
    html_path = folder / f"{stem}.html"
    summary_path = folder / "summary.json"
    summary_path.unlink(missing_ok=True)  # a stale summary must never pass for this run's
    full["summary_path"] = str(summary_path.resolve())

    failure: ReportError | None = None
    try:
        pm.execute_notebook(
            str(source),
            str(notebook),
            parameters=full,
            kernel_name=kernel_name,
            progress_bar=False,
            log_output=False,
            report_mode=False,
            execution_timeout=cell_timeout,
            # ipykernel warns on every start that TCP on loopback is unencrypted: noise in cron mail
            extra_arguments=["--IPKernelApp.log_level=ERROR"],
        )
    except PapermillExecutionError as exc:
        idx, count, key = _failing_cell(source, notebook)
        where = f"cell {idx} of {source.name}" if idx is not None else f"a cell of {source.name}"
        where += f" (In [{count or exc.exec_count}]" + (f": {key!r})" if key else ")")
        failure = ReportError(
            f"{name} report: {where} failed with {exc.ename}: {exc.evalue}; "
            f"the executed notebook is {notebook}",
            notebook=str(notebook),
            cell=idx,
        )
    except (PapermillException, RuntimeError, OSError, KeyError) as exc:  # KeyError: NoSuchKernel
        failure = ReportError(
            f"{name} report: could not run {source.name} with kernel {kernel_name!r}: {exc}",
            notebook=str(notebook) if notebook.exists() else None,
        )

    if notebook.exists():
        try:
            export_html(notebook, html_path)
        except Exception as exc:
            if failure is None:
                failure = ReportError(
                    f"{name} report: HTML export of {notebook} failed: {exc}", notebook=str(notebook)
                )
    duration = round(time.monotonic() - started, 3)
    base = {
        "report": name,
        "params": {k: v for k, v in full.items() if k != "summary_path"},
        "notebook": str(notebook),
        "html": str(html_path),
        "duration_s": duration,
        "generated_at": now_kst().isoformat(),
    }
    if failure is not None:
        write_summary(
            summary_path, {**base, "status": "failed", "error": str(failure), "failed_cell": failure.cell}
        )
        raise failure
    if not summary_path.exists():
        raise ReportError(
            f"{name} report: the notebook ran but wrote no summary to {summary_path} "
            "(its last cell must call report.write_summary(summary_path))",
            notebook=str(notebook),
        )
    summary = {**read_summary(summary_path), **base, "status": "ok"}
    write_summary(summary_path, summary)
    return ReportResult(
        name=name,
        folder=folder,
        notebook=notebook,
        html=html_path,
        summary_path=summary_path,
        summary=summary,
        duration_s=duration,
    )
