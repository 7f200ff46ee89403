-- Shared, per-run working tables (TEMP: they vanish with the connection). Every rule reads these instead of
-- re-aggregating the big tables, so payments and orders are joined once per run.
--
-- Parameters: $as_of (TIMESTAMPTZ), $grace (INTERVAL), $inferred (BOOLEAN: no subscriptions were loaded),
-- $orders_tagged (BOOLEAN: some order carries a subscription_id, so an order without one is a one-off).
--
-- What counts: billing-key issuance transactions (customer_uid_usage = 'issue') and test-channel payments
-- (sandbox) are never charges nor evidence for an order; every rule reads _recon_payments, not payments.
--
-- Attribution: every charge (reached paid with a billing key) and every schedule belongs to one
-- subscription or to none (an add-on / one-off purchase):
--   1. the subscription_id of its local order (same merchant_uid), when that subscription exists;
--   2. for a charge: the subscription of the schedule it executed (same merchant_uid);
--      for a schedule: the customer's only subscription, else the customer's one subscription of exactly
--      the schedule's amount and currency;
--   3. a charge whose local order exists but names no subscription, while the merchant's orders do name
--      subscriptions ($orders_tagged): a one-off;
--   4. otherwise the customer's one subscription of exactly the charge's amount and currency (none, or
--      several of that amount: a one-off).
-- Only a subscription's own net-paid charges (reached paid, not fully refunded) cover its renewals or count
-- as its duplicates.
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
-- Coverage bounds (NULL: unknown, everything inside): computed by the runner from sync_state and orders.
SET VARIABLE recon_sync_from = CAST($sync_from AS TIMESTAMPTZ);
SET VARIABLE recon_sync_to = CAST($sync_to AS TIMESTAMPTZ);
SET VARIABLE recon_orders_from = CAST($orders_from AS TIMESTAMPTZ);
SET VARIABLE recon_has_orders = CAST($has_orders AS BOOLEAN);

-- V1 payments read through V2 under their imp_uid: PortOne does not say which id V2 gives a V1 payment,
-- and when it is the attempt id (transactionId = imp_uid) the order id (merchant_uid) is not in what V2
-- answers. The local order that recorded that imp_uid names it; without one (an order that never learnt
-- its imp_uid, e.g. a lost webhook) the payment keeps its imp_uid and reads as having no local order.
CREATE OR REPLACE TEMP TABLE _recon_v1_ids AS
SELECT p.imp_uid, min(o.merchant_uid) AS merchant_uid
FROM payments p
JOIN orders o ON o.imp_uid = p.imp_uid
WHERE p.source_api = 'v2' AND p.api_version = 'V1' AND p.merchant_uid = p.imp_uid
GROUP BY p.imp_uid;

-- Whether there is any (a constant when the view below is planned: without any, the join is never run).
SET VARIABLE recon_v1_ids = (SELECT count(*) > 0 FROM _recon_v1_ids);

-- Payments that are charges or evidence: not issuance transactions, not test-channel payments.
CREATE OR REPLACE TEMP VIEW _recon_payments AS
SELECT * FROM payments
WHERE coalesce(customer_uid_usage, '') <> 'issue' AND NOT coalesce(sandbox, false)
  AND NOT getvariable('recon_v1_ids')
UNION ALL
SELECT p.* REPLACE (coalesce(m.merchant_uid, p.merchant_uid) AS merchant_uid)
FROM payments p
LEFT JOIN _recon_v1_ids m USING (imp_uid)
WHERE coalesce(p.customer_uid_usage, '') <> 'issue' AND NOT coalesce(p.sandbox, false)
  AND getvariable('recon_v1_ids');

