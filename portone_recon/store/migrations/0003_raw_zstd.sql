-- The raw JSON of every API row is stored with ZSTD compression.
-- DuckDB's default string compression (analysed per column segment at every checkpoint) cost about
-- 0.8 CPU-s per 1e5 payments at COMMIT; ZSTD halves the commit and stores raw in a quarter of the space
-- (benchmarks/RESULTS.md, section 2). DuckDB cannot change a column's compression in place, so each raw
-- column is copied into a new one (the column moves to the end of its table; nothing selects by position).

ALTER TABLE payments ADD COLUMN raw_zstd JSON USING COMPRESSION zstd;
UPDATE payments SET raw_zstd = raw;
ALTER TABLE payments DROP COLUMN raw;
ALTER TABLE payments RENAME COLUMN raw_zstd TO raw;

ALTER TABLE schedules ADD COLUMN raw_zstd JSON USING COMPRESSION zstd;
UPDATE schedules SET raw_zstd = raw;
ALTER TABLE schedules DROP COLUMN raw;
ALTER TABLE schedules RENAME COLUMN raw_zstd TO raw;

ALTER TABLE billing_keys ADD COLUMN raw_zstd JSON USING COMPRESSION zstd;
UPDATE billing_keys SET raw_zstd = raw;
ALTER TABLE billing_keys DROP COLUMN raw;
ALTER TABLE billing_keys RENAME COLUMN raw_zstd TO raw;
