-- missing_next_schedule (high): an active subscription whose latest due schedule (schedule_at <= as_of, not
-- revoked) executed and was paid (or, if it failed, the period was paid by a later net-paid charge of the
-- same subscription), at least `grace` before as_of, and that has no future `scheduled` schedule: the
-- chain of renewals ended silently. Not when the subscription cancels at period end (the next period
-- starts at or after cancelled_at). (A stuck or failed latest schedule with nothing paid is an
-- unpaid_renewal instead; a subscription with no schedule at all is chain_not_started.)
-- period_start / period_end: the NEXT period, the one that should be booked.
-- Suggested action: rebook. amount_at_risk: the subscription's amount (one period of revenue).
-- _recon_last_due (_prepare.sql): the latest due, not revoked schedule of each active subscription with
-- nothing booked in the future (the only subscriptions that can have the finding)
WITH cand AS (
    SELECT
        l.subscription_id, u.customer_uid, l.s.merchant_uid AS merchant_uid, l.s.schedule_at AS schedule_at,
        l.s.schedule_status AS schedule_status, l.s.payment_status AS payment_status,
        l.s.executed_at AS executed_at, l.s.amount AS amount, l.s.currency AS currency,
        coalesce(m.paid_imp_uid, l.s.imp_uid) AS imp_uid,
        (l.s.schedule_status = 'executed' AND l.s.payment_status IN ('paid', 'cancelled'))
            OR coalesce(m.reached_paid, false) AS own_paid,
        coalesce(m.first_paid_at, l.s.executed_at, l.s.schedule_at) AS own_paid_at,
        u.amount AS sub_amount, u.anchor_day, u.interval_months, u.base_mi, u.ends_at,
        recon_period(l.s.schedule_at, u.anchor_day, u.interval_months, u.base_mi) + 1 AS next_period
    FROM _recon_last_due l
    JOIN _recon_subs u USING (subscription_id)
    LEFT JOIN _recon_mu m ON m.merchant_uid = l.s.merchant_uid
    WHERE u.active AND NOT u.has_future
),
cover AS (
    SELECT d.subscription_id, arg_min(c.imp_uid, c.paid_at) AS imp_uid, min(c.paid_at) AS paid_at
    FROM cand d
    JOIN _recon_charges c ON c.subscription_id = d.subscription_id AND c.paid_at >= d.schedule_at
    WHERE NOT d.own_paid AND c.net_paid
      AND recon_period(c.paid_at, d.anchor_day, d.interval_months, d.base_mi) = d.next_period - 1
    GROUP BY d.subscription_id
),
x AS (
    SELECT
        d.*, cv.imp_uid AS cover_imp_uid, cv.paid_at AS cover_paid_at,
        recon_period_start(d.next_period, d.anchor_day, d.interval_months, d.base_mi) AS next_start,
        recon_period_end(d.next_period, d.anchor_day, d.interval_months, d.base_mi) AS next_end
    FROM cand d
    LEFT JOIN cover cv USING (subscription_id)
)
SELECT
    'missing_next_schedule' AS kind,
    'high' AS severity,
    d.customer_uid || '|' || d.merchant_uid AS match_key,
    d.customer_uid,
    CAST(NULL AS VARCHAR) AS merchant_uid,
    CASE WHEN d.own_paid THEN d.imp_uid ELSE d.cover_imp_uid END AS imp_uid,
    d.merchant_uid AS schedule_merchant_uid,
    'no future schedule' AS portone_status,
    CAST(NULL AS VARCHAR) AS local_status,
    d.amount AS portone_amount,
    d.sub_amount AS local_amount,
    coalesce(d.sub_amount, d.amount) AS amount_at_risk,
    CASE WHEN d.own_paid THEN d.own_paid_at ELSE d.cover_paid_at END AS event_at,
    'rebook' AS suggested_action,
    d.subscription_id,
    d.next_start AS period_start,
    d.next_end AS period_end,
    d.currency,
    'last renewal ' || d.merchant_uid || ' (' || recon_kst(d.schedule_at) || ') was paid'
        || CASE WHEN d.own_paid THEN '' ELSE ' by a later charge' END
        || ' but nothing is booked after it; next period ' || strftime(d.next_start, '%Y-%m-%d')
        || ' (' || recon_money(coalesce(d.sub_amount, d.amount), d.currency) || ')' AS detail
FROM x d
WHERE ((d.own_paid AND d.own_paid_at + $grace <= $as_of)
       OR (NOT d.own_paid AND d.cover_paid_at IS NOT NULL AND d.cover_paid_at + $grace <= $as_of))
  AND (d.ends_at IS NULL OR d.next_start < recon_kst_date(d.ends_at))
