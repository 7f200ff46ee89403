"""Every finding kind has one SQL file, opening with its business rule, loaded by name."""

from __future__ import annotations

import pytest

from portone_recon.errors import ReconcileError
from portone_recon.reconcile import FINDING_KINDS, KIND_SEVERITY, SEVERITIES, load_rule, rule_description
from portone_recon.reconcile.rules import bind


@pytest.mark.parametrize("kind", FINDING_KINDS)
def test_rule_file_states_its_rule(kind: str) -> None:
    sql = load_rule(kind)
    assert sql.startswith(f"-- {kind} ({KIND_SEVERITY[kind]}): ")
    text = rule_description(kind)
    assert len(text) > 80 and "amount_at_risk" in text
    # parameters are bound, never formatted in: only $as_of / $grace / $inferred appear
    assert set(bind(sql, {"as_of": 1, "grace": 2, "inferred": 3})) <= {"as_of", "grace", "inferred"}


def test_kinds_and_severities() -> None:
    assert len(FINDING_KINDS) == len(set(FINDING_KINDS)) == len(KIND_SEVERITY) == 13
    assert {"charged_after_cancel", "chain_not_started"} <= set(FINDING_KINDS)
    assert SEVERITIES == ("low", "medium", "high", "critical")
    with pytest.raises(ReconcileError, match="unknown finding kind"):
        load_rule("_prepare")
    with pytest.raises(ReconcileError, match="unknown finding kind"):
        load_rule("nope")


def test_bind_refuses_missing_parameters() -> None:
    with pytest.raises(ReconcileError, match="as_of"):
        bind("SELECT $as_of -- and $grace in a comment is ignored", {})
    assert bind("SELECT 1 -- $grace", {"grace": 1}) == {}
