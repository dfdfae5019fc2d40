-- Question: Which ten principals made the most calls?
-- severity: info
-- schedule: daily at 06:00
-- window: lookback 24h
SELECT userIdentity.arn, count(*) AS calls
FROM $EDS_ID
WHERE userIdentity.arn IS NOT NULL
GROUP BY userIdentity.arn
ORDER BY calls DESC, arn
LIMIT 10
