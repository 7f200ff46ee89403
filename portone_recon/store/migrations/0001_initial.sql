-- 0001: the tables of design.md §3.
-- Money is BIGINT (KRW has no minor unit). Every instant is TIMESTAMPTZ; PortOne's 0 ("not yet") is NULL.
-- API rows keep their raw JSON and synced_at.

CREATE TABLE payments (
    imp_uid             VARCHAR PRIMARY KEY,
    merchant_uid        VARCHAR NOT NULL,
    customer_uid        VARCHAR,
    customer_uid_usage  VARCHAR,          -- null | issue | payment | payment.scheduled
    status              VARCHAR NOT NULL, -- ready | paid | failed | cancelled
    amount              BIGINT NOT NULL,
    cancel_amount       BIGINT NOT NULL DEFAULT 0,
    currency            VARCHAR NOT NULL DEFAULT 'KRW',
    pay_method          VARCHAR,
    channel             VARCHAR,
    pg_provider         VARCHAR,
    pg_tid              VARCHAR,
    name                VARCHAR,
    card_name           VARCHAR,
    card_number         VARCHAR,
    buyer_name          VARCHAR,
    buyer_email         VARCHAR,
    buyer_tel           VARCHAR,
    custom_data         VARCHAR,
    fail_reason         VARCHAR,
    cancel_reason       VARCHAR,
    started_at          TIMESTAMPTZ,
    paid_at             TIMESTAMPTZ,
    failed_at           TIMESTAMPTZ,
    cancelled_at        TIMESTAMPTZ,
    sandbox             BOOLEAN NOT NULL DEFAULT false,
    raw                 JSON,
    synced_at           TIMESTAMPTZ NOT NULL
);

CREATE TABLE payment_cancellations (
    imp_uid          VARCHAR NOT NULL,
    cancellation_id  VARCHAR NOT NULL,   -- PortOne's id; pg_tid || '@' || epoch(cancelled_at) when absent
    pg_tid           VARCHAR,
    amount           BIGINT NOT NULL,
    cancelled_at     TIMESTAMPTZ,
    reason           VARCHAR,
    receipt_url      VARCHAR,
    synced_at        TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (imp_uid, cancellation_id)
);

CREATE TABLE schedules (
    merchant_uid     VARCHAR PRIMARY KEY,
    customer_uid     VARCHAR NOT NULL,
    schedule_status  VARCHAR NOT NULL,   -- scheduled | executed | revoked
    payment_status   VARCHAR,            -- null | paid | failed | cancelled
    imp_uid          VARCHAR,
    schedule_at      TIMESTAMPTZ NOT NULL,
    executed_at      TIMESTAMPTZ,
    revoked_at       TIMESTAMPTZ,
    amount           BIGINT NOT NULL,
    currency         VARCHAR NOT NULL DEFAULT 'KRW',
    name             VARCHAR,
    fail_reason      VARCHAR,
    custom_data      VARCHAR,
    buyer_name       VARCHAR,
    buyer_email      VARCHAR,
    buyer_tel        VARCHAR,
    raw              JSON,
    synced_at        TIMESTAMPTZ NOT NULL
);

CREATE TABLE billing_keys (
    customer_uid     VARCHAR PRIMARY KEY,
    pg_provider      VARCHAR,
    pg_id            VARCHAR,
    card_name        VARCHAR,
    card_code        VARCHAR,
    card_number      VARCHAR,            -- masked by PortOne
    card_type        INTEGER,
    customer_name    VARCHAR,
    customer_email   VARCHAR,
    customer_tel     VARCHAR,
    inserted         TIMESTAMPTZ,
    updated          TIMESTAMPTZ,
    deleted          BOOLEAN NOT NULL DEFAULT false, -- seen in payments/schedules, no longer found at PortOne
    deleted_seen_at  TIMESTAMPTZ,
    raw              JSON,
    synced_at        TIMESTAMPTZ NOT NULL
);

