-- unpaid_renewal (high): a renewal schedule of an active subscription came due (schedule_at + grace <= as_of,
-- before the subscription's effective cancellation) and its charge failed, or it is still `scheduled`
-- (stuck), and no net-paid charge of THAT subscription (see Attribution in _prepare.sql: an add-on or
-- another plan on the same card never covers it) was paid at or after schedule_at in the same billing
-- period (nor is a retry of that subscription booked later in that period and not yet due).
-- Suggested action: retry (failed schedule) / rebook (stuck schedule).
-- amount_at_risk: the subscription's amount (the schedule's amount when it is unknown).
WITH due AS (
    SELECT
        s.merchant_uid, s.customer_uid, s.subscription_id, s.schedule_at, s.schedule_status,
        s.payment_status, s.imp_uid, s.amount, s.currency, s.fail_reason, u.amount AS sub_amount,
        u.anchor_day, u.interval_months, u.base_mi,
        recon_period(s.schedule_at, u.anchor_day, u.interval_months, u.base_mi) AS period,
        s.local_status
    -- _recon_sched (_prepare.sql): the open (scheduled, or executed and failed) schedules + local status
    FROM _recon_sched s
    JOIN _recon_subs u USING (subscription_id)
    WHERE u.active
      AND s.schedule_at + $grace <= $as_of
      AND (u.ends_at IS NULL OR s.schedule_at < u.ends_at)
      AND (s.schedule_status = 'scheduled' OR (s.schedule_status = 'executed' AND s.payment_status = 'failed'))
),
covered AS (
    SELECT DISTINCT d.merchant_uid
    FROM due d
    JOIN _recon_charges c ON c.subscription_id = d.subscription_id AND c.paid_at >= d.schedule_at
    WHERE c.net_paid
      AND recon_period(c.paid_at, d.anchor_day, d.interval_months, d.base_mi) = d.period
),
retry_booked AS (
    SELECT DISTINCT d.merchant_uid
    FROM due d
    JOIN _recon_sched r ON r.subscription_id = d.subscription_id AND r.schedule_at > d.schedule_at
    WHERE r.schedule_status = 'scheduled'
      AND r.schedule_at + $grace > $as_of
      AND recon_period(r.schedule_at, d.anchor_day, d.interval_months, d.base_mi) = d.period
)
SELECT
    'unpaid_renewal' AS kind,
    'high' AS severity,
    d.merchant_uid AS match_key,
    d.customer_uid,
    d.merchant_uid,
    d.imp_uid,
    d.merchant_uid AS schedule_merchant_uid,
    CASE WHEN d.schedule_status = 'scheduled' THEN 'scheduled' ELSE d.payment_status END AS portone_status,
    d.local_status,
    d.amount AS portone_amount,
    d.sub_amount AS local_amount,
    coalesce(d.sub_amount, d.amount) AS amount_at_risk,
    d.schedule_at AS event_at,
    CASE WHEN d.schedule_status = 'scheduled' THEN 'rebook' ELSE 'retry' END AS suggested_action,
    d.subscription_id,
    recon_period_start(d.period, d.anchor_day, d.interval_months, d.base_mi) AS period_start,
    recon_period_end(d.period, d.anchor_day, d.interval_months, d.base_mi) AS period_end,
    d.currency,
    CASE WHEN d.schedule_status = 'scheduled'
         THEN 'renewal scheduled for ' || recon_kst(d.schedule_at) || ' never ran (still scheduled)'
         ELSE 'renewal of ' || recon_kst(d.schedule_at) || ' failed'
              || coalesce(' (' || d.fail_reason || ')', '') END
        || '; no paid charge of subscription ' || d.subscription_id || ' since in this billing period; '
        || recon_money(coalesce(d.sub_amount, d.amount), d.currency) || ' unpaid' AS detail
FROM due d
WHERE d.merchant_uid NOT IN (SELECT merchant_uid FROM covered)
  AND d.merchant_uid NOT IN (SELECT merchant_uid FROM retry_booked)
