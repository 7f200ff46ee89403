-- chain_not_started (high): an active subscription past its first billing period (or past the end of its
-- trial) with no schedule ever booked for it and no net-paid charge of its own for the current period: the
-- first payment was taken (or the trial began) and the handler never booked the renewal chain.
-- "Current period" is the one containing as_of - grace - 1 day, so a charge made later on the period's
-- first day (merchants that renew by charging the stored card themselves) is not judged early. Not when
-- the subscription ends (cancels at period end) before that period starts.
-- period_start / period_end: that period (the one to book and charge).
-- Suggested action: rebook. amount_at_risk: the subscription's amount (one period of revenue).
WITH ref AS (
    SELECT CAST($as_of AS TIMESTAMPTZ) - $grace - INTERVAL 1 DAY AS at
),
cand AS (
    SELECT
        u.subscription_id, u.customer_uid, u.amount, u.currency, u.anchor_day, u.interval_months, u.base_mi,
        u.bill_from, u.started_at, u.ends_at,
        recon_period(ref.at, u.anchor_day, u.interval_months, u.base_mi) AS period,
        recon_period(u.started_at, u.anchor_day, u.interval_months, u.base_mi) AS first_period
    FROM _recon_subs u, ref
    WHERE u.has_subscription AND u.active AND NOT u.has_future
      AND u.started_at IS NOT NULL AND u.bill_from <= ref.at
      AND u.subscription_id NOT IN (
          SELECT subscription_id FROM _recon_sched_map
          SEMI JOIN (SELECT customer_uid FROM _recon_subs WHERE has_subscription AND active AND NOT has_future)
              USING (customer_uid)
          WHERE subscription_id IS NOT NULL)
),
x AS (
    SELECT
        c.*,
        recon_period_start(c.period, c.anchor_day, c.interval_months, c.base_mi) AS p_start,
        recon_period_end(c.period, c.anchor_day, c.interval_months, c.base_mi) AS p_end
    FROM cand c
    WHERE c.period > c.first_period
)
SELECT
    'chain_not_started' AS kind,
    'high' AS severity,
    x.subscription_id || '|' || strftime(x.p_start, '%Y-%m-%d') AS match_key,
    x.customer_uid,
    CAST(NULL AS VARCHAR) AS merchant_uid,
    CAST(NULL AS VARCHAR) AS imp_uid,
    CAST(NULL AS VARCHAR) AS schedule_merchant_uid,
    'no schedule ever booked' AS portone_status,
    CAST(NULL AS VARCHAR) AS local_status,
    CAST(NULL AS BIGINT) AS portone_amount,
    x.amount AS local_amount,
    x.amount AS amount_at_risk,
    timezone('Asia/Seoul', CAST(x.p_start AS TIMESTAMP)) AS event_at,
    'rebook' AS suggested_action,
    x.subscription_id,
    x.p_start AS period_start,
    x.p_end AS period_end,
    x.currency,
    'subscription ' || x.subscription_id || ' (started ' || recon_kst(x.started_at)
        || ') has no schedule booked at PortOne and nothing paid for the period from '
        || strftime(x.p_start, '%Y-%m-%d') || ' (' || recon_money(x.amount, x.currency) || ')' AS detail
FROM x
WHERE (x.ends_at IS NULL OR x.p_start < recon_kst_date(x.ends_at))
  AND NOT EXISTS (
      SELECT 1 FROM _recon_charges c
      WHERE c.subscription_id = x.subscription_id AND c.net_paid
        AND recon_period(c.paid_at, x.anchor_day, x.interval_months, x.base_mi) >= x.period)
