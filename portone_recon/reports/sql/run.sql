-- One reconciliation run with its baseline: "new" and "resolved" compare the two. The baseline is the one
-- the run recorded (the latest full run at an as_of not after its own); runs stored before baselines were
-- recorded fall back to the run started before it. coverage: what the rules left out (JSON).
SELECT
    r.run_id,
    r.as_of,
    r.grace_seconds,
    r.subscriptions_inferred,
    r.started_at,
    r.duration_s,
    r.finding_count,
    r.amount_at_risk,
    r.adhoc,
    json_extract(r.params, '$.coverage') AS coverage,
    CASE WHEN json_exists(r.params, '$.previous_run_id') THEN json_extract_string(r.params, '$.previous_run_id')
    ELSE (
        SELECT p.run_id
        FROM recon_runs p
        WHERE p.started_at < r.started_at OR (p.started_at = r.started_at AND p.run_id < r.run_id)
        ORDER BY p.started_at DESC, p.run_id DESC
        LIMIT 1
    ) END AS previous_run_id
FROM recon_runs r
WHERE r.run_id = $run_id
