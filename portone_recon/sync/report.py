"""Result objects of a sync: :class:`SyncReport` (one run) and :class:`StreamResult` (one stream)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

#: Tables a sync writes, in the order a person reads them.
SYNC_TABLES = ("payments", "payment_cancellations", "schedules", "billing_keys", "quarantine")


@dataclass(frozen=True)
class TableCounts:
    """Rows of one table written by a sync: ``new`` inserted, ``updated`` changed in place."""

    new: int = 0
    updated: int = 0

    def __add__(self, other: TableCounts) -> TableCounts:
        return TableCounts(self.new + other.new, self.updated + other.updated)

    def to_dict(self) -> dict[str, int]:
        return {"new": self.new, "updated": self.updated}


@dataclass(frozen=True)
class StreamResult:
    """What one stream did.

    Attributes:
        stream: the ``sync_state`` key, e.g. ``payments:paid``.
        range_from / range_to: the time range read (None for streams without one).
        cursor_before / cursor_after: the stream's cursor before and after (never moves backwards).
        pages: pages (or lookups) ingested.
        items: items received (before de-duplication).
        tables: rows new/updated per table.
        api_calls: HTTP requests the stream sent (token requests and retries included).
        note: anything a person should know (e.g. keys marked deleted).
    """

    stream: str
    range_from: datetime | None = None
    range_to: datetime | None = None
    cursor_before: datetime | None = None
    cursor_after: datetime | None = None
    pages: int = 0
    items: int = 0
    tables: dict[str, TableCounts] = field(default_factory=dict)
    api_calls: int = 0
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "stream": self.stream,
            "range_from": _iso(self.range_from),
            "range_to": _iso(self.range_to),
            "cursor_before": _iso(self.cursor_before),
            "cursor_after": _iso(self.cursor_after),
            "pages": self.pages,
            "items": self.items,
            "tables": {k: v.to_dict() for k, v in self.tables.items()},
            "api_calls": self.api_calls,
            "note": self.note,
        }


@dataclass(frozen=True)
class SyncReport:
    """What a :func:`~portone_recon.sync.sync` run did.

    Attributes:
        tables: rows new/updated per table (``payments``, ``payment_cancellations``, ``schedules``,
            ``billing_keys``).
        api_calls: HTTP requests sent (from the client's ``api_calls`` counter).
        seconds: wall time of the run.
        streams: one :class:`StreamResult` per stream, in the order they ran.
        since / until: the range asked for (``since`` None means incremental from each cursor).
        now: PortOne's clock when the run started (the cursors' reference).
    """

    tables: dict[str, TableCounts]
    api_calls: int
    seconds: float
    streams: tuple[StreamResult, ...]
    since: datetime | None
    until: datetime
    now: datetime

    @classmethod
    def of(
        cls,
        results: Sequence[StreamResult],
        *,
        api_calls: int,
        seconds: float,
        since: datetime | None,
        until: datetime,
        now: datetime,
    ) -> SyncReport:
        """The report of a run whose streams gave ``results`` (the tables' counts are their sums)."""
        tables = {t: TableCounts() for t in SYNC_TABLES}
        for r in results:
            for t, c in r.tables.items():
                tables[t] = tables[t] + c
        return cls(tables, api_calls, seconds, tuple(results), since, until, now)

    @property
    def new(self) -> int:
        """Rows inserted over all tables."""
        return sum(c.new for t, c in self.tables.items() if t != "quarantine")

    @property
    def updated(self) -> int:
        """Rows changed over all tables."""
        return sum(c.updated for t, c in self.tables.items() if t != "quarantine")

    @property
    def quarantined(self) -> int:
        """Records PortOne returned in this run that could not be stored (kept in ``quarantine``)."""
        q = self.tables.get("quarantine", TableCounts())
        return q.new + q.updated

    def __getitem__(self, table: str) -> TableCounts:
        return self.tables.get(table, TableCounts())

    def __repr__(self) -> str:
        parts = ", ".join(f"{t} +{c.new}/~{c.updated}" for t, c in self.tables.items() if t != "quarantine")
        held = f"; {self.quarantined} quarantined" if self.quarantined else ""
        return (
            f"SyncReport({parts}{held}; {self.api_calls} API calls, {self.seconds:.2f} s, "
            f"{len(self.streams)} streams, until {_iso(self.until)})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "tables": {k: v.to_dict() for k, v in self.tables.items()},
            "api_calls": self.api_calls,
            "seconds": round(self.seconds, 3),
            "streams": [s.to_dict() for s in self.streams],
            "since": _iso(self.since),
            "until": _iso(self.until),
            "now": _iso(self.now),
            "quarantined": self.quarantined,
        }

    def _repr_html_(self) -> str:
        try:
            return self._html()
        except Exception as exc:  # a repr must never raise
            return f"<b>SyncReport</b> <i>unavailable ({html.escape(type(exc).__name__)})</i>"

    def _html(self) -> str:
        esc = html.escape
        head = (
            f"<b>SyncReport</b> until <code>{esc(_iso(self.until) or '')}</code>"
            + (f" since <code>{esc(_iso(self.since) or '')}</code>" if self.since else " (incremental)")
            + f" &middot; {self.api_calls:,} API calls &middot; {self.seconds:.2f} s"
        )
        if self.quarantined:
            head += (
                f"<br><b style='color:#b00'>{self.quarantined:,} record(s) could not be read and were "
                "quarantined</b> (table <code>quarantine</code>: endpoint, reason, raw JSON)"
            )
        rows = "".join(
            f"<tr><td>{esc(t)}</td><td style='text-align:right'>{c.new:,}</td>"
            f"<td style='text-align:right'>{c.updated:,}</td></tr>"
            for t, c in self.tables.items()
        )
        table = f"<table><tr><th>table</th><th>new</th><th>updated</th></tr>{rows}</table>"
        srows = "".join(
            f"<tr><td>{esc(s.stream)}</td><td>{esc(_iso(s.range_from) or '')}</td>"
            f"<td>{esc(_iso(s.range_to) or '')}</td><td style='text-align:right'>{s.pages:,}</td>"
            f"<td style='text-align:right'>{s.items:,}</td><td style='text-align:right'>{s.api_calls:,}</td>"
            f"<td>{esc(s.note)}</td></tr>"
            for s in self.streams
        )
        streams = (
            "<details><summary>streams</summary><table><tr><th>stream</th><th>from</th><th>to</th>"
            f"<th>pages</th><th>items</th><th>API calls</th><th>note</th></tr>{srows}</table></details>"
        )
        return f"<div>{head}{table}{streams}</div>"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
