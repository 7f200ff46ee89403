-- One reconciliation run, with the run before it (by start time): "new" and "resolved" compare the two.
SELECT
    r.run_id,
    r.as_of,
    r.grace_seconds,
    r.subscriptions_inferred,
    r.started_at,
    r.duration_s,
    r.finding_count,
    r.amount_at_risk,
    (
        SELECT p.run_id
        FROM recon_runs p
        WHERE p.started_at < r.started_at OR (p.started_at = r.started_at AND p.run_id < r.run_id)
        ORDER BY p.started_at DESC, p.run_id DESC
        LIMIT 1
    ) AS previous_run_id
FROM recon_runs r
WHERE r.run_id = $run_id
