"""The reconciliation rules: one ``.sql`` file per finding kind, loaded by name.

Each rule file is a single ``SELECT`` that returns the candidate findings of its kind with the columns of
:data:`RULE_COLUMNS`. Its header comment states the business rule in plain words. Rules read the shared
working tables built by ``_prepare.sql`` and the billing-period macros of ``_macros.sql``; their parameters
(``$as_of``, ``$grace``, ``$inferred``, the coverage bounds) are bound, never formatted into the text.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from typing import Any

from portone_recon.errors import ReconcileError

RULES_PACKAGE = "portone_recon.reconcile.rules"

#: Columns every rule returns (``match_key`` is hashed with the kind into the stable ``finding_id``).
RULE_COLUMNS = (
    "kind",
    "severity",
    "match_key",
    "customer_uid",
    "merchant_uid",
    "imp_uid",
    "schedule_merchant_uid",
    "portone_status",
    "local_status",
    "portone_amount",
    "local_amount",
    "amount_at_risk",
    "event_at",
    "suggested_action",
    "subscription_id",
    "period_start",
    "period_end",
    "currency",
    "detail",
)

_PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_COMMENT = re.compile(r"--[^\n]*")


@cache
def _read(name: str) -> str:
    entry = resources.files(RULES_PACKAGE).joinpath(f"{name}.sql")
    if not entry.is_file():
        raise ReconcileError(f"no reconciliation SQL named {name!r} in {RULES_PACKAGE}")
    return entry.read_text(encoding="utf-8")


def load_rule(name: str) -> str:
    """The SQL text of the rule ``name`` (a finding kind, e.g. ``"missed_webhook"``).

    Raises:
        ReconcileError: no such rule.
    """
    from portone_recon.reconcile.kinds import FINDING_KINDS

    if name not in FINDING_KINDS:
        raise ReconcileError(f"unknown finding kind {name!r}; kinds: {', '.join(FINDING_KINDS)}")
    return _read(name)


def load_support(name: str) -> str:
    """The SQL text of a support file (``"_macros"`` or ``"_prepare"``)."""
    if not name.startswith("_"):
        raise ReconcileError(f"{name!r} is not a support file (support files start with '_')")
    return _read(name)


def rule_description(name: str) -> str:
    """The business rule of ``name`` as written in its header comment (one paragraph)."""
    lines = []
    for line in load_rule(name).splitlines():
        if not line.startswith("--"):
            break
        lines.append(line[2:].strip())
    return " ".join(part for part in lines if part)


def split_statements(sql: str) -> list[str]:
    """Split a support file into statements (each ends with ``;`` at the end of a line)."""
    statements: list[str] = []
    current: list[str] = []
    for line in sql.splitlines():
        current.append(line)
        if line.rstrip().endswith(";") and not line.lstrip().startswith("--"):
            text = "\n".join(current).strip().rstrip(";")
            if _has_code(text):
                statements.append(text)
            current = []
    tail = "\n".join(current).strip()
    if _has_code(tail):
        statements.append(tail)
    return statements


def _has_code(text: str) -> bool:
    return any(line.strip() and not line.strip().startswith("--") for line in text.splitlines())


def bind(sql: str, params: dict[str, Any]) -> dict[str, Any]:
    """The subset of ``params`` that ``sql`` uses (DuckDB refuses unused named parameters).

    Raises:
        ReconcileError: the SQL uses a parameter that ``params`` lacks.
    """
    code = _COMMENT.sub("", sql)
    used = set(_PARAM.findall(code))
    missing = used - params.keys()
    if missing:
        raise ReconcileError(f"SQL needs parameter(s) {', '.join(sorted(missing))} that were not given")
    return {k: v for k, v in params.items() if k in used}


__all__ = ["RULE_COLUMNS", "bind", "load_rule", "load_support", "rule_description", "split_statements"]
