"""The READY payment a booked V2 schedule may have before its ``timeToPay`` (one reading of the V2 surface).

Whether PortOne creates a schedule's payment when it is booked (status READY until it runs) or only when
it runs is not documented. :class:`~portone_recon.sandbox.v2_api.SandboxV2` plays the second by default;
with ``ready_before_time_to_pay`` it plays the first through the functions here: every schedule of a V2
customer that has not run (booked or revoked) and has no payment yet shows as a READY payment with the
schedule's id, billing key, amount and customer, and an attempt id (``transactionId``) of its own that
the execution does not reuse. It is requested (and status-changed) when the schedule was created; the
world keeps no booking time, so that is the ``timeToPay``, or the world's now while that is ahead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from portone_recon.sandbox.world import Json

if TYPE_CHECKING:
    from portone_recon.sandbox.v2_api import SandboxV2


def ready_transaction_id(merchant_uid: str) -> str:
    """The attempt id of a schedule's READY payment (not the imp_uid its execution will get)."""
    return f"ready-{merchant_uid}"


def has_ready_payment(v2: SandboxV2, s: Json) -> bool:
    """Whether schedule ``s`` shows as a READY payment (see the module docstring)."""
    mu = s["merchant_uid"]
    return (
        s["schedule_status"] in ("scheduled", "revoked")
        and v2.is_v2_customer(s["customer_uid"])
        and v2.latest_attempt(mu) is None
    )


def requested_at(v2: SandboxV2, s: Json) -> int:
    """When schedule ``s``'s READY payment was requested (see the module docstring)."""
    return min(int(s["schedule_at"]), v2.world.now)


def render_ready(v2: SandboxV2, s: Json) -> Json:
    """Schedule ``s``'s READY payment as ``GET /payments`` shows it."""
    from portone_recon.sandbox.v2_api import minor, rfc3339

    currency = s.get("currency") or "KRW"
    at = rfc3339(requested_at(v2, s))
    out: Json = {
        "status": "READY",
        "id": s["merchant_uid"],
        "transactionId": ready_transaction_id(s["merchant_uid"]),
        "merchantId": v2.merchant_id,
        "storeId": v2.store_id,
        "version": "V2",
        "billingKey": v2.billing_key_of(s["customer_uid"]),
        "scheduleId": f"schedule-{s['merchant_uid']}",
        "requestedAt": at,
        "updatedAt": at,
        "statusChangedAt": at,
        "orderName": s.get("name") or "",
        "amount": {
            "total": minor(s["amount"], currency),
            "taxFree": 0,
            "discount": 0,
            "paid": 0,
            "cancelled": 0,
            "cancelledTaxFree": 0,
        },
        "currency": currency,
        "customer": {"id": s["customer_uid"]},
        "origin": {"platformType": "API", "ipAddress": "127.0.0.1"},
    }
    if s.get("custom_data"):
        out["customData"] = s["custom_data"]
    return out


def ready_hits(v2: SandboxV2, flt: Json, lo: int, hi: int) -> list[tuple[int, str, Json]]:
    """The READY payments a ``GET /payments`` filter selects, as ``(time, transactionId, payment)``."""
    statuses = set(flt.get("status") or [])
    if statuses and "READY" not in statuses:
        return []
    if flt.get("version") not in (None, "V2"):
        return []
    tx = [t["value"] for t in flt.get("textSearch") or [] if t.get("field") == "TX_ID"]
    keys = [t["value"] for t in flt.get("textSearch") or [] if t.get("field") == "BILLING_KEY"]
    out = []
    for s in v2.world.schedules.values():
        t = requested_at(v2, s)
        inside = lo <= t <= hi if v2.until_inclusive else lo <= t < hi
        if not inside or not has_ready_payment(v2, s):
            continue
        tid = ready_transaction_id(s["merchant_uid"])
        if (tx and tid not in tx) or (keys and v2.billing_key_of(s["customer_uid"]) not in keys):
            continue
        out.append((t, tid, render_ready(v2, s)))
    return out