CREATE TABLE orders (
    merchant_uid     VARCHAR PRIMARY KEY,
    customer_uid     VARCHAR,
    amount           BIGINT NOT NULL,
    currency         VARCHAR NOT NULL DEFAULT 'KRW',
    status           VARCHAR NOT NULL CHECK (status IN ('pending', 'paid', 'failed', 'cancelled', 'refunded')),
    status_raw       VARCHAR,
    imp_uid          VARCHAR,
    paid_at          TIMESTAMPTZ,
    refunded_amount  BIGINT NOT NULL DEFAULT 0,
    source           VARCHAR NOT NULL,
    loaded_at        TIMESTAMPTZ NOT NULL
);

CREATE TABLE subscriptions (
    customer_uid     VARCHAR PRIMARY KEY,
    status           VARCHAR NOT NULL CHECK (status IN ('active', 'cancelled')),
    status_raw       VARCHAR,
    amount           BIGINT NOT NULL,
    interval_months  INTEGER NOT NULL DEFAULT 1,
    anchor_day       INTEGER NOT NULL CHECK (anchor_day BETWEEN 1 AND 31),
    started_at       TIMESTAMPTZ,
    cancelled_at     TIMESTAMPTZ,
    source           VARCHAR NOT NULL,
    loaded_at        TIMESTAMPTZ NOT NULL
);

-- Bookkeeping: one row per loaded source snapshot (orders or subscriptions).
CREATE TABLE source_loads (
    target      VARCHAR NOT NULL,        -- orders | subscriptions
    source      VARCHAR NOT NULL,
    rows        BIGINT NOT NULL,
    loaded_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (target, source)
);

CREATE TABLE sync_state (
    stream        VARCHAR PRIMARY KEY,   -- e.g. payments:paid, schedules, billing_keys
    cursor        TIMESTAMPTZ,           -- everything up to here is in the tables
    last_success  TIMESTAMPTZ,
    last_error    VARCHAR,
    detail        JSON
);

CREATE TABLE recon_runs (
    run_id          VARCHAR PRIMARY KEY,
    as_of           TIMESTAMPTZ NOT NULL,
    grace_seconds   BIGINT NOT NULL,
    params          JSON,
    subscriptions_inferred BOOLEAN NOT NULL DEFAULT false,
    started_at      TIMESTAMPTZ NOT NULL,
    duration_s      DOUBLE,
    finding_count   BIGINT NOT NULL DEFAULT 0,
    amount_at_risk  BIGINT NOT NULL DEFAULT 0,
    counts          JSON
);

CREATE TABLE findings (
    run_id                 VARCHAR NOT NULL,
    finding_id             VARCHAR NOT NULL,  -- stable hash of kind + keys: the same problem keeps its id
    kind                   VARCHAR NOT NULL,
    severity               VARCHAR NOT NULL,  -- low | medium | high | critical
    customer_uid           VARCHAR,
    merchant_uid           VARCHAR,
    imp_uid                VARCHAR,
    schedule_merchant_uid  VARCHAR,
    portone_status         VARCHAR,
    local_status           VARCHAR,
    portone_amount         BIGINT,
    local_amount           BIGINT,
    amount_at_risk         BIGINT NOT NULL DEFAULT 0,
    event_at               TIMESTAMPTZ,
    suggested_action       VARCHAR,
    detail                 VARCHAR,
    first_seen             TIMESTAMPTZ,
    PRIMARY KEY (run_id, finding_id)
);

CREATE TABLE actions (
    action_id      VARCHAR PRIMARY KEY,   -- deterministic: the idempotency key
    kind           VARCHAR NOT NULL,      -- reverify | rebook | retry | unschedule
    status         VARCHAR NOT NULL,      -- planned | sending | succeeded | failed | skipped | unknown
    finding_id     VARCHAR,
    target         JSON,
    request        JSON,
    amount         BIGINT,
    attempts       INTEGER NOT NULL DEFAULT 0,
    result         JSON,
    message        VARCHAR,
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL
);
