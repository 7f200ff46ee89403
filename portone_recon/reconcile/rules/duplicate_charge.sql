-- duplicate_charge (critical): a subscription has more than one net-paid charge of its own (reached `paid`,
-- not fully refunded, attributed to it: see Attribution in _prepare.sql) in one billing period. The one
-- with the strongest attribution (its order, then its schedule, then only its amount), then the earliest,
-- is the renewal; every other one is reported (so a charge known only by its amount is the extra one). Failed attempts (including PortOne's automatic
-- recovery retries of a failed schedule, and retries under a new merchant_uid that failed) are never
-- charges; add-ons, one-off purchases (even of the plan's price, when their order names no subscription),
-- another plan on the same card, issuance and test-channel payments are not this subscription's charges.
-- Suggested action: manual refund review. amount_at_risk: the extra charge's net amount.
-- Performance: one narrow pass over the attributed charges, grouped by subscription, keeps the
-- subscriptions that may have two charges in one period. Pigeonhole: n charges in pairwise distinct
-- periods span at least n periods, so a subscription whose count exceeds period(last) - period(first) + 1
-- must have two in one period; only the first and last charge of each need a period. The exact periods
-- and the ranking are then computed for those subscriptions only.
WITH span AS (
    SELECT subscription_id, count(*) AS n, min(paid_at) AS first_at, max(paid_at) AS last_at
    FROM _recon_charges
    WHERE net_paid AND subscription_id IS NOT NULL
    GROUP BY subscription_id
    HAVING count(*) > 1
),
dup AS (
    SELECT s.subscription_id
    FROM span s
    JOIN _recon_subs u USING (subscription_id)
    WHERE s.n > recon_period(s.last_at, u.anchor_day, u.interval_months, u.base_mi)
              - recon_period(s.first_at, u.anchor_day, u.interval_months, u.base_mi) + 1
),
c AS (
    SELECT
        c.imp_uid, c.merchant_uid, c.customer_uid, c.subscription_id, c.amount, c.cancel_amount, c.currency,
        c.status, c.paid_at, c.attr_rank, u.amount AS sub_amount, u.anchor_day, u.interval_months, u.base_mi,
        recon_period(c.paid_at, u.anchor_day, u.interval_months, u.base_mi) AS period
    FROM _recon_charges c
    JOIN (SELECT * FROM _recon_subs SEMI JOIN dup USING (subscription_id)) u USING (subscription_id)
    WHERE c.net_paid
),
ranked AS (
    SELECT
        c.*,
        row_number() OVER w AS rn,
        first_value(c.imp_uid) OVER w AS first_imp_uid,
        first_value(c.merchant_uid) OVER w AS first_merchant_uid
    FROM c
    WINDOW w AS (PARTITION BY c.subscription_id, c.period ORDER BY c.attr_rank, c.paid_at, c.imp_uid)
)
SELECT
    'duplicate_charge' AS kind,
    'critical' AS severity,
    r.imp_uid AS match_key,
    r.customer_uid,
    r.merchant_uid,
    r.imp_uid,
    CAST(NULL AS VARCHAR) AS schedule_merchant_uid,
    r.status AS portone_status,
    o.status AS local_status,
    r.amount AS portone_amount,
    r.sub_amount AS local_amount,
    r.amount - r.cancel_amount AS amount_at_risk,
    r.paid_at AS event_at,
    'refund_review' AS suggested_action,
    r.subscription_id,
    recon_period_start(r.period, r.anchor_day, r.interval_months, r.base_mi) AS period_start,
    recon_period_end(r.period, r.anchor_day, r.interval_months, r.base_mi) AS period_end,
    r.currency,
    'second charge of ' || recon_money(r.amount, r.currency) || ' in one billing period of subscription '
        || r.subscription_id || ': ' || r.imp_uid || ' (' || r.merchant_uid || ', ' || recon_kst(r.paid_at)
        || ') after ' || r.first_imp_uid || ' (' || r.first_merchant_uid || ')' AS detail
FROM ranked r
LEFT JOIN orders o ON o.merchant_uid = r.merchant_uid
WHERE r.rn > 1
  AND r.paid_at + $grace <= $as_of
