-- Shared, per-run working tables (TEMP: they vanish with the connection). Every rule reads these instead of
-- re-aggregating the big tables, so payments and orders are joined once per run.
--
-- Parameters: $as_of (TIMESTAMPTZ), $grace (INTERVAL), $inferred (BOOLEAN: no subscriptions were loaded).
--
-- "Reached paid" for a payment attempt: status paid, or status cancelled with a paid_at (a later refund does
-- not undo the charge), paid no later than as_of.
--
-- Merchant scale (1e6-1e7 orders): the heavy per-key work is restricted to the keys that can carry a
-- finding. One narrow FULL JOIN of orders x payments picks the candidate merchant_uids (_recon_cand); the
-- wide per-merchant_uid aggregate (_recon_mu) is computed for those only. Per-customer schedule and charge
-- history is aggregated only for customers without a loaded subscription (the only ones whose fields are
-- inferred from it).

-- as_of for the views below (a view cannot hold a bound parameter; a session variable can).
SET VARIABLE recon_as_of = CAST($as_of AS TIMESTAMPTZ);

-- Every charge that reached paid with a billing key (customer_uid), one row per payment. A view, not a
-- table: each reader filters it further (a few customers, or one pass computing the billing period), which
-- is cheaper than materialising every charge with its text columns.
CREATE OR REPLACE TEMP VIEW _recon_charges AS
SELECT
    imp_uid, merchant_uid, customer_uid, amount, cancel_amount, currency, status,
    coalesce(paid_at, started_at, getvariable('recon_as_of')) AS paid_at
FROM payments
WHERE customer_uid IS NOT NULL
  AND (status = 'paid' OR (status = 'cancelled' AND paid_at IS NOT NULL))
  AND coalesce(paid_at, started_at, getvariable('recon_as_of')) <= getvariable('recon_as_of');

-- One row per customer: the subscription as loaded, or (no subscriptions loaded) as inferred from PortOne.
--   active    subscriptions.status = 'active'; inferred: billing key not deleted, no local cancellation, and
--             the last paid charge within one interval + grace of as_of (a due renewal that failed or is
--             stuck keeps the subscriber active for one more interval, so it can be reported as unpaid).
--   cancelled subscriptions.status = 'cancelled'; inferred: "local cancellation" = the customer's latest
--             schedule was revoked (and nothing is booked), or its local order is cancelled.
--   anchor_day subscriptions.anchor_day; inferred: KST day of the latest schedule_at (else latest charge).
--   amount    subscriptions.amount; inferred: the latest non-revoked schedule's amount (else latest charge).
-- When subscriptions ARE loaded, a customer absent from them is neither active nor cancelled.
-- (subscriptions.amount / interval_months / anchor_day are NOT NULL, so for a customer with a subscription
-- row the schedule/charge fallbacks are never used: they are computed for the other customers only.)
CREATE OR REPLACE TEMP TABLE _recon_subs AS
WITH fut AS (
    SELECT DISTINCT customer_uid
    FROM schedules
    WHERE schedule_status = 'scheduled' AND schedule_at > $as_of
),
nosub AS (
    SELECT customer_uid FROM schedules ANTI JOIN subscriptions USING (customer_uid)
    UNION
    SELECT customer_uid FROM _recon_charges ANTI JOIN subscriptions USING (customer_uid)
),
sch AS (
    SELECT
        customer_uid,
        max(schedule_at) AS latest_at,
        arg_max(merchant_uid, (schedule_at, merchant_uid)) AS latest_mu,
        arg_max(schedule_status, (schedule_at, merchant_uid)) AS latest_status,
        arg_max(amount, (schedule_at, merchant_uid)) FILTER (WHERE schedule_status <> 'revoked') AS live_amount,
        arg_max(schedule_at, (schedule_at, merchant_uid))
            FILTER (WHERE schedule_status <> 'revoked' AND schedule_at <= $as_of) AS due_at,
        arg_max(schedule_status = 'scheduled' OR payment_status = 'failed', (schedule_at, merchant_uid))
            FILTER (WHERE schedule_status <> 'revoked' AND schedule_at <= $as_of) AS due_unpaid
    FROM schedules
    SEMI JOIN nosub USING (customer_uid)
    GROUP BY customer_uid
),
chg AS (
    SELECT customer_uid, max(paid_at) AS last_paid_at, arg_max(amount, paid_at) AS last_paid_amount
    FROM _recon_charges
    SEMI JOIN nosub USING (customer_uid)
    GROUP BY customer_uid
),
inferred_base AS (
    SELECT
        c.customer_uid,
        coalesce(sch.live_amount, chg.last_paid_amount) AS amount,
        coalesce(day(recon_kst_date(sch.latest_at)), day(recon_kst_date(chg.last_paid_at)), 1) AS anchor_day,
        coalesce(bk.deleted, false) AS key_deleted,
        f.customer_uid IS NOT NULL AS has_future,
        (sch.latest_status = 'revoked' AND f.customer_uid IS NULL)
            OR coalesce(o.status = 'cancelled', false) AS local_cancel,
        chg.last_paid_at,
        sch.due_at,
        coalesce(sch.due_unpaid, false) AS due_unpaid
    FROM nosub c
    LEFT JOIN sch USING (customer_uid)
    LEFT JOIN chg USING (customer_uid)
    LEFT JOIN billing_keys bk USING (customer_uid)
    LEFT JOIN fut f USING (customer_uid)
    LEFT JOIN orders o ON o.merchant_uid = sch.latest_mu
)
SELECT
    s.customer_uid,
    true AS has_subscription,
    false AS inferred,
    s.status = 'active' AS active,
    s.status = 'cancelled' AS cancelled,
    s.amount,
    s.interval_months,
    s.anchor_day,
    coalesce(recon_month_index(recon_kst_date(s.started_at)), 0) AS base_mi,
    coalesce(bk.deleted, false) AS key_deleted,
    f.customer_uid IS NOT NULL AS has_future