-- One row per subscription (as loaded), or per customer with schedules (inferred: no subscriptions loaded).
--   active    not paused, not effectively cancelled: status active or trialing, or cancelled with a future
--             cancelled_at (cancels at period end). Inferred: billing key not deleted, no local
--             cancellation, and the last paid charge within one interval + grace of as_of (a due renewal
--             that failed or is stuck keeps the subscriber active for one more interval).
--   cancelled effectively cancelled by as_of: status cancelled without a future cancelled_at, or any
--             status with cancelled_at <= as_of. Inferred: the customer's latest schedule was revoked
--             (and nothing is booked), or its local order is cancelled.
--   ends_at   cancelled_at: no renewal is due at or after it (NULL: not cancelled, or unknown when).
--   bill_from the first instant a charge is due: trial_ends_at, else started_at.
-- Inferred subscribers are customers with at least one schedule: a card used only for one-off purchases
-- is no subscription. When subscriptions ARE loaded, a customer absent from them is neither active nor
-- cancelled (only its billing key can make its schedules orphans).
CREATE OR REPLACE TEMP TABLE _recon_subs0 AS
WITH fut AS (
    SELECT DISTINCT customer_uid
    FROM schedules
    WHERE schedule_status = 'scheduled' AND schedule_at > $as_of
),
nosub AS (
    SELECT DISTINCT customer_uid FROM schedules ANTI JOIN subscriptions USING (customer_uid)
),
sch AS (
    SELECT
        customer_uid,
        max(schedule_at) AS latest_at,
        arg_max(merchant_uid, (schedule_at, merchant_uid)) AS latest_mu,
        arg_max(schedule_status, (schedule_at, merchant_uid)) AS latest_status,
        arg_max(amount, (schedule_at, merchant_uid)) FILTER (WHERE schedule_status <> 'revoked') AS live_amount,
        arg_max(currency, (schedule_at, merchant_uid)) AS currency,
        arg_max(schedule_at, (schedule_at, merchant_uid))
            FILTER (WHERE schedule_status <> 'revoked' AND schedule_at <= $as_of) AS due_at,
        arg_max(schedule_status = 'scheduled' OR payment_status = 'failed', (schedule_at, merchant_uid))
            FILTER (WHERE schedule_status <> 'revoked' AND schedule_at <= $as_of) AS due_unpaid
    FROM schedules
    SEMI JOIN nosub USING (customer_uid)
    GROUP BY customer_uid
),
chg AS (
    SELECT customer_uid, max(coalesce(paid_at, started_at)) AS last_paid_at,
           arg_max(amount, coalesce(paid_at, started_at)) AS last_paid_amount
    FROM _recon_payments
    SEMI JOIN nosub USING (customer_uid)
    WHERE (status = 'paid' OR (status = 'cancelled' AND paid_at IS NOT NULL))
      AND coalesce(paid_at, started_at, $as_of) <= $as_of
    GROUP BY customer_uid
),
inferred_base AS (
    SELECT
        c.customer_uid,
        coalesce(sch.live_amount, chg.last_paid_amount) AS amount,
        coalesce(sch.currency, 'KRW') AS currency,
        coalesce(day(recon_kst_date(sch.latest_at)), day(recon_kst_date(chg.last_paid_at)), 1) AS anchor_day,
        coalesce(bk.deleted, false) AS key_deleted,
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
),
loaded AS (
    SELECT
        s.* REPLACE (coalesce(s.subscription_id, s.customer_uid) AS subscription_id),
        (s.status = 'cancelled' AND (s.cancelled_at IS NULL OR s.cancelled_at <= $as_of))
            OR coalesce(s.cancelled_at <= $as_of, false) AS is_cancelled
    FROM subscriptions s
)
SELECT
    s.subscription_id,
    s.customer_uid,
    true AS has_subscription,
    false AS inferred,
    s.status,
    s.status <> 'paused' AND NOT s.is_cancelled AS active,
    s.is_cancelled AS cancelled,
    s.cancelled_at AS ends_at,
    coalesce(s.trial_ends_at, s.started_at) AS bill_from,
    s.started_at,
    s.amount,
    s.currency,
    s.interval_months,
    s.anchor_day,
    coalesce(recon_month_index(recon_kst_date(s.started_at)), 0) AS base_mi,
    coalesce(bk.deleted, false) AS key_deleted
FROM loaded s
LEFT JOIN billing_keys bk USING (customer_uid)
UNION ALL
SELECT
    customer_uid AS subscription_id,
    customer_uid,
    false AS has_subscription,
    $inferred AS inferred,
    CAST(NULL AS VARCHAR) AS status,
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
    CAST(NULL AS TIMESTAMPTZ) AS ends_at,
    CAST(NULL AS TIMESTAMPTZ) AS bill_from,
    CAST(NULL AS TIMESTAMPTZ) AS started_at,
    amount,
    currency,
    1 AS interval_months,
    anchor_day,
    0 AS base_mi,
    key_deleted
FROM inferred_base;

