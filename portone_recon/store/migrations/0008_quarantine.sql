-- Exact money for every currency, and a quarantine for PortOne records that cannot be read.
--
-- PortOne's ``amount`` is a JSON number: USD channels (PayPal, Eximbay) charge 9.99. Every amount column
-- gets an exact twin ``<name>_exact DECIMAL(18,4)`` (4 places: no ISO 4217 currency has more), always
-- filled from the API. The integer column keeps its meaning for everything that reads it (KRW and any
-- whole amount: unchanged) and is NULL when the amount has a fractional part, so no code ever sees a
-- rounded amount. Amounts PortOne sends as null are NULL in both.

ALTER TABLE payments ALTER COLUMN amount DROP NOT NULL;
ALTER TABLE payments ADD COLUMN amount_exact DECIMAL(18, 4);
UPDATE payments SET amount_exact = amount;
ALTER TABLE payments ALTER COLUMN cancel_amount DROP NOT NULL;
ALTER TABLE payments ADD COLUMN cancel_amount_exact DECIMAL(18, 4);
UPDATE payments SET cancel_amount_exact = cancel_amount;

ALTER TABLE payment_cancellations ALTER COLUMN amount DROP NOT NULL;
ALTER TABLE payment_cancellations ADD COLUMN amount_exact DECIMAL(18, 4);
UPDATE payment_cancellations SET amount_exact = amount;

ALTER TABLE schedules ALTER COLUMN amount DROP NOT NULL;
ALTER TABLE schedules ADD COLUMN amount_exact DECIMAL(18, 4);
UPDATE schedules SET amount_exact = amount;

-- A record a listing or lookup returned that the sync could not store (an unknown status, a missing key
-- field, an amount that is not a number): kept as received, with where it came from and why, until a
-- later sync reads the same record (same table and key) cleanly. One row per distinct raw text.
CREATE TABLE quarantine (
    source      VARCHAR NOT NULL,      -- the table it was meant for: payments | schedules | billing_keys
    record_key  VARCHAR,               -- its imp_uid / merchant_uid / customer_uid when readable
    endpoint    VARCHAR NOT NULL,      -- path template it came from
    reason      VARCHAR NOT NULL,      -- the first field that could not be read, and what it held
    stream      VARCHAR,               -- the sync stream that read it
    raw         JSON,
    raw_hash    UBIGINT NOT NULL,
    first_seen  TIMESTAMPTZ NOT NULL,  -- PortOne's clock at the sync that first met it
    last_seen   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (source, raw_hash)
);
