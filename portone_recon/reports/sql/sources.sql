-- What the store holds per PortOne API it was read through (source_api 'v1' | 'v2'): payments (one row
-- per imp_uid, so a payment read through both APIs is counted once), billing-key issuance transactions
-- apart (V1 records issuing a key as a transaction, customer_uid_usage 'issue'; V2 does not), schedules
-- and customers' billing keys. Rows written before the source was recorded are V1's. Only sources with
-- rows appear.
WITH counted AS (
    SELECT
        coalesce(source_api, 'v1') AS source_api,
        CASE WHEN customer_uid_usage = 'issue' THEN 'issue_transactions' ELSE 'payments' END AS what,
        count(*) AS n
    FROM payments
    GROUP BY ALL
    UNION ALL
    SELECT coalesce(source_api, 'v1'), 'schedules', count(*) FROM schedules GROUP BY 1
    UNION ALL
    SELECT coalesce(source_api, 'v1'), 'billing_keys', count(*) FROM billing_keys GROUP BY 1
)
SELECT
    source_api,
    coalesce(sum(n) FILTER (WHERE what = 'payments'), 0)::BIGINT AS payments,
    coalesce(sum(n) FILTER (WHERE what = 'issue_transactions'), 0)::BIGINT AS issue_transactions,
    coalesce(sum(n) FILTER (WHERE what = 'schedules'), 0)::BIGINT AS schedules,
    coalesce(sum(n) FILTER (WHERE what = 'billing_keys'), 0)::BIGINT AS billing_keys
FROM counted
GROUP BY source_api
ORDER BY source_api
