-- unknown_payment (medium): a PortOne payment reached `paid` (by as_of) for a merchant_uid that has no
-- local order at all. Billing-key issuance and test-channel payments are never charges; a payment paid
-- less than `grace` ago is left for the next run (its order may be committing). Coverage: only payments
-- paid inside the loaded orders' range (from the earliest order's time); none when no orders are loaded.
-- A V1 payment read through V2 under its imp_uid (see _recon_v1_ids in _prepare.sql) that no local order
-- recorded is one too, and its detail says its merchant_uid is not known.
-- Suggested action: manual review (create the order, or refund).
-- amount_at_risk: the payment's net amount (amount - cancel_amount).
SELECT
    'unknown_payment' AS kind,
    'medium' AS severity,
    p.imp_uid AS match_key,
    p.customer_uid,
    p.merchant_uid,
    p.imp_uid,
    CAST(NULL AS VARCHAR) AS schedule_merchant_uid,
    p.status AS portone_status,
    CAST(NULL AS VARCHAR) AS local_status,
    p.amount AS portone_amount,
    CAST(NULL AS BIGINT) AS local_amount,
    p.amount - p.cancel_amount AS amount_at_risk,
    coalesce(p.paid_at, p.started_at) AS event_at,
    'manual_review' AS suggested_action,
    c.subscription_id,
    CAST(NULL AS DATE) AS period_start,
    CAST(NULL AS DATE) AS period_end,
    p.currency,
    'PortOne charged ' || recon_money(p.amount, p.currency) || ' at ' || recon_kst(coalesce(p.paid_at, p.started_at))
        || CASE WHEN p.source_api = 'v2' AND p.api_version = 'V1' AND p.merchant_uid = p.imp_uid
                THEN ' (a V1 payment read through V2 under its imp_uid ' || p.imp_uid
                     || ': its merchant_uid is not known, and no local order recorded that imp_uid)'
                ELSE ' for merchant_uid ' || p.merchant_uid || ', which has no local order' END
        || CASE WHEN p.cancel_amount > 0 THEN ' (' || recon_money(p.cancel_amount, p.currency) || ' refunded)'
                ELSE '' END AS detail
FROM _recon_payments p
LEFT JOIN (SELECT imp_uid, subscription_id FROM _recon_charges) c USING (imp_uid)
-- no local order: the candidates of _prepare.sql that have none (every such reached payment is one)
SEMI JOIN (SELECT merchant_uid FROM _recon_cand WHERE NOT has_order) USING (merchant_uid)
WHERE (p.status = 'paid' OR (p.status = 'cancelled' AND p.paid_at IS NOT NULL))
  AND coalesce(p.paid_at, p.started_at, $as_of) + $grace <= $as_of
  AND recon_payment_covered(coalesce(p.paid_at, p.started_at))
