-- Subscribers per month from the local subscriptions table (month bounds in Asia/Seoul).
-- Active at an instant t: started before t (or start unknown) and not cancelled at t. A subscription
-- marked cancelled without cancelled_at counts as cancelled from when it was loaded.
-- MRR: the monthly amount (amount / interval_months, to the won) of subscriptions active at month end
-- (at $now for the current month).
WITH m AS (
    SELECT
        month_start,
        CAST(month_start AS TIMESTAMPTZ) AS ms,
        least(CAST(month_start + INTERVAL 1 MONTH AS TIMESTAMPTZ), CAST($now AS TIMESTAMPTZ)) AS me
    FROM (SELECT unnest(CAST($months AS DATE[])) AS month_start)
),
s AS (
    SELECT
        customer_uid,
        amount,
        greatest(interval_months, 1) AS interval_months,
        started_at,
        coalesce(cancelled_at, CASE WHEN status = 'cancelled' THEN loaded_at END) AS ended_at
    FROM subscriptions
)
SELECT
    m.month_start,
    count(s.customer_uid) FILTER (
        WHERE (s.started_at IS NULL OR s.started_at < m.ms) AND (s.ended_at IS NULL OR s.ended_at >= m.ms)
    ) AS active_start,
    count(s.customer_uid) FILTER (
        WHERE (s.started_at IS NULL OR s.started_at < m.me) AND (s.ended_at IS NULL OR s.ended_at >= m.me)
    ) AS active_end,
    count(s.customer_uid) FILTER (WHERE s.started_at >= m.ms AND s.started_at < m.me) AS new_subscribers,
    count(s.customer_uid) FILTER (WHERE s.ended_at >= m.ms AND s.ended_at < m.me) AS churned,
    CAST(coalesce(round(sum(CAST(s.amount AS DOUBLE) / s.interval_months) FILTER (
        WHERE (s.started_at IS NULL OR s.started_at < m.me) AND (s.ended_at IS NULL OR s.ended_at >= m.me)
    )), 0) AS BIGINT) AS mrr
FROM m
LEFT JOIN s ON true
GROUP BY m.month_start
ORDER BY m.month_start
