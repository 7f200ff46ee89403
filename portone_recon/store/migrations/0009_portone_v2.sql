-- PortOne V2 beside V1: one set of tables, each row saying which API it was read through.
--
-- A V2 payment lands in ``payments`` keyed by its attempt (``transactionId`` = ``imp_uid``; for a V1 payment
-- read through V2 it is the V1 imp_uid itself, so a payment seen through both APIs is one row), with
-- ``merchant_uid`` = its ``id`` and ``customer_uid`` = ``customer.id``. ``status`` keeps the V1 vocabulary
-- the rules read (PARTIAL_CANCELLED is ``paid`` with a cancel_amount, PAY_PENDING and
-- VIRTUAL_ACCOUNT_ISSUED are ``ready``); ``status_v2`` keeps V2's word. ``source_api`` is the API a row
-- was read through ('v1' | 'v2'); ``api_version`` the PortOne generation that created the payment.

ALTER TABLE payments ADD COLUMN source_api VARCHAR DEFAULT 'v1';
UPDATE payments SET source_api = 'v1';
ALTER TABLE payments ADD COLUMN api_version VARCHAR;
ALTER TABLE payments ADD COLUMN status_v2 VARCHAR;
ALTER TABLE payments ADD COLUMN store_id VARCHAR;
ALTER TABLE payments ADD COLUMN billing_key VARCHAR;
ALTER TABLE payments ADD COLUMN schedule_id VARCHAR;
ALTER TABLE payments ADD COLUMN webhook_status VARCHAR;   -- V2 webhooks[]: SUCCEEDED if any, else the last
ALTER TABLE payments ADD COLUMN status_changed_at TIMESTAMPTZ;

ALTER TABLE payment_cancellations ADD COLUMN source_api VARCHAR DEFAULT 'v1';
UPDATE payment_cancellations SET source_api = 'v1';

-- V2 schedules are keyed by their paymentId (the merchant_uid they will charge), as V1's are.
ALTER TABLE schedules ADD COLUMN source_api VARCHAR DEFAULT 'v1';
UPDATE schedules SET source_api = 'v1';
ALTER TABLE schedules ADD COLUMN schedule_id VARCHAR;
ALTER TABLE schedules ADD COLUMN billing_key VARCHAR;
ALTER TABLE schedules ADD COLUMN status_v2 VARCHAR;
ALTER TABLE schedules ADD COLUMN store_id VARCHAR;

-- billing_keys stays one row per customer (what the rules ask: does this customer hold a usable key);
-- for a V2 customer it says the newest issued key, and ``deleted`` only when every key is deleted (a
-- card change is a new key for the same customer, not a churn). Every V2 key is kept in v2_billing_keys.
ALTER TABLE billing_keys ADD COLUMN source_api VARCHAR DEFAULT 'v1';
UPDATE billing_keys SET source_api = 'v1';
ALTER TABLE billing_keys ADD COLUMN billing_key VARCHAR;

CREATE TABLE v2_billing_keys (
    billing_key   VARCHAR PRIMARY KEY,
    customer_uid  VARCHAR,
    status        VARCHAR NOT NULL,        -- ISSUED | DELETED
    pg_provider   VARCHAR,
    card_name     VARCHAR,
    card_number   VARCHAR,
    issued_at     TIMESTAMPTZ,
    deleted_at    TIMESTAMPTZ,
    store_id      VARCHAR,
    raw           JSON,
    synced_at     TIMESTAMPTZ NOT NULL
);
