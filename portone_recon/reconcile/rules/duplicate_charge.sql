-- duplicate_charge (critical): a customer has more than one net-paid charge (reached `paid`, not fully
-- refunded) of the subscription's amount in one billing period. The earliest is the renewal; every later
-- one is reported. Failed attempts (including PortOne's automatic recovery retries of a failed schedule)
-- are never charges, and add-on purchases of other amounts are not renewals.
-- Suggested action: manual refund review. amount_at_risk: the extra charge's net amount.
-- Performance: one narrow pass over every charge, grouped by subscriber (_recon_subs' integer rowid: no text
-- is hashed or carried), keeps the subscribers that may have two charges in one period. Pigeonhole: n
-- charges in pairwise distinct periods span at least n periods, so a subscriber whose count exceeds
-- period(last) - period(first) + 1 must have two in one period; only the first and last charge of each
-- subscriber need a period (not every charge). The wide rows, exact periods and the ranking are then
-- computed for those subscribers only.
WITH span AS (
    SELECT u.rowid AS sub_row, count(*) AS n, min(c.paid_at) AS first_at, max(c.paid_at) AS last_at
    FROM _recon_charges c
    JOIN _recon_subs u USING (customer_uid)
    WHERE c.amount = u.amount AND c.cancel_amount < c.amount
    GROUP BY u.rowid
    HAVING count(*) > 1
),
dup AS (
    SELECT s.sub_row
    FROM span s
    JOIN _recon_subs u ON u.rowid = s.sub_row
    WHERE s.n > recon_period(s.last_at, u.anchor_day, u.interval_months, u.base_mi)
              - recon_period(s.first_at, u.anchor_day, u.interval_months, u.base_mi) + 1
),
c AS (
    SELECT
        c.imp_uid, c.merchant_uid, c.customer_uid, c.amount, c.cancel_amount, c.currency, c.status, c.paid_at,
        u.amount AS sub_amount,
        recon_period(c.paid_at, u.anchor_day, u.interval_months, u.base_mi) AS period
    FROM _recon_charges c
    JOIN (SELECT * FROM _recon_subs WHERE rowid IN (SELECT sub_row FROM dup)) u USING (customer_uid)
    WHERE c.amount = u.amount AND c.cancel_amount < c.amount
),
ranked AS (
    SELECT
        c.*,
        row_number() OVER w AS rn,
        first_value(c.imp_uid) OVER w AS first_imp_uid,
        first_value(c.merchant_uid) OVER w AS first_merchant_uid
    FROM c
    WINDOW w AS (PARTITION BY c.customer_uid, c.period ORDER BY c.paid_at, c.imp_uid)
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
    'second charge of ' || recon_money(r.amount, r.currency) || ' in one billing period: ' || r.imp_uid
        || ' (' || r.merchant_uid || ', ' || recon_kst(r.paid_at) || ') after ' || r.first_imp_uid
        || ' (' || r.first_merchant_uid || ')' AS detail
FROM ranked r
LEFT JOIN orders o ON o.merchant_uid = r.merchant_uid
WHERE r.rn > 1
