"""Which stored records the sync must look at again, and when: the change capture beyond the listings.

PortOne V1 has no change feed. The status listings see a payment when its status changes, the ``-updated``
scan sees recent refunds, and the schedule listing sees the near future; what they cannot see is found
here, each at a cost that grows with what could have changed, not with history:

==================================  ==============================================  ========================
change                              how it is caught                                 seen within
==================================  ==============================================  ========================
new payment, status change          status listings from each cursor                 the next run
partial refund, paid < 90 days ago  ``-updated`` scan (if PortOne's ``updated``      the next run
                                    moves on a refund: unconfirmed)
partial refund of any age           weekly re-read by imp_uid of every stored        ``full_every`` (7 days)
                                    payment with a refundable balance                or ``--full``
                                    (:func:`refundable_ids`, 100 per call)
schedule booked, moved or revoked   schedule listing to ``until + schedule_near``    the next run
within 40 days
renewal booked far ahead            the next renewal window (+-31 days) of each      the next run
(quarterly, annual plans)           active long-interval subscription
                                    (:func:`renewal_windows`, one call each)
other far-future schedule change    full-horizon schedule listing                    ``full_every``
past schedule still ``scheduled``   single GET by merchant_uid                       the next run
or whose payment changed            (:func:`schedules_to_refetch`)
billing key deleted or re-issued    daily multi-lookup of keys with a future         the next run
(customer with booked charges)      charge (:func:`customers_to_fetch`); deletion
                                    proven by a single-key GET (``sync._keys``)
any other key change                every known key in the full pass                 ``full_every``
==================================  ==============================================  ========================

Still assumed (no PortOne source settles them; the sandbox plays each reading, see
``portone_recon.sandbox.variants``, and the sync's tests pass under all): a partial refund leaves the
payment ``paid`` or makes it ``cancelled`` (both caught: the cancelled listing, the weekly re-read);
``-updated`` moves on a refund or not (the weekly re-read does not rely on it); the schedule listing's
"3 months" is 90 or 92 days (windows are 90 days and a refused window is split); ``card_type`` is an
integer or a numeric string; an unknown id in a 100-id key lookup gives 404 for the call or 207 (404s
are split down to single ids). Assumed without a switch: ``paid_at`` never changes once set, and the
``from``/``to`` of the status listings filter on each status's own timestamp.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta

import duckdb

from portone_recon._time import KST, add_months

__all__ = [
    "customers_to_fetch",
    "next_renewal",
    "refundable_ids",
    "renewal_windows",
    "schedules_to_refetch",
    "v2_key_customers",
]

#: How far either side of the expected renewal instant a long-interval subscription's window reaches.
RENEWAL_SLACK = timedelta(days=31)


def refundable_ids(con: duckdb.DuckDBPyConnection, paid_before: datetime) -> list[str]:
    """Stored payments paid before ``paid_before`` (paid, or cancelled with money left) that PortOne
    could still refund."""
    rows = con.execute(
        "SELECT imp_uid FROM payments WHERE status IN ('paid', 'cancelled') AND paid_at < $lo "
        "AND coalesce(amount_exact, amount, 0) > coalesce(cancel_amount_exact, cancel_amount, 0) "
        "ORDER BY imp_uid",
        {"lo": paid_before},
    ).fetchall()
    return [str(r[0]) for r in rows]


def _months(n: int) -> timedelta:
    return timedelta(days=31 * n)


def next_renewal(started: datetime | None, months: int, after: datetime) -> datetime | None:
    """The first ``started + k * months`` (calendar months, KST, day clamped) after ``after``."""
    if started is None:
        return None
    local = started.astimezone(KST)
    k = 0
    while True:
        k += 1
        year, month = add_months(local.year, local.month, k * months)
        day = min(local.day, calendar.monthrange(year, month)[1])
        moment = local.replace(year=year, month=month, day=day)
        if moment > after:
            return moment


def renewal_windows(
    con: duckdb.DuckDBPyConnection,
    until: datetime,
    near: timedelta,
    *,
    near_end: datetime,
    horizon_end: datetime,
) -> list[tuple[str, datetime, datetime]]:
    """For each active subscription renewing beyond the near range: ``(customer_uid, lo, hi)`` around
    its next renewal.

    A renewal booked months ahead (annual plans) is past ``until + near``, so the daily listing does not
    see it; each such subscription's expected next renewal (its start stepped by ``interval_months`` in
    KST, past ``until``) is read from its customer's schedules, +-``RENEWAL_SLACK``, clipped to
    ``[near_end, horizon_end)``: one call a day per such subscription, whatever the history. Without a
    start date the window runs to ``until`` + interval + slack. Monthly plans renew within the near range.
    """
    try:
        rows = con.execute(
            "SELECT DISTINCT customer_uid, interval_months, started_at FROM subscriptions "
            "WHERE status = 'active' AND customer_uid IS NOT NULL AND interval_months > 0 "
            "ORDER BY 1, 2, 3"
        ).fetchall()
    except duckdb.Error:
        return []  # no subscriptions table in the shape this reads: nothing to look ahead for
    out: list[tuple[str, datetime, datetime]] = []
    for customer_uid, months, started in rows:
        months = int(months)
        if _months(months) <= near:
            continue  # renews within the near range: the daily listing reads it
        nxt = next_renewal(started, months, until)
        if nxt is not None:
            lo, hi = nxt - RENEWAL_SLACK, nxt + RENEWAL_SLACK
        else:
            lo, hi = near_end, until + _months(months) + RENEWAL_SLACK
        lo, hi = max(lo, near_end), min(hi, horizon_end)
        if lo < hi:
            out.append((str(customer_uid), lo, hi))
    return out


def schedules_to_refetch(
    con: duckdb.DuckDBPyConnection, before: datetime, last_success: datetime | None
) -> list[str]:
    """Past schedules (before ``before``) that may have changed: stuck, or their payment changed."""
    rows = con.execute(
        "SELECT s.merchant_uid FROM schedules s WHERE s.schedule_at < $lo AND ("
        "s.schedule_status = 'scheduled' OR EXISTS (SELECT 1 FROM payments p "
        "WHERE p.merchant_uid = s.merchant_uid AND p.synced_at > $since AND "
        "(p.imp_uid IS DISTINCT FROM s.imp_uid OR p.status IS DISTINCT FROM s.payment_status))) "
        "ORDER BY s.merchant_uid",
        {"lo": before, "since": last_success or datetime(1970, 1, 1, tzinfo=UTC)},
    ).fetchall()
    return [str(r[0]) for r in rows]


def customers_to_fetch(con: duckdb.DuckDBPyConnection, since: datetime | None, now: datetime) -> list[str]:
    """Billing keys worth a look-up: all known customers (``since`` None), else those that are unknown,
    marked deleted, have a charge booked after ``now`` (their key must still be there and may have been
    re-issued on another card), or (since ``since``) have a failed payment, a failed or revoked schedule.
    Customers whose key the V2 sync stored are its own: the V1 lookup cannot see V2 keys.

    Cost of a daily run: one call per 100 customers with a future schedule (active subscribers), not per
    customer ever seen; the periodic full pass re-reads every key.
    """
    rows = con.execute(
        "WITH seen AS ("
        "SELECT customer_uid, synced_at, status = 'failed' AS bad, false AS future FROM payments "
        "WHERE customer_uid IS NOT NULL UNION ALL "
        "SELECT customer_uid, synced_at, "
        "schedule_status = 'revoked' OR payment_status = 'failed' AS bad, "
        "schedule_status = 'scheduled' AND schedule_at > $now AS future "
        "FROM schedules WHERE customer_uid IS NOT NULL) "
        "SELECT DISTINCT s.customer_uid FROM seen s LEFT JOIN billing_keys b USING (customer_uid) "
        "WHERE s.customer_uid <> '' AND b.source_api IS DISTINCT FROM 'v2' "
        "AND ($since IS NULL OR b.customer_uid IS NULL OR s.future "
        "OR (s.synced_at > $since AND (s.bad OR b.deleted))) "
        "ORDER BY 1",
        {"since": since, "now": now},
    ).fetchall()
    return [str(r[0]) for r in rows]


def v2_key_customers(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Customers whose stored key the V2 sync wrote: the V1 lookups leave them to it."""
    rows = con.execute("SELECT customer_uid FROM billing_keys WHERE source_api = 'v2' ORDER BY 1").fetchall()
    return [str(r[0]) for r in rows]