-- Every schedule's subscription (see Attribution above; NULL: none), narrow: the rules join schedules for
-- the few rows whose other columns they need. Customers with one subscription (the common case) need no
-- lookup of orders; only the schedules of customers with several are matched by order, then by amount.
CREATE OR REPLACE TEMP TABLE _recon_sub_count AS
SELECT customer_uid, count(*) AS n, min(subscription_id) AS only_id FROM _recon_subs0 GROUP BY customer_uid;

CREATE OR REPLACE TEMP TABLE _recon_sched_multi AS
WITH multi_subs AS (
    SELECT u.subscription_id, u.customer_uid, u.amount, u.currency
    FROM _recon_subs0 u
    SEMI JOIN (SELECT customer_uid FROM _recon_sub_count WHERE n > 1) USING (customer_uid)
)
SELECT
    s.merchant_uid,
    coalesce(
        arg_min(ot.subscription_id, ot.subscription_id),
        CASE WHEN count(DISTINCT am.subscription_id) = 1 THEN min(am.subscription_id) END
    ) AS subscription_id
FROM schedules s
SEMI JOIN multi_subs USING (customer_uid)
LEFT JOIN (
    SELECT o.merchant_uid, o.subscription_id, m.customer_uid
    FROM orders o JOIN multi_subs m USING (subscription_id)
) ot ON ot.merchant_uid = s.merchant_uid AND ot.customer_uid = s.customer_uid
LEFT JOIN multi_subs am
    ON am.customer_uid = s.customer_uid AND am.amount = s.amount AND am.currency = s.currency
GROUP BY s.merchant_uid;

-- A view: each reader filters schedules first (future, open, a few subscriptions), then looks the
-- subscription up in the two small tables above.
CREATE OR REPLACE TEMP VIEW _recon_sched_map AS
SELECT
    s.merchant_uid, s.customer_uid, s.schedule_status, s.payment_status, s.imp_uid, s.schedule_at,
    s.executed_at, s.amount, s.currency, s.fail_reason,
    CASE WHEN pc.n = 1 THEN pc.only_id ELSE m.subscription_id END AS subscription_id
FROM schedules s
LEFT JOIN _recon_sub_count pc USING (customer_uid)
LEFT JOIN _recon_sched_multi m USING (merchant_uid);

-- The subscriptions with has_future: a `scheduled` schedule of theirs after as_of.
CREATE OR REPLACE TEMP TABLE _recon_subs AS
SELECT u.*, f.subscription_id IS NOT NULL AS has_future
FROM _recon_subs0 u
LEFT JOIN (
    SELECT DISTINCT subscription_id FROM _recon_sched_map
    WHERE schedule_status = 'scheduled' AND schedule_at > $as_of AND subscription_id IS NOT NULL
) f USING (subscription_id);

-- The latest due schedule (schedule_at <= as_of, not revoked) of each active subscription with nothing
-- booked in the future: the only subscriptions missing_next_schedule looks at.
CREATE OR REPLACE TEMP TABLE _recon_last_due AS
SELECT
    subscription_id,
    arg_max(
        {'merchant_uid': merchant_uid, 'schedule_at': schedule_at, 'schedule_status': schedule_status,
         'payment_status': payment_status, 'imp_uid': imp_uid, 'executed_at': executed_at,
         'amount': amount, 'currency': currency},
        (schedule_at, merchant_uid)
    ) AS s
FROM _recon_sched_map
SEMI JOIN (SELECT customer_uid FROM _recon_subs WHERE active AND NOT has_future) USING (customer_uid)
WHERE schedule_status <> 'revoked' AND schedule_at <= $as_of
  AND subscription_id IN (SELECT subscription_id FROM _recon_subs WHERE active AND NOT has_future)
GROUP BY subscription_id;

