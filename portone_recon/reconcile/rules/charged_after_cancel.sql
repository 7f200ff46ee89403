-- charged_after_cancel (critical): PortOne kept money the merchant no longer expects: a net-paid charge
-- (reached `paid`, not fully refunded, at least `grace` before as_of) for
--   * an order M the merchant marked `cancelled` (whatever the order is for), or
--   * a subscription (see Attribution in _prepare.sql) paid at or after its effective cancellation
--     (cancelled_at <= as_of; a future cancelled_at, "cancels at period end", only stops charges after it).
-- One finding per merchant_uid. Suggested action: manual review (refund the customer, find why it charged).
-- amount_at_risk: the net amount PortOne holds (charged - refunded).
WITH by_order AS (
    SELECT
        o.merchant_uid, coalesce(o.customer_uid, m.customer_uid) AS customer_uid, m.paid_imp_uid AS imp_uid,
        m.last_status AS portone_status, o.status AS local_status, m.paid_amount AS portone_amount,
        o.amount AS local_amount, m.net_paid AS net, m.first_paid_at AS event_at, o.subscription_id,
        coalesce(m.paid_currency, o.currency) AS currency,
        'the local order is cancelled' AS why
    FROM _recon_orders o
    JOIN _recon_mu m USING (merchant_uid)
    WHERE o.status = 'cancelled' AND m.reached_paid AND m.net_paid > 0
      AND m.first_paid_at + $grace <= $as_of
),
by_sub AS (
    SELECT
        c.merchant_uid, c.customer_uid, c.imp_uid, c.status AS portone_status, o.status AS local_status,
        c.amount AS portone_amount, u.amount AS local_amount, c.amount - c.cancel_amount AS net,
        c.paid_at AS event_at, c.subscription_id, c.currency,
        'subscription ' || c.subscription_id || ' was cancelled at ' || recon_kst(u.ends_at) AS why
    FROM _recon_charges c
    JOIN _recon_subs u USING (subscription_id)
    LEFT JOIN orders o ON o.merchant_uid = c.merchant_uid
    WHERE c.net_paid AND u.ends_at IS NOT NULL AND u.ends_at <= $as_of AND c.paid_at >= u.ends_at
      AND c.paid_at + $grace <= $as_of
),
x AS (
    SELECT * FROM by_order
    UNION ALL
    SELECT * FROM by_sub ANTI JOIN by_order USING (merchant_uid)
),
one AS (
    SELECT arg_min(x, (x.event_at, x.imp_uid)) AS r FROM x GROUP BY merchant_uid
)
SELECT
    'charged_after_cancel' AS kind,
    'critical' AS severity,
    r.merchant_uid AS match_key,
    r.customer_uid,
    r.merchant_uid,
    r.imp_uid,
    CAST(NULL AS VARCHAR) AS schedule_merchant_uid,
    r.portone_status,
    r.local_status,
    r.portone_amount,
    r.local_amount,
    r.net AS amount_at_risk,
    r.event_at,
    'manual_review' AS suggested_action,
    r.subscription_id,
    CAST(NULL AS DATE) AS period_start,
    CAST(NULL AS DATE) AS period_end,
    r.currency,
    'PortOne charged ' || recon_money(r.portone_amount, r.currency) || ' at ' || recon_kst(r.event_at)
        || ' (' || r.imp_uid || ') but ' || r.why || '; ' || recon_money(r.net, r.currency)
        || ' not refunded' AS detail
FROM (SELECT unnest(r) FROM one) r
