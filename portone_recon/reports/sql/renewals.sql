-- One row per renewal due (first schedule_at, Asia/Seoul month) in one of $months, at or before $now.
-- A renewal is a schedule that is not itself a retry. A retry is a schedule of the same customer and
-- amount booked within 20 days after a failed one (merchants book retries under new merchant_uids,
-- e.g. <base>-r1); the renewal's attempts are its own schedule, its retries and every PortOne payment
-- with one of their merchant_uids. A renewal
--   was attempted   when any of its schedules executed or any payment attempt exists;
--   failed          when any attempt failed;
--   was paid        when any attempt reached paid (a later refund does not undo the charge), or
--                   (paid_elsewhere) the customer paid the same amount by another charge (e.g. `again`)
--                   within 20 days after schedule_at;
--   recovered       when it failed and was paid after all (computed by the caller: failed AND paid);
--   is stuck        when its schedule is still 'scheduled' after its time, with no attempt.
-- fail_reason: the reason of its first failed attempt (schedule, else payment).
WITH m AS (
    SELECT
        month_start,
        CAST(month_start AS TIMESTAMPTZ) AS ms,
        CAST(month_start + INTERVAL 1 MONTH AS TIMESTAMPTZ) AS me
    FROM (SELECT unnest(CAST($months AS DATE[])) AS month_start)
),
bounds AS (
    SELECT min(ms) - INTERVAL 20 DAY AS lo, least(max(me) + INTERVAL 20 DAY, CAST($now AS TIMESTAMPTZ)) AS hi
    FROM m
),
pay AS (
    SELECT
        p.merchant_uid,
        count(*) AS n,
        bool_or(p.paid_at IS NOT NULL) AS any_paid,
        bool_or(p.status = 'failed' OR p.failed_at IS NOT NULL) AS any_failed,
        arg_min(p.fail_reason, coalesce(p.failed_at, p.started_at)) FILTER (WHERE p.status = 'failed')
            AS first_fail_reason
    FROM payments p, bounds b
    WHERE p.customer_uid IS NOT NULL
      AND coalesce(p.paid_at, p.failed_at, p.started_at, p.cancelled_at) >= b.lo - INTERVAL 1 DAY
    GROUP BY p.merchant_uid
),
s AS (
    SELECT
        s.merchant_uid,
        s.customer_uid,
        s.amount,
        s.schedule_at,
        s.schedule_status,
        (s.payment_status = 'failed' OR coalesce(pay.any_failed, false)) AS failed,
        (s.payment_status IN ('paid', 'cancelled') OR coalesce(pay.any_paid, false)) AS paid,
        (s.schedule_status = 'executed' OR s.payment_status IS NOT NULL OR coalesce(pay.n, 0) > 0) AS attempted,
        coalesce(nullif(s.fail_reason, ''), nullif(pay.first_fail_reason, '')) AS fail_reason
    FROM schedules s
    CROSS JOIN bounds b
    LEFT JOIN pay ON pay.merchant_uid = s.merchant_uid
    WHERE s.schedule_status <> 'revoked'
      AND s.schedule_at >= b.lo
      AND s.schedule_at <= b.hi
),
retry AS (
    SELECT DISTINCT r.merchant_uid
    FROM s r
    JOIN s f
      ON f.customer_uid = r.customer_uid
     AND f.amount = r.amount
     AND f.failed
     AND f.schedule_at < r.schedule_at
     AND f.schedule_at >= r.schedule_at - INTERVAL 20 DAY
),
base AS (
    SELECT m.month_start, s.*
    FROM s
    JOIN m ON s.schedule_at >= m.ms AND s.schedule_at < m.me
    WHERE s.schedule_at <= CAST($now AS TIMESTAMPTZ)
      AND s.merchant_uid NOT IN (SELECT merchant_uid FROM retry)
),
chain AS (
    SELECT
        b.merchant_uid,
        list(r.merchant_uid) AS members,
        bool_or(r.attempted) AS attempted,
        bool_or(r.failed) AS failed,
        bool_or(r.paid) AS paid
    FROM base b
    JOIN s r
      ON r.customer_uid = b.customer_uid
     AND r.amount = b.amount
     AND r.schedule_at >= b.schedule_at
     AND r.schedule_at < b.schedule_at + INTERVAL 20 DAY
     AND (r.merchant_uid = b.merchant_uid OR r.merchant_uid IN (SELECT merchant_uid FROM retry))
    GROUP BY b.merchant_uid
),
elsewhere AS (
    SELECT DISTINCT b.merchant_uid
    FROM base b
    JOIN chain c ON c.merchant_uid = b.merchant_uid
    JOIN payments p
      ON p.customer_uid = b.customer_uid
     AND p.amount = b.amount
     AND p.paid_at > b.schedule_at
     AND p.paid_at < b.schedule_at + INTERVAL 20 DAY
     AND NOT list_contains(c.members, p.merchant_uid)
)
SELECT
    b.month_start,
    b.merchant_uid,
    b.customer_uid,
    b.amount,
    b.schedule_at,
    c.attempted,
    c.failed,
    c.paid AS paid_direct,
    (e.merchant_uid IS NOT NULL) AS paid_elsewhere,
    (b.schedule_status = 'scheduled' AND NOT c.attempted) AS stuck,
    b.fail_reason,
    len(c.members) - 1 AS retries
FROM base b
JOIN chain c ON c.merchant_uid = b.merchant_uid
LEFT JOIN elsewhere e ON e.merchant_uid = b.merchant_uid
ORDER BY b.schedule_at, b.merchant_uid
