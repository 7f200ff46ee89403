-- orphan_schedule (high): a future `scheduled` schedule (schedule_at > as_of) for a customer whose
-- subscription is cancelled or whose billing key is deleted (inferred subscriptions: also when the local
-- order booked for this schedule is cancelled). It would charge someone who left, or fail.
-- Suggested action: unschedule. amount_at_risk: the schedule's amount.
SELECT
    'orphan_schedule' AS kind,
    'high' AS severity,
    s.merchant_uid AS match_key,
    s.customer_uid,
    s.merchant_uid,
    CAST(NULL AS VARCHAR) AS imp_uid,
    s.merchant_uid AS schedule_merchant_uid,
    'scheduled' AS portone_status,
    coalesce(s.local_status, CASE WHEN u.cancelled THEN 'subscription cancelled' END) AS local_status,
    s.amount AS portone_amount,
    u.amount AS local_amount,
    s.amount AS amount_at_risk,
    s.schedule_at AS event_at,
    'unschedule' AS suggested_action,
    'schedule for ' || recon_kst(s.schedule_at) || ' (' || recon_money(s.amount, s.currency) || ') is still booked but '
        || CASE WHEN u.cancelled THEN 'the subscription is cancelled'
                WHEN u.key_deleted THEN 'the billing key is deleted'
                ELSE 'its local order is cancelled' END
        || CASE WHEN u.cancelled AND u.key_deleted THEN ' and the billing key is deleted' ELSE '' END AS detail
-- _recon_sched (_prepare.sql): the open schedules with their local order's status
FROM _recon_sched s
JOIN _recon_subs u USING (customer_uid)
WHERE s.schedule_status = 'scheduled'
  AND s.schedule_at > $as_of
  AND (u.cancelled OR u.key_deleted OR (u.inferred AND coalesce(s.local_status = 'cancelled', false)))
