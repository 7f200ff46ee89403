-- Shared, per-run working tables (TEMP: they vanish with the connection). Every rule reads these instead of
-- re-aggregating the big tables, so payments are scanned and grouped once per run.
--
-- Parameters: $as_of (TIMESTAMPTZ), $grace (INTERVAL), $inferred (BOOLEAN: no subscriptions were loaded).
--
-- "Reached paid" for a payment attempt: status paid, or status cancelled with a paid_at (a later refund does
-- not undo the charge), paid no later than as_of.

-- One row per merchant_uid over all of its payment attempts (failed then paid, PortOne recovery retries).
CREATE OR REPLACE TEMP TABLE _recon_mu AS
WITH a AS (
    SELECT
        merchant_uid, imp_uid, customer_uid, status, amount, cancel_amount, currency,
        coalesce(paid_at, started_at, $as_of) AS paid_time,
        (status = 'paid' OR (status = 'cancelled' AND paid_at IS NOT NULL))
            AND coalesce(paid_at, started_at, $as_of) <= $as_of AS reached,
        coalesce(cancelled_at, paid_at, failed_at, started_at) AS changed_at
    FROM payments
)
SELECT
    merchant_uid,
    count(*) AS attempts,
    bool_or(reached) AS reached_paid,
    min(paid_time) FILTER (WHERE reached) AS first_paid_at,
    arg_max(imp_uid, paid_time) FILTER (WHERE reached) AS paid_imp_uid,
    arg_max(amount, paid_time) FILTER (WHERE reached) AS paid_amount,
    arg_max(currency, paid_time) FILTER (WHERE reached) AS paid_currency,
    min(amount) FILTER (WHERE reached) AS paid_amount_min,
    max(amount) FILTER (WHERE reached) AS paid_amount_max,
    min(currency) FILTER (WHERE reached) AS paid_currency_min,
    max(currency) FILTER (WHERE reached) AS paid_currency_max,
    sum(cancel_amount) AS cancel_total,
    arg_max(status, changed_at) AS last_status,
    arg_max(imp_uid, changed_at) AS last_imp_uid,
    arg_max(customer_uid, changed_at) AS customer_uid
FROM a
GROUP BY merchant_uid;

-- Every charge that reached paid with a billing key (customer_uid), one row per payment.
CREATE OR REPLACE TEMP TABLE _recon_charges AS
SELECT
    imp_uid, merchant_uid, customer_uid, amount, cancel_amount, currency, status,
    coalesce(paid_at, started_at, $as_of) AS paid_at
FROM payments
WHERE customer_uid IS NOT NULL
  AND (status = 'paid' OR (status = 'cancelled' AND paid_at IS NOT NULL))
  AND coalesce(paid_at, started_at, $as_of) <= $as_of;

-- One row per customer: the subscription as loaded, or (no subscriptions loaded) as inferred from PortOne.
--   active    subscriptions.status = 'active'; inferred: billing key not deleted, no local cancellation, and
--             the last paid charge within one interval + grace of as_of (a due renewal that failed or is
--             stuck keeps the subscriber active for one more interval, so it can be reported as unpaid).
--   cancelled subscriptions.status = 'cancelled'; inferred: "local cancellation" = the customer's latest
--             schedule was revoked (and nothing is booked), or its local order is cancelled.
--   anchor_day subscriptions.anchor_day; inferred: KST day of the latest schedule_at (else latest charge).
--   amount    subscriptions.amount; inferred: the latest non-revoked schedule's amount (else latest charge).
-- When subscriptions ARE loaded, a customer absent from them is neither active nor cancelled.
CREATE OR REPLACE TEMP TABLE _recon_subs AS
WITH cust AS (
    SELECT customer_uid FROM subscriptions
    UNION SELECT customer_uid FROM schedules
    UNION SELECT customer_uid FROM _recon_charges
),
sch AS (
    SELECT
        customer_uid,
        max(schedule_at) AS latest_at,
        arg_max(merchant_uid, (schedule_at, merchant_uid)) AS latest_mu,
        arg_max(schedule_status, (schedule_at, merchant_uid)) AS latest_status,
        arg_max(amount, (schedule_at, merchant_uid)) FILTER (WHERE schedule_status <> 'revoked') AS live_amount,
        bool_or(schedule_status = 'scheduled' AND schedule_at > $as_of) AS has_future,
        arg_max(schedule_at, (schedule_at, merchant_uid))
            FILTER (WHERE schedule_status <> 'revoked' AND schedule_at <= $as_of) AS due_at,
        arg_max(schedule_status = 'scheduled' OR payment_status = 'failed', (schedule_at, merchant_uid))
            FILTER (WHERE schedule_status <> 'revoked' AND schedule_at <= $as_of) AS due_unpaid
    FROM schedules
    GROUP BY customer_uid
),
chg AS (
    SELECT customer_uid, max(paid_at) AS last_paid_at, arg_max(amount, paid_at) AS last_paid_amount
    FROM _recon_charges
    GROUP BY customer_uid
),
base AS (
    SELECT
        c.customer_uid,
        s.customer_uid IS NOT NULL AS has_subscription,
        s.status AS sub_status,
        coalesce(s.amount, sch.live_amount, chg.last_paid_amount) AS amount,
        coalesce(s.interval_months, 1) AS interval_months,
        coalesce(
            s.anchor_day,
            day(recon_kst_date(sch.latest_at)),
            day(recon_kst_date(chg.last_paid_at)),
            1
        ) AS anchor_day,
        coalesce(recon_month_index(recon_kst_date(s.started_at)), 0) AS base_mi,
        coalesce(bk.deleted, false) AS key_deleted,
        (sch.latest_status = 'revoked' AND NOT coalesce(sch.has_future, false))
            OR coalesce(o.status = 'cancelled', false) AS local_cancel,
        chg.last_paid_at,
        sch.due_at,
        coalesce(sch.due_unpaid, false) AS due_unpaid,
        coalesce(sch.has_future, false) AS has_future
    FROM cust c
    LEFT JOIN subscriptions s USING (customer_uid)
    LEFT JOIN sch USING (customer_uid)
    LEFT JOIN chg USING (customer_uid)
    LEFT JOIN billing_keys bk USING (customer_uid)
    LEFT JOIN orders o ON o.merchant_uid = sch.latest_mu
)
SELECT
    customer_uid,
    has_subscription,
    NOT has_subscription AND $inferred AS inferred,
    CASE
        WHEN has_subscription THEN sub_status = 'active'
        WHEN $inferred THEN
            NOT key_deleted AND NOT local_cancel AND last_paid_at IS NOT NULL
            AND $as_of <= CASE
                WHEN due_unpaid AND due_at <= last_paid_at + to_months(interval_months) + $grace
                    THEN due_at + to_months(interval_months) + $grace
                ELSE last_paid_at + to_months(interval_months) + $grace
            END
        ELSE false
    END AS active,
    CASE
        WHEN has_subscription THEN sub_status = 'cancelled'
        WHEN $inferred THEN local_cancel
        ELSE false
    END AS cancelled,
    amount,
    interval_months,
    anchor_day,
    base_mi,
    key_deleted,
    has_future
FROM base;
