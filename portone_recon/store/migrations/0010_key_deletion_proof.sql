-- How a V1 billing key's deletion is known.
--
-- A key that a multi-lookup (``GET /subscribe/customers?customer_uid[]=``) leaves out is gone unless
-- the lookup can leave out live keys, which no source rules out (super billing keys have another shape).
-- ``deleted_proof`` says what stands behind ``deleted = true``:
--   'single_get' its own ``GET /subscribe/customers/{customer_uid}`` answered 404;
--   'lookup'     the multi-lookup left it out, and the single-key GETs of this run's sample of such
--                keys all answered 404 (so the lookup left out no live key that the run could see).
-- NULL when the key is not deleted, or when the record itself says so (a V2 key's DELETED status).
-- Every deletion the sync recorded before this column existed was proven by its own GET.

ALTER TABLE billing_keys ADD COLUMN deleted_proof VARCHAR;
UPDATE billing_keys SET deleted_proof = 'single_get' WHERE deleted AND source_api IS DISTINCT FROM 'v2';
