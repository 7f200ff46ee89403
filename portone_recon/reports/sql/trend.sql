-- Open findings per KST day over the last $days days up to $as_of: for each day, the latest run of that
-- day (by as_of, then start time; ad-hoc runs never count) and its findings by severity. Days without a
-- run have no row.
WITH day_runs AS (
    SELECT
        CAST(as_of AS DATE) AS day,
        run_id,
        row_number() OVER (PARTITION BY CAST(as_of AS DATE) ORDER BY as_of DESC, started_at DESC) AS rn
    FROM recon_runs
    WHERE as_of <= $as_of AND NOT adhoc
      AND CAST(as_of AS DATE) > CAST($as_of AS DATE) - CAST($days AS INTEGER)
)
SELECT
    d.day,
    d.run_id,
    count(f.finding_id) AS open_findings,
    count(f.finding_id) FILTER (WHERE f.severity = 'critical') AS critical,
    count(f.finding_id) FILTER (WHERE f.severity = 'high') AS high,
    count(f.finding_id) FILTER (WHERE f.severity = 'medium') AS medium,
    count(f.finding_id) FILTER (WHERE f.severity = 'low') AS low,
    CAST(coalesce(sum(f.amount_at_risk), 0) AS BIGINT) AS amount_at_risk
FROM day_runs d
LEFT JOIN findings f ON f.run_id = d.run_id
WHERE d.rn = 1
GROUP BY d.day, d.run_id
ORDER BY d.day
