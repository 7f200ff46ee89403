-- Every finding of a run; is_new: its finding_id (a stable hash of kind + keys) was not in the previous run.
SELECT
    f.*,
    (p.finding_id IS NULL) AS is_new
FROM findings f
LEFT JOIN findings p ON p.run_id = $previous_run_id AND p.finding_id = f.finding_id
WHERE f.run_id = $run_id
ORDER BY f.kind, f.amount_at_risk DESC, f.event_at, f.finding_id
