-- orphan_schedule (high): a future `scheduled` schedule (schedule_at > as_of) whose subscription is
-- cancelled, or ends before it (cancels at period end: schedule_at >= cancelled_at), or whose billing key is
-- deleted (inferred subscriptions: also when the local order booked for this schedule is cancelled). A
-- schedule of a card whose every loaded subscription is cancelled is an orphan too. It would charge
-- someone who left, or fail. A cancellation less than `grace` ago is left for the next run (the merchant
-- may be unscheduling right now). Suggested action: unschedule. amount_at_risk: the schedule's amount.
WITH x AS (
    SELECT
        s.*,
        coalesce(u.subscription_id, c.any_id) AS sub_id,
        coalesce(u.cancelled AND NOT coalesce(u.ends_at + $grace > $as_of, false), c.all_cancelled, false)
            AS sub_cancelled,
        coalesce(s.schedule_at >= u.ends_at AND NOT (u.ends_at <= $as_of AND u.ends_at + $grace > $as_of), false)
            AS after_end,
        coalesce(u.key_deleted, c.key_deleted, false) AS key_deleted,
        coalesce(u.inferred, false) AS inferred,
        coalesce(u.amount, c.amount) AS sub_amount
    -- _recon_sched (_prepare.sql): the open schedules with their subscription and local order's status
    FROM _recon_sched s
    LEFT JOIN _recon_subs u USING (subscription_id)
    LEFT JOIN (
        SELECT customer_uid, min(subscription_id) AS any_id, bool_and(cancelled) AS all_cancelled,
               bool_or(key_deleted) AS key_deleted, CASE WHEN count(*) = 1 THEN min(amount) END AS amount
        FROM _recon_subs GROUP BY customer_uid
    ) c ON s.subscription_id IS NULL AND c.customer_uid = s.customer_uid
    WHERE s.schedule_status = 'scheduled' AND s.schedule_at > $as_of
)
SELECT
    'orphan_schedule' AS kind,
    'high' AS severity,
    x.merchant_uid AS match_key,
    x.customer_uid,
    x.merchant_uid,
    CAST(NULL AS VARCHAR) AS imp_uid,
    x.merchant_uid AS schedule_merchant_uid,
    'scheduled' AS portone_status,
    coalesce(x.local_status, CASE WHEN x.sub_cancelled OR x.after_end THEN 'subscription cancelled' END)
        AS local_status,
    x.amount AS portone_amount,
    x.sub_amount AS local_amount,
    x.amount AS amount_at_risk,
    x.schedule_at AS event_at,
    'unschedule' AS suggested_action,
    x.sub_id AS subscription_id,
    CAST(NULL AS DATE) AS period_start,
    CAST(NULL AS DATE) AS period_end,
    x.currency,
    'schedule for ' || recon_kst(x.schedule_at) || ' (' || recon_money(x.amount, x.currency) || ') is still booked but '
        || CASE WHEN x.sub_cancelled THEN 'the subscription is cancelled'
                WHEN x.after_end THEN 'the subscription ends before it (cancels at period end)'
                WHEN x.key_deleted THEN 'the billing key is deleted'
                ELSE 'its local order is cancelled' END
        || CASE WHEN (x.sub_cancelled OR x.after_end) AND x.key_deleted THEN ' and the billing key is deleted'
                ELSE '' END AS detail
FROM x
WHERE x.sub_cancelled OR x.after_end OR x.key_deleted
   OR (x.inferred AND coalesce(x.local_status = 'cancelled', false))
