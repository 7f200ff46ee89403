-- duplicate_schedule (high): one subscription has more than one future `scheduled` schedule
-- (schedule_at > as_of) in one billing period. Another plan on the same card is another subscription (see
-- Attribution in _prepare.sql), never a duplicate. One is kept — the one whose amount equals the
-- subscription's, then the earliest schedule_at, then the smallest merchant_uid — and every other one is
-- reported. Suggested action: unschedule the extra. amount_at_risk: the extra schedule's amount.
WITH fut AS (
    SELECT
        s.merchant_uid, s.customer_uid, s.subscription_id, s.schedule_at, s.amount, s.currency,
        u.amount AS sub_amount, u.anchor_day, u.interval_months, u.base_mi, s.local_status,
        recon_period(s.schedule_at, u.anchor_day, u.interval_months, u.base_mi) AS period
    -- _recon_sched (_prepare.sql): the open schedules with their subscription and local order's status
    FROM _recon_sched s
    JOIN _recon_subs u USING (subscription_id)
    WHERE s.schedule_status = 'scheduled' AND s.schedule_at > $as_of
),
-- only (subscription, period) pairs with more than one booking are ranked
dup AS (
    SELECT subscription_id, period FROM fut GROUP BY subscription_id, period HAVING count(*) > 1
),
ranked AS (
    SELECT
        fut.*,
        count(*) OVER w AS n,
        row_number() OVER (w ORDER BY coalesce(amount = sub_amount, false) DESC, schedule_at, merchant_uid)
            AS rn,
        first_value(merchant_uid)
            OVER (w ORDER BY coalesce(amount = sub_amount, false) DESC, schedule_at, merchant_uid) AS keep_mu
    FROM fut
    SEMI JOIN dup USING (subscription_id, period)
    WINDOW w AS (PARTITION BY subscription_id, period)
)
SELECT
    'duplicate_schedule' AS kind,
    'high' AS severity,
    r.merchant_uid AS match_key,
    r.customer_uid,
    r.merchant_uid,
    CAST(NULL AS VARCHAR) AS imp_uid,
    r.merchant_uid AS schedule_merchant_uid,
    'scheduled' AS portone_status,
    r.local_status,
    r.amount AS portone_amount,
    r.sub_amount AS local_amount,
    r.amount AS amount_at_risk,
    r.schedule_at AS event_at,
    'unschedule' AS suggested_action,
    r.subscription_id,
    recon_period_start(r.period, r.anchor_day, r.interval_months, r.base_mi) AS period_start,
    recon_period_end(r.period, r.anchor_day, r.interval_months, r.base_mi) AS period_end,
    r.currency,
    r.n || ' schedules booked in one billing period; keep ' || r.keep_mu || ', revoke this one ('
        || recon_kst(r.schedule_at) || ', ' || recon_money(r.amount, r.currency) || ')' AS detail
FROM ranked r
WHERE r.n > 1 AND r.rn > 1
