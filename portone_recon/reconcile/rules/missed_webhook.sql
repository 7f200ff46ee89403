-- missed_webhook (high): PortOne charged order M (an attempt for M reached `paid` at least `grace` before
-- as_of, for exactly the order's amount and currency), yet the local order M is still pending or failed:
-- the webhook was lost or its handler failed. Suggested action: reverify, then mark the order paid.
-- A payment since fully refunded is not this (no money moved: refund_not_reflected reports it once).
-- amount_at_risk: the net amount PortOne holds (charged - refunded).
-- Evidence from V2: the paid attempt's webhooks[] delivery log (webhook_status: SUCCEEDED when any
-- delivery succeeded, else the last failure; none logged is said too). It explains, never decides.
SELECT
    'missed_webhook' AS kind,
    'high' AS severity,
    o.merchant_uid AS match_key,
    coalesce(o.customer_uid, m.customer_uid) AS customer_uid,
    o.merchant_uid,
    m.paid_imp_uid AS imp_uid,
    CAST(NULL AS VARCHAR) AS schedule_merchant_uid,
    'paid' AS portone_status,
    o.status AS local_status,
    m.paid_amount AS portone_amount,
    o.amount AS local_amount,
    m.net_paid AS amount_at_risk,
    m.first_paid_at AS event_at,
    'reverify' AS suggested_action,
    o.subscription_id,
    CAST(NULL AS DATE) AS period_start,
    CAST(NULL AS DATE) AS period_end,
    o.currency,
    'PortOne charged ' || recon_money(m.paid_amount, m.paid_currency) || ' at ' || recon_kst(m.first_paid_at)
        || ' (' || m.paid_imp_uid || ', ' || m.attempts || ' attempt(s)); local order is ' || o.status
        || CASE
            WHEN wh.webhook_status IS NOT NULL THEN '; V2 webhook delivery: ' || wh.webhook_status
            WHEN wh.source_api = 'v2' AND wh.api_version = 'V2' THEN '; V2 webhook delivery: none logged'
            ELSE '' END
        AS detail
FROM _recon_orders o
JOIN _recon_mu m USING (merchant_uid)
LEFT JOIN payments wh ON wh.imp_uid = m.paid_imp_uid
WHERE m.reached_paid
  AND m.first_paid_at + $grace <= $as_of
  AND m.paid_amount_min = o.amount AND m.paid_amount_max = o.amount
  AND m.paid_currency_min = o.currency AND m.paid_currency_max = o.currency
  AND o.status IN ('pending', 'failed')
  AND m.net_paid > 0
