-- 0007: subscriptions as merchants have them, charge attribution, coverage, run baselines.
--
-- subscriptions: one row per subscription (several per billing key), keyed by subscription_id (the
-- customer_uid for merchants with one subscription per card: existing rows keep it as their id). Status
-- gains trialing (trial_ends_at: the first charge) and paused; a cancelled_at in the future means "cancels
-- at period end". plan names the product; currency is the subscription's (KRW by default).
-- subscription_id is UNIQUE but may be NULL (rows written by hand without it): NULL means the customer_uid.
CREATE TABLE subscriptions_v7 (
    subscription_id  VARCHAR UNIQUE,
    customer_uid     VARCHAR NOT NULL,
    plan             VARCHAR,
    status           VARCHAR NOT NULL CHECK (status IN ('active', 'trialing', 'paused', 'cancelled')),
    status_raw       VARCHAR,
    amount           BIGINT NOT NULL,
    currency         VARCHAR NOT NULL DEFAULT 'KRW',
    interval_months  INTEGER NOT NULL DEFAULT 1,
    anchor_day       INTEGER NOT NULL CHECK (anchor_day BETWEEN 1 AND 31),
    trial_ends_at    TIMESTAMPTZ,
    started_at       TIMESTAMPTZ,
    cancelled_at     TIMESTAMPTZ,
    source           VARCHAR NOT NULL,
    loaded_at        TIMESTAMPTZ NOT NULL
);
INSERT INTO subscriptions_v7 (subscription_id, customer_uid, status, status_raw, amount, interval_months,
                              anchor_day, started_at, cancelled_at, source, loaded_at)
SELECT customer_uid, customer_uid, status, status_raw, amount, interval_months, anchor_day, started_at,
       cancelled_at, source, loaded_at
FROM subscriptions;
DROP TABLE subscriptions;
ALTER TABLE subscriptions_v7 RENAME TO subscriptions;

-- orders: the subscription an order charges (NULL: an add-on or one-off purchase) and when it was placed
-- (coverage: an order is judged only when PortOne data of its time was synced).
ALTER TABLE orders ADD COLUMN subscription_id VARCHAR;
ALTER TABLE orders ADD COLUMN ordered_at TIMESTAMPTZ;

-- findings: the subscription a finding belongs to, and the billing period it names (KST dates).
ALTER TABLE findings ADD COLUMN subscription_id VARCHAR;
ALTER TABLE findings ADD COLUMN period_start DATE;
ALTER TABLE findings ADD COLUMN period_end DATE;
ALTER TABLE findings ADD COLUMN also_kind VARCHAR;

-- recon_runs: an ad-hoc run (a subset of kinds, or an as_of not after the previous full run's) is never
-- the baseline of "new / resolved / first_seen".
ALTER TABLE recon_runs ADD COLUMN adhoc BOOLEAN NOT NULL DEFAULT false;

-- sync_state: the earliest instant (on the stream's own time axis) from which the stream's rows are
-- complete up to its cursor. Existing stores: the earliest stored row on that axis, or the last run's start.
ALTER TABLE sync_state ADD COLUMN covered_from TIMESTAMPTZ;
UPDATE sync_state SET covered_from = least(
    TRY_CAST(json_extract_string(detail, '$.from') AS TIMESTAMPTZ),
    CASE stream
        WHEN 'payments:paid' THEN (SELECT min(paid_at) FROM payments)
        WHEN 'payments:cancelled' THEN (SELECT min(cancelled_at) FROM payments)
        WHEN 'payments:failed' THEN (SELECT min(failed_at) FROM payments)
        WHEN 'payments:ready' THEN (SELECT min(started_at) FROM payments)
        WHEN 'schedules' THEN (SELECT min(schedule_at) FROM schedules)
    END)
WHERE cursor IS NOT NULL;

-- findings: the currency of the finding's amounts (amounts in other currencies are never summed into KRW).
ALTER TABLE findings ADD COLUMN currency VARCHAR;
