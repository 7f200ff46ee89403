-- Findings of the previous run that this run no longer reports: resolved since the previous run.
SELECT p.*
FROM findings p
WHERE p.run_id = $previous_run_id
  AND NOT EXISTS (SELECT 1 FROM findings f WHERE f.run_id = $run_id AND f.finding_id = p.finding_id)
ORDER BY p.kind, p.amount_at_risk DESC, p.finding_id
