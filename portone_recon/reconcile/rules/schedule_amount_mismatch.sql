-- schedule_amount_mismatch (medium): a future `scheduled` schedule (schedule_at > as_of) will charge an
-- amount (or currency) different from its subscription's current one (e.g. the plan price changed and the booked
-- schedule was not touched). Without subscriptions, the expected amount is the local order booked for that
-- schedule. Suggested action: unschedule + rebook. amount_at_risk: |schedule amount - expected amount|.
WITH x AS (
    SELECT
        s.merchant_uid, s.customer_uid, s.subscription_id, s.schedule_at, s.amount, s.currency,
        s.local_status, u.anchor_day, u.interval_months, u.base_mi,
        CASE WHEN u.has_subscription THEN u.amount WHEN u.inferred THEN s.local_amount END AS expected,
        CASE WHEN u.has_subscription THEN u.currency ELSE s.currency END AS expected_currency,
        recon_period(s.schedule_at, u.anchor_day, u.interval_months, u.base_mi) AS period
    -- _recon_sched (_prepare.sql): the open schedules with their subscription, local status and amount
    FROM _recon_sched s
    JOIN _recon_subs u USING (subscription_id)
    WHERE s.schedule_status = 'scheduled' AND s.schedule_at > $as_of
)
SELECT
    'schedule_amount_mismatch' AS kind,
    'medium' AS severity,
    x.merchant_uid AS match_key,
    x.customer_uid,
    x.merchant_uid,
    CAST(NULL AS VARCHAR) AS imp_uid,
    x.merchant_uid AS schedule_merchant_uid,
    'scheduled' AS portone_status,
    x.local_status,
    x.amount AS portone_amount,
    x.expected AS local_amount,
    abs(x.amount - x.expected) AS amount_at_risk,
    x.schedule_at AS event_at,
    'unschedule_rebook' AS suggested_action,
    x.subscription_id,
    recon_period_start(x.period, x.anchor_day, x.interval_months, x.base_mi) AS period_start,
    recon_period_end(x.period, x.anchor_day, x.interval_months, x.base_mi) AS period_end,
    x.currency,
    'schedule for ' || recon_kst(x.schedule_at) || ' will charge ' || recon_money(x.amount, x.currency)
        || ' but the subscription costs ' || recon_money(x.expected, x.expected_currency) AS detail
FROM x
WHERE x.expected IS NOT NULL AND (x.amount <> x.expected OR x.currency <> x.expected_currency)