FROM subscriptions s
LEFT JOIN billing_keys bk USING (customer_uid)
LEFT JOIN fut f USING (customer_uid)
UNION ALL
SELECT
    customer_uid,
    false AS has_subscription,
    $inferred AS inferred,
    CASE
        WHEN $inferred THEN
            NOT key_deleted AND NOT local_cancel AND last_paid_at IS NOT NULL
            AND $as_of <= CASE
                WHEN due_unpaid AND due_at <= last_paid_at + to_months(1) + $grace
                    THEN due_at + to_months(1) + $grace
                ELSE last_paid_at + to_months(1) + $grace
            END
        ELSE false
    END AS active,
    $inferred AND local_cancel AS cancelled,
    amount,
    1 AS interval_months,
    anchor_day,
    0 AS base_mi,
    key_deleted,
    has_future
FROM inferred_base;

-- The latest due schedule (schedule_at <= as_of, not revoked) of each active customer with nothing booked in
-- the future: the only customers missing_next_schedule looks at (one pass over schedules, for few keys).
CREATE OR REPLACE TEMP TABLE _recon_last_due AS
SELECT
    customer_uid,
    arg_max(
        {'merchant_uid': merchant_uid, 'schedule_at': schedule_at, 'schedule_status': schedule_status,
         'payment_status': payment_status, 'imp_uid': imp_uid, 'executed_at': executed_at,
         'amount': amount, 'currency': currency},
        (schedule_at, merchant_uid)
    ) AS s
FROM schedules
SEMI JOIN (SELECT customer_uid FROM _recon_subs WHERE active AND NOT has_future) USING (customer_uid)
WHERE schedule_status <> 'revoked' AND schedule_at <= $as_of
GROUP BY customer_uid;

