-- 0002: where each orders/subscriptions snapshot came from, so a later re-verify can find the writer.
-- kind: dataframe | csv | xlsx | parquet | sql. location: a file path, or an SQLAlchemy URL WITHOUT its
-- password, or a DataFrame's name. table_name / query: for SQL sources. mapping: the ColumnMapping as JSON.

ALTER TABLE source_loads ADD COLUMN kind VARCHAR;
ALTER TABLE source_loads ADD COLUMN location VARCHAR;
ALTER TABLE source_loads ADD COLUMN table_name VARCHAR;
ALTER TABLE source_loads ADD COLUMN query VARCHAR;
ALTER TABLE source_loads ADD COLUMN encoding VARCHAR;
ALTER TABLE source_loads ADD COLUMN mapping JSON;
ALTER TABLE source_loads ADD COLUMN rows_read BIGINT;
ALTER TABLE source_loads ADD COLUMN replaced_rows BIGINT;
ALTER TABLE source_loads ADD COLUMN seconds DOUBLE;
