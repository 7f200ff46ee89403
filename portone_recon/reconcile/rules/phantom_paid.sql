-- phantom_paid (critical): the local order M says paid, but no PortOne payment attempt for M ever reached
-- `paid` (a later refund does not make an order phantom). Orders marked paid less than `grace` ago are
-- left for the next run. Coverage: only orders whose time (ordered_at, else paid_at) lies in the range the
-- payment streams were synced over (an older order has no PortOne data here, which is no evidence).
-- Suggested action: manual review.
-- amount_at_risk: the local order's amount.
SELECT
    'phantom_paid' AS kind,
    'critical' AS severity,
    o.merchant_uid AS match_key,
    o.customer_uid,
    o.merchant_uid,
    coalesce(m.last_imp_uid, o.imp_uid) AS imp_uid,
    CAST(NULL AS VARCHAR) AS schedule_merchant_uid,
    coalesce(m.last_status, 'none') AS portone_status,
    o.status AS local_status,
    CAST(NULL AS BIGINT) AS portone_amount,
    o.amount AS local_amount,
    o.amount AS amount_at_risk,
    o.paid_at AS event_at,
    'manual_review' AS suggested_action,
    o.subscription_id,
    CAST(NULL AS DATE) AS period_start,
    CAST(NULL AS DATE) AS period_end,
    o.currency,
    'local order is paid (' || recon_money(o.amount, o.currency) || ') but PortOne has '
        || CASE WHEN m.merchant_uid IS NULL THEN 'no payment for it'
                ELSE m.attempts || ' attempt(s), none paid (last: ' || m.last_status || ')' END AS detail
-- _recon_orders: the candidate orders of _prepare.sql (every paid order without a reached attempt is one);
-- _recon_mu is complete for them
FROM _recon_orders o
LEFT JOIN _recon_mu m USING (merchant_uid)
WHERE o.status = 'paid'
  AND NOT coalesce(m.reached_paid, false)
  AND (o.paid_at IS NULL OR o.paid_at + $grace <= $as_of)
  AND recon_order_covered(o.ordered_at, o.paid_at)
