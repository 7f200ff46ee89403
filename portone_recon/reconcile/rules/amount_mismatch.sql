-- amount_mismatch (critical): a PortOne payment for order M reached `paid` with an amount or currency
-- different from the local order's (a forged or buggy amount). Whatever the local status, never mark it
-- paid: this takes the place of missed_webhook for M. A payment paid less than `grace` ago is left for the
-- next run (the order may be being updated). Suggested action: manual review.
-- amount_at_risk: the amount PortOne charged.
SELECT
    'amount_mismatch' AS kind,
    'critical' AS severity,
    o.merchant_uid AS match_key,
    coalesce(o.customer_uid, m.customer_uid) AS customer_uid,
    o.merchant_uid,
    m.paid_imp_uid AS imp_uid,
    CAST(NULL AS VARCHAR) AS schedule_merchant_uid,
    'paid' AS portone_status,
    o.status AS local_status,
    CASE WHEN m.paid_amount_min <> o.amount THEN m.paid_amount_min ELSE m.paid_amount_max END
        AS portone_amount,
    o.amount AS local_amount,
    m.paid_amount AS amount_at_risk,
    m.first_paid_at AS event_at,
    'manual_review' AS suggested_action,
    o.subscription_id,
    CAST(NULL AS DATE) AS period_start,
    CAST(NULL AS DATE) AS period_end,
    coalesce(m.paid_currency, o.currency) AS currency,
    'PortOne charged ' || recon_money(
            CASE WHEN m.paid_amount_min <> o.amount THEN m.paid_amount_min ELSE m.paid_amount_max END,
            CASE WHEN m.paid_currency_min <> o.currency THEN m.paid_currency_min ELSE m.paid_currency_max END)
        || ' but the local order expects ' || recon_money(o.amount, o.currency)
        || ' (possible forgery; do not mark paid)' AS detail
FROM _recon_orders o
JOIN _recon_mu m USING (merchant_uid)
WHERE m.reached_paid
  AND m.first_paid_at + $grace <= $as_of
  AND (m.paid_amount_min <> o.amount OR m.paid_amount_max <> o.amount
       OR m.paid_currency_min <> o.currency OR m.paid_currency_max <> o.currency)
