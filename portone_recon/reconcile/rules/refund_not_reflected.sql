-- refund_not_reflected (medium): PortOne's total refunded amount (cancel_amount, partial or full, over
-- every attempt for order M) exceeds the refunded amount recorded on the local order M.
-- Suggested action: mark the order refunded (by the difference).
-- amount_at_risk: the refunded money not reflected locally (PortOne total - local refunded_amount); 0 when
-- the local order never counted the money (pending, failed, cancelled): nothing the books hold is wrong.
-- Grace: a refund made less than `grace` ago is left for the next run.
SELECT
    'refund_not_reflected' AS kind,
    'medium' AS severity,
    o.merchant_uid AS match_key,
    coalesce(o.customer_uid, m.customer_uid) AS customer_uid,
    o.merchant_uid,
    coalesce(m.paid_imp_uid, m.last_imp_uid) AS imp_uid,
    CAST(NULL AS VARCHAR) AS schedule_merchant_uid,
    m.last_status AS portone_status,
    o.status AS local_status,
    m.cancel_total AS portone_amount,
    o.refunded_amount AS local_amount,
    CASE WHEN o.status IN ('pending', 'failed', 'cancelled') THEN 0
         ELSE m.cancel_total - o.refunded_amount END AS amount_at_risk,
    coalesce(lc.cancelled_at, m.first_paid_at) AS event_at,
    'mark_refunded' AS suggested_action,
    o.subscription_id,
    CAST(NULL AS DATE) AS period_start,
    CAST(NULL AS DATE) AS period_end,
    o.currency,
    'PortOne refunded ' || recon_money(m.cancel_total, o.currency)
        || CASE WHEN m.cancel_total < coalesce(m.paid_amount, 0) THEN ' (partial)' ELSE '' END
        || '; local order records ' || recon_money(o.refunded_amount, o.currency) || ' refunded'
        || ' (status ' || o.status || ')' AS detail
FROM _recon_orders o
JOIN _recon_mu m USING (merchant_uid)
LEFT JOIN (
    SELECT p.merchant_uid, max(coalesce(c.cancelled_at, p.cancelled_at)) AS cancelled_at
    FROM _recon_payments p
    LEFT JOIN payment_cancellations c USING (imp_uid)
    WHERE p.cancel_amount > 0
    GROUP BY p.merchant_uid
) lc USING (merchant_uid)
WHERE m.cancel_total > o.refunded_amount
  AND coalesce(lc.cancelled_at, m.first_paid_at, $as_of) + $grace <= $as_of