-- The open schedules (still `scheduled`, past or future, or executed with a failed payment) with their
-- subscription and their local order's status and amount: every schedule the schedule rules look at except
-- missing_next_schedule's, with one lookup of orders (instead of one scan and one orders join per rule).
CREATE OR REPLACE TEMP TABLE _recon_sched AS
SELECT s.*, o.status AS local_status, o.amount AS local_amount
FROM _recon_sched_map s
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
--   charged_after_cancel  a reached attempt for a cancelled order
-- The orders side carries its rowid, so the candidate orders are fetched without hashing text again.
CREATE OR REPLACE TEMP TABLE _recon_pairs AS
SELECT o.rowid AS order_row, coalesce(o.merchant_uid, p.merchant_uid) AS merchant_uid
FROM orders o
FULL JOIN (
    SELECT
        merchant_uid, amount, cancel_amount, currency,
        (status = 'paid' OR (status = 'cancelled' AND paid_at IS NOT NULL))
            AND coalesce(paid_at, started_at, $as_of) <= $as_of AS reached
    FROM _recon_payments
) p ON p.merchant_uid = o.merchant_uid
WHERE (o.merchant_uid IS NULL AND p.reached)
   OR (o.status = 'paid' AND (p.merchant_uid IS NULL OR NOT p.reached))
   OR (p.reached AND (p.amount IS DISTINCT FROM o.amount OR p.currency IS DISTINCT FROM o.currency))
   OR (p.reached AND o.status IN ('pending', 'failed', 'cancelled'))
   OR p.cancel_amount > least(o.refunded_amount, 0);

-- The local orders that can carry an order-level finding (every column of orders). The order rules read
-- this instead of orders. subscription_id: the order's own, else that of the schedule with its
-- merchant_uid (a renewal order of a merchant whose orders name no subscription).
CREATE OR REPLACE TEMP TABLE _recon_orders AS
WITH o AS (SELECT * FROM orders WHERE rowid IN (SELECT order_row FROM _recon_pairs))
SELECT o.* REPLACE (coalesce(o.subscription_id, m.subscription_id) AS subscription_id)
FROM o
LEFT JOIN (
    SELECT merchant_uid, subscription_id FROM _recon_sched_map SEMI JOIN o USING (merchant_uid)
) m USING (merchant_uid);

-- The merchant_uids _recon_mu is computed for: the candidates above, plus the latest due schedules of
-- missing_next_schedule. has_order is false when no local order has this merchant_uid (NULL: schedule row).
CREATE OR REPLACE TEMP TABLE _recon_cand AS
SELECT DISTINCT merchant_uid, order_row IS NOT NULL AS has_order FROM _recon_pairs
UNION ALL
SELECT s.merchant_uid, CAST(NULL AS BOOLEAN) FROM _recon_last_due;

-- Coverage: the local orders inside the synced range (an order's time is ordered_at, else paid_at; NULL
-- bounds, or an order without a time, are always inside). Order-side rules judge only these.
CREATE OR REPLACE TEMP MACRO recon_order_covered(ordered_at, paid_at) AS
    coalesce(coalesce(ordered_at, paid_at) >= getvariable('recon_sync_from'), true)
    AND coalesce(coalesce(ordered_at, paid_at) < getvariable('recon_sync_to'), true);

-- Coverage: the payments inside the loaded orders' range (from the earliest order's time; NULL: no order
-- has a time, all inside). Payment-side rules judge only these; with no orders at all, none.
CREATE OR REPLACE TEMP MACRO recon_payment_covered(paid_at) AS
    getvariable('recon_has_orders') AND coalesce(paid_at >= getvariable('recon_orders_from'), true);

-- Charges per customer (counted payments that reached paid by as_of, not fully refunded, with a billing
-- key): one narrow pass, used to find the customers whose charges any rule must attribute.
CREATE OR REPLACE TEMP TABLE _recon_charge_span AS
SELECT customer_uid, count(*) AS n, min(paid_at) AS first_at, max(paid_at) AS last_at
FROM (
    SELECT customer_uid, coalesce(paid_at, started_at, getvariable('recon_as_of')) AS paid_at
    FROM _recon_payments
    WHERE customer_uid IS NOT NULL AND cancel_amount < amount
      AND (status = 'paid' OR (status = 'cancelled' AND paid_at IS NOT NULL))
      AND coalesce(paid_at, started_at, getvariable('recon_as_of')) <= getvariable('recon_as_of')
)
GROUP BY customer_uid;

