"""Finding kinds as the reports present them: severity, Korean title, rule and what to do.

The text lives in ``templates/kinds.json`` (long human text stays out of code).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources

from portone_recon.reconcile.kinds import KIND_SEVERITY as _RECON_SEVERITY
from portone_recon.reconcile.kinds import SEVERITY_RANK

#: kind -> severity as reconcile defines it, most severe first (the order of report sections).
KIND_SEVERITY: dict[str, str] = dict(
    sorted(_RECON_SEVERITY.items(), key=lambda kv: -SEVERITY_RANK.get(kv[1], 0))  # stable: keeps rule order
)


@dataclass(frozen=True)
class KindInfo:
    """How a report describes one finding kind."""

    kind: str
    severity: str
    title: str
    rule: str
    what_to_do: str


@cache
def _texts() -> dict[str, dict[str, str]]:
    raw = (resources.files("portone_recon.reports") / "templates" / "kinds.json").read_text(encoding="utf-8")
    data: dict[str, dict[str, str]] = json.loads(raw)
    return data


def kind_info(kind: str, severity: str | None = None) -> KindInfo:
    """The description of ``kind``; unknown kinds (added later by reconcile) get a plain fallback."""
    text = _texts().get(kind, {})
    return KindInfo(
        kind=kind,
        severity=severity or KIND_SEVERITY.get(kind, "medium"),
        title=text.get("title", kind),
        rule=text.get("rule", ""),
        what_to_do=text.get("what_to_do", "수동 검토 대상입니다."),
    )


def ordered_kinds(extra: list[str] | tuple[str, ...] = ()) -> list[str]:
    """Every known kind (most severe first), then any extra kinds seen in the data, sorted."""
    known = list(KIND_SEVERITY)
    return known + sorted(set(extra) - set(known))


def severity_at_least(severity: str, threshold: str) -> bool:
    """Whether ``severity`` is at or above ``threshold`` (low < medium < high < critical)."""
    return SEVERITY_RANK.get(severity, 0) >= SEVERITY_RANK[threshold]
