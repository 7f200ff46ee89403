-- missing_next_schedule (high): an active subscription whose latest due schedule (schedule_at <= as_of, not
-- revoked) executed and was paid (or, if it failed, the period was paid by a later charge), at least `grace`
-- before as_of, and that has no future `scheduled` schedule: the chain of renewals ended silently.
-- (A stuck or failed latest schedule with nothing paid is an unpaid_renewal instead.)
-- Suggested action: rebook. amount_at_risk: the subscription's amount (one period of revenue).
-- _recon_last_due (_prepare.sql): the latest due, not revoked schedule of each active customer with nothing
-- booked in the future (the only customers that can have the finding)
WITH latest AS (
    SELECT customer_uid, s FROM _recon_last_due
),
cand AS (
    SELECT
        l.customer_uid, l.s.merchant_uid AS merchant_uid, l.s.schedule_at AS schedule_at,
        l.s.schedule_status AS schedule_status, l.s.payment_status AS payment_status,
        l.s.executed_at AS executed_at, l.s.amount AS amount, l.s.currency AS currency,
        coalesce(m.paid_imp_uid, l.s.imp_uid) AS imp_uid,
        (l.s.schedule_status = 'executed' AND l.s.payment_status IN ('paid', 'cancelled'))
            OR coalesce(m.reached_paid, false) AS own_paid,
        coalesce(m.first_paid_at, l.s.executed_at, l.s.schedule_at) AS own_paid_at,
        u.amount AS sub_amount, u.anchor_day, u.interval_months, u.base_mi
    FROM latest l
    JOIN _recon_subs u USING (customer_uid)
    LEFT JOIN _recon_mu m ON m.merchant_uid = l.s.merchant_uid
    WHERE u.active AND NOT u.has_future
),
cover AS (
    SELECT c.customer_uid, arg_min(c.imp_uid, c.paid_at) AS imp_uid, min(c.paid_at) AS paid_at
    FROM cand d
    JOIN _recon_charges c ON c.customer_uid = d.customer_uid AND c.paid_at >= d.schedule_at
    WHERE NOT d.own_paid
      AND recon_period(c.paid_at, d.anchor_day, d.interval_months, d.base_mi)
          = recon_period(d.schedule_at, d.anchor_day, d.interval_months, d.base_mi)
    GROUP BY c.customer_uid
)
SELECT
    'missing_next_schedule' AS kind,
    'high' AS severity,
    d.customer_uid || '|' || d.merchant_uid AS match_key,
    d.customer_uid,
    CAST(NULL AS VARCHAR) AS merchant_uid,
    CASE WHEN d.own_paid THEN d.imp_uid ELSE cv.imp_uid END AS imp_uid,
    d.merchant_uid AS schedule_merchant_uid,
    'no future schedule' AS portone_status,
    CAST(NULL AS VARCHAR) AS local_status,
    d.amount AS portone_amount,
    d.sub_amount AS local_amount,
    coalesce(d.sub_amount, d.amount) AS amount_at_risk,
    CASE WHEN d.own_paid THEN d.own_paid_at ELSE cv.paid_at END AS event_at,
    'rebook' AS suggested_action,
    'last renewal ' || d.merchant_uid || ' (' || recon_kst(d.schedule_at) || ') was paid'
        || CASE WHEN d.own_paid THEN '' ELSE ' by a later charge' END
        || ' but nothing is booked after it; next period '
        || strftime(recon_period_start(
               recon_period(d.schedule_at, d.anchor_day, d.interval_months, d.base_mi) + 1,
               d.anchor_day, d.interval_months, d.base_mi), '%Y-%m-%d')
        || ' (' || recon_money(coalesce(d.sub_amount, d.amount), d.currency) || ')' AS detail
FROM cand d
LEFT JOIN cover cv USING (customer_uid)
WHERE (d.own_paid AND d.own_paid_at + $grace <= $as_of)
   OR (NOT d.own_paid AND cv.paid_at IS NOT NULL AND cv.paid_at + $grace <= $as_of)