-- The customers whose charges a rule can need attributed (merchant scale: attribution costs joins with
-- orders and schedules, so it is done for these only):
--   duplicate_charge      several subscriptions on the card, or (one subscription) more charges than the
--                         periods they span (pigeonhole: n charges in distinct periods span n periods)
--   charged_after_cancel  a charge at or after a subscription's effective cancellation
--   unpaid_renewal        a due open schedule
--   missing_next_schedule / chain_not_started   an active subscription with nothing booked ahead
--   unknown_payment       a reached payment without a local order
CREATE OR REPLACE TEMP TABLE _recon_charge_customers AS
SELECT s.customer_uid
FROM _recon_charge_span s
JOIN _recon_sub_count pc USING (customer_uid)
LEFT JOIN _recon_subs0 u ON pc.n = 1 AND u.customer_uid = s.customer_uid
WHERE s.n > 1
  AND (pc.n > 1
       OR s.n > recon_period(s.last_at, u.anchor_day, u.interval_months, u.base_mi)
                - recon_period(s.first_at, u.anchor_day, u.interval_months, u.base_mi) + 1)
UNION
SELECT u.customer_uid FROM _recon_subs0 u JOIN _recon_charge_span s USING (customer_uid)
WHERE u.ends_at <= $as_of AND s.last_at >= u.ends_at
UNION
SELECT customer_uid FROM _recon_sched WHERE schedule_at + $grace <= $as_of
UNION
SELECT customer_uid FROM _recon_subs WHERE active AND NOT has_future
UNION
SELECT p.customer_uid FROM _recon_payments p
SEMI JOIN (SELECT merchant_uid FROM _recon_cand WHERE NOT has_order) USING (merchant_uid)
WHERE p.customer_uid IS NOT NULL;

-- The charges of those customers (see _recon_charge_customers), one row per payment that reached paid by
-- as_of and is not fully refunded (net-paid), with the subscription it is attributed to (NULL: an add-on
-- / one-off; see Attribution above) and how (attr_rank).
CREATE OR REPLACE TEMP TABLE _recon_charges AS
WITH c AS (
    SELECT
        imp_uid, merchant_uid, customer_uid, amount, cancel_amount, currency, status,
        coalesce(paid_at, started_at, getvariable('recon_as_of')) AS paid_at
    FROM _recon_payments
    SEMI JOIN _recon_charge_customers USING (customer_uid)
    WHERE cancel_amount < amount
      AND (status = 'paid' OR (status = 'cancelled' AND paid_at IS NOT NULL))
      AND coalesce(paid_at, started_at, getvariable('recon_as_of')) <= getvariable('recon_as_of')
),
by_amount AS (
    SELECT customer_uid, amount, currency, min(subscription_id) AS subscription_id
    FROM _recon_subs0
    GROUP BY customer_uid, amount, currency
    HAVING count(*) = 1
),
tagged AS (
    SELECT o.merchant_uid, u.subscription_id, u.customer_uid
    FROM orders o
    SEMI JOIN c USING (merchant_uid)
    LEFT JOIN _recon_subs0 u ON u.subscription_id = o.subscription_id
    WHERE o.subscription_id IS NOT NULL OR $orders_tagged
),
sched AS (
    SELECT merchant_uid, subscription_id FROM _recon_sched_map SEMI JOIN c USING (merchant_uid)
)
SELECT
    c.*,
    true AS net_paid,
    -- how it was attributed: 1 its order, 2 its schedule, 4 its amount (weakest evidence)
    CASE
        WHEN t.customer_uid = c.customer_uid THEN 1
        WHEN sa.merchant_uid IS NOT NULL THEN 2
        ELSE 4
    END AS attr_rank,
    CASE
        WHEN t.customer_uid = c.customer_uid THEN t.subscription_id
        WHEN sa.merchant_uid IS NOT NULL THEN sa.subscription_id
        WHEN t.merchant_uid IS NOT NULL AND $orders_tagged THEN NULL
        ELSE ba.subscription_id
    END AS subscription_id
FROM c
LEFT JOIN tagged t ON t.merchant_uid = c.merchant_uid
LEFT JOIN sched sa ON sa.merchant_uid = c.merchant_uid
LEFT JOIN by_amount ba ON ba.customer_uid = c.customer_uid AND ba.amount = c.amount AND ba.currency = c.currency;

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
    FROM _recon_payments
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
    sum(amount - cancel_amount) FILTER (WHERE reached) AS net_paid,
    arg_max(status, changed_at) AS last_status,
    arg_max(imp_uid, changed_at) AS last_imp_uid,
    arg_max(customer_uid, changed_at) AS customer_uid
FROM a
GROUP BY merchant_uid;
