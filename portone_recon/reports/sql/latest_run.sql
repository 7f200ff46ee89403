-- The reconciliation run a report shows when it does not reconcile itself: the latest run whose
-- as_of is at or before the report's as_of (ties: the one started last). Ad-hoc runs (a subset of kinds,
-- a past as_of) are not the merchant's daily state.
SELECT run_id
FROM recon_runs
WHERE as_of <= $as_of AND NOT adhoc
ORDER BY as_of DESC, started_at DESC
LIMIT 1
