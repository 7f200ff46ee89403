"""Switches for V1 behaviours that no primary source settles: the sandbox can play each reading.

The sync is tested under every combination that matters (the stores must come out equal), so a guess
about PortOne that turns out wrong on the live API cannot silently blind it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal


@dataclass(frozen=True)
class ApiVariant:
    """One reading of the unsettled V1 behaviours.

    Attributes:
        partial_cancel_status: a partial refund leaves ``status = paid`` or sets ``cancelled`` (with
            ``cancelled_at``) although money is left.
        updated_on_partial_cancel: whether a refund moves the payment in ``sorting=-updated`` listings.
        schedule_window_days: the longest ``[schedule_from, schedule_to]`` range the schedule listings
            accept ("3 months": 90 or 92 days).
        card_type: ``card_type`` sent as an integer or as a numeric string (older official docs).
        unknown_in_lookup: an unknown ``customer_uid`` in a multi-lookup gives 404 for the whole call,
            or 207 with the others.
        lookup_leaves_out: the multi-lookup returns every live key ("none"), or leaves out super billing
            keys ("super": keys issued on a channel group, whose object has another shape; PortOne's
            207 reads "not found or not accessible"). Their own GET finds them either way.
    """

    partial_cancel_status: Literal["paid", "cancelled"] = "paid"
    updated_on_partial_cancel: bool = True
    schedule_window_days: int = 92
    card_type: Literal["int", "str"] = "int"
    unknown_in_lookup: Literal["207", "404"] = "207"
    lookup_leaves_out: Literal["none", "super"] = "none"

    def __post_init__(self) -> None:
        allowed: dict[str, tuple[Any, ...]] = {
            "partial_cancel_status": ("paid", "cancelled"),
            "updated_on_partial_cancel": (True, False),
            "card_type": ("int", "str"),
            "unknown_in_lookup": ("207", "404"),
            "lookup_leaves_out": ("none", "super"),
        }
        for name, values in allowed.items():
            if getattr(self, name) not in values:
                raise ValueError(f"{name} must be one of {list(values)}, got {getattr(self, name)!r}")
        days = self.schedule_window_days
        if isinstance(days, bool) or not isinstance(days, int) or days < 1:
            raise ValueError(f"schedule_window_days must be a positive integer, got {days!r}")

    def with_(self, changes: dict[str, Any]) -> ApiVariant:
        """A copy with ``changes`` (field name -> value); unknown names and values are refused."""
        names = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise ValueError(f"unknown variant switch(es) {unknown}; switches: {sorted(names)}")
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


DEFAULT = ApiVariant()

#: Each switch flipped on its own, then all flipped together (the readings least kind to the sync).
VARIANTS: dict[str, ApiVariant] = {
    "documented": DEFAULT,
    "partial-cancel-sets-cancelled": ApiVariant(partial_cancel_status="cancelled"),
    "updated-ignores-refunds": ApiVariant(updated_on_partial_cancel=False),
    "schedule-window-90": ApiVariant(schedule_window_days=90),
    "card-type-string": ApiVariant(card_type="str"),
    "lookup-404-for-all": ApiVariant(unknown_in_lookup="404"),
    "lookup-leaves-out-super-keys": ApiVariant(lookup_leaves_out="super"),
    "all-unkind": ApiVariant(
        partial_cancel_status="cancelled",
        updated_on_partial_cancel=False,
        schedule_window_days=90,
        card_type="str",
        unknown_in_lookup="404",
        lookup_leaves_out="super",
    ),
}
