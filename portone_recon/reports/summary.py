"""``summary.json``: what a report hands back to :func:`run_report` and to cron.

The notebook writes the summary to the ``summary_path`` parameter (a plain path literal); run_report
then adds run facts (duration, paths) and rewrites it. JSON holds no secret: only counts, amounts,
identifiers and the report's plain parameters.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

from portone_recon.reconcile.kinds import SEVERITY_RANK
from portone_recon.reports.kinds import severity_at_least


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if hasattr(value, "item"):  # numpy scalars
        return _plain(value.item())
    return str(value)


class SummaryMixin:
    """For report objects: ``summary()`` is the one source of ``summary.json`` and ``to_dict()``."""

    def summary(self) -> dict[str, Any]:
        raise NotImplementedError

    def write_summary(self, path: str | Path | None) -> Path | None:
        """Write :meth:`summary` to ``path`` (no-op for an empty path, e.g. an interactive session)."""
        return write_summary(path, self.summary()) if path else None

    def to_dict(self) -> dict[str, Any]:
        return self.summary()


def write_summary(path: str | os.PathLike[str], summary: Mapping[str, Any]) -> Path:
    """Write ``summary`` as JSON atomically (a reader never sees half a file)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(_plain(summary), ensure_ascii=False, indent=2, sort_keys=True)
    fd, tmp = tempfile.mkstemp(prefix=".summary-", suffix=".json", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def read_summary(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a summary written by :func:`write_summary`."""
    data: dict[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))
    return data


def findings_at_or_above(summary: Mapping[str, Any], threshold: str | None, *, every: bool = False) -> int:
    """How many findings in ``summary`` have a severity at or above ``threshold`` (None/'none': 0).

    Only open (untriaged) findings count, from ``open_counts_by_severity``, unless ``every``; a summary
    without that key (older reports, the fix-up report) counts every finding.
    """
    if threshold is None or threshold == "none":
        return 0
    if threshold not in SEVERITY_RANK:
        raise ValueError(f"unknown severity {threshold!r}; use one of {', '.join(SEVERITY_RANK)} or none")
    key = (
        "counts_by_severity"
        if every or "open_counts_by_severity" not in summary
        else "open_counts_by_severity"
    )
    counts = summary.get(key) or {}
    return sum(int(n) for sev, n in counts.items() if severity_at_least(str(sev), threshold))
