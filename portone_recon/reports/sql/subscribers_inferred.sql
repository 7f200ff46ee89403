-- Subscribers per month inferred from PortOne payments when no subscriptions table was loaded.
-- Active at an instant t: the customer (billing key customer_uid) has a paid charge in the 33 days
-- (one month + 3 days of grace) before t. MRR: the amount of that latest charge. A subscriber is new in
-- the month of its first paid charge, churned when active at the month's start and not at its end.
WITH m AS (
    SELECT
        month_start,
        CAST(month_start AS TIMESTAMPTZ) AS ms,
        least(CAST(month_start + INTERVAL 1 MONTH AS TIMESTAMPTZ), CAST($now AS TIMESTAMPTZ)) AS me
    FROM (SELECT unnest(CAST($months AS DATE[])) AS month_start)
),
p AS (
    SELECT customer_uid, paid_at, amount
    FROM payments
    WHERE customer_uid IS NOT NULL AND paid_at IS NOT NULL
),
first_paid AS (
    SELECT customer_uid, min(paid_at) AS first_at FROM p GROUP BY customer_uid
),
at_start AS (
    SELECT m.month_start, p.customer_uid
    FROM m JOIN p ON p.paid_at < m.ms AND p.paid_at >= m.ms - INTERVAL 33 DAY
    GROUP BY ALL
),
at_end AS (
    SELECT m.month_start, p.customer_uid, arg_max(p.amount, p.paid_at) AS amount
    FROM m JOIN p ON p.paid_at < m.me AND p.paid_at >= m.me - INTERVAL 33 DAY
    GROUP BY ALL
)
SELECT
    m.month_start,
    (SELECT count(*) FROM at_start a WHERE a.month_start = m.month_start) AS active_start,
    (SELECT count(*) FROM at_end e WHERE e.month_start = m.month_start) AS active_end,
    (SELECT count(*) FROM first_paid f WHERE f.first_at >= m.ms AND f.first_at < m.me) AS new_subscribers,
    (
        SELECT count(*) FROM at_start a
        WHERE a.month_start = m.month_start
          AND NOT EXISTS (
              SELECT 1 FROM at_end e WHERE e.month_start = a.month_start AND e.customer_uid = a.customer_uid
          )
    ) AS churned,
    CAST((SELECT coalesce(sum(e.amount), 0) FROM at_end e WHERE e.month_start = m.month_start) AS BIGINT)
        AS mrr
FROM m
ORDER BY m.month_start