-- The open schedules (still `scheduled`, past or future, or executed with a failed payment) with their local
-- order's status and amount: every schedule the schedule rules look at except missing_next_schedule's, read
-- in one pass with one lookup of orders (instead of one scan and one orders join per rule).
CREATE OR REPLACE TEMP TABLE _recon_sched AS
SELECT
    s.merchant_uid, s.customer_uid, s.schedule_status, s.payment_status, s.imp_uid, s.schedule_at,
    s.executed_at, s.amount, s.currency, s.fail_reason,
    o.status AS local_status, o.amount AS local_amount
FROM schedules s
LEFT JOIN orders o ON o.merchant_uid = s.merchant_uid
WHERE s.schedule_status = 'scheduled' OR (s.schedule_status = 'executed' AND s.payment_status = 'failed');

-- Candidate merchant_uids: every merchant_uid (of an order, a payment, or both) where an order-level rule
-- can fire, found by one narrow FULL JOIN of orders x payment attempts. A row qualifies when it alone shows
-- a possible finding; every rule's condition on the merchant_uid's aggregate implies one such row:
--   unknown_payment       a reached payment without an order
--   phantom_paid          a paid order without payments, or with an attempt that did not reach paid
--   amount_mismatch       a reached attempt whose amount/currency differs from the order's
--   missed_webhook        a reached attempt for a pending/failed order
--   refund_not_reflected  an attempt with cancel_amount > min(refunded_amount, 0) (sum > r needs one)
-- The orders side carries its rowid, so the candidate orders are fetched without hashing text again.
CREATE OR REPLACE TEMP TABLE _recon_pairs AS
SELECT o.rowid AS order_row, coalesce(o.merchant_uid, p.merchant_uid) AS merchant_uid
FROM orders o
FULL JOIN (
    SELECT
        merchant_uid, amount, cancel_amount, currency,
        (status = 'paid' OR (status = 'cancelled' AND paid_at IS NOT NULL))
            AND coalesce(paid_at, started_at, $as_of) <= $as_of AS reached
    FROM payments
) p ON p.merchant_uid = o.merchant_uid
WHERE (o.merchant_uid IS NULL AND p.reached)
   OR (o.status = 'paid' AND (p.merchant_uid IS NULL OR NOT p.reached))
   OR (p.reached AND (p.amount IS DISTINCT FROM o.amount OR p.currency IS DISTINCT FROM o.currency))
   OR (p.reached AND o.status IN ('pending', 'failed'))
   OR p.cancel_amount > least(o.refunded_amount, 0);

-- The local orders that can carry an order-level finding (every column of orders). The order rules read
-- this instead of orders.
CREATE OR REPLACE TEMP TABLE _recon_orders AS
SELECT * FROM orders WHERE rowid IN (SELECT order_row FROM _recon_pairs);

-- The merchant_uids _recon_mu is computed for: the candidates above, plus the latest due schedules of
-- missing_next_schedule. has_order is false when no local order has this merchant_uid (NULL: schedule row).
CREATE OR REPLACE TEMP TABLE _recon_cand AS
SELECT DISTINCT merchant_uid, order_row IS NOT NULL AS has_order FROM _recon_pairs
UNION ALL
SELECT s.merchant_uid, CAST(NULL AS BOOLEAN) FROM _recon_last_due;

-- One row per candidate merchant_uid over ALL of its payment attempts (failed then paid, PortOne recovery
-- retries). Complete for every merchant_uid in _recon_cand that has a payment; absent otherwise.
CREATE OR REPLACE TEMP TABLE _recon_mu AS
WITH a AS (
    SELECT
        merchant_uid, imp_uid, customer_uid, status, amount, cancel_amount, currency,
        coalesce(paid_at, started_at, $as_of) AS paid_time,
        (status = 'paid' OR (status = 'cancelled' AND paid_at IS NOT NULL))
            AND coalesce(paid_at, started_at, $as_of) <= $as_of AS reached,
        coalesce(cancelled_at, paid_at, failed_at, started_at) AS changed_at
    FROM payments
    SEMI JOIN _recon_cand USING (merchant_uid)
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
