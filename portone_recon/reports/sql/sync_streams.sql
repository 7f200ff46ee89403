-- Each sync stream with the API it reads (V2 streams are named 'v2:...'), its last successful sync, the
-- cursor (everything up to it is in the store) and the last error, if the latest attempt failed.
SELECT
    CASE WHEN stream LIKE 'v2:%' THEN 'v2' ELSE 'v1' END AS source_api,
    stream,
    last_success,
    cursor,
    last_error
FROM sync_state
ORDER BY source_api, stream
