-- Question: Which principals were denied access most often, and on how many different APIs?
-- severity: low
-- schedule: daily at 06:00
-- window: lookback 24h
SELECT userIdentity.arn, count(*) AS denied, count(DISTINCT eventName) AS apis
FROM $EDS_ID
WHERE errorCode IN ('AccessDenied', 'AccessDeniedException', 'Client.UnauthorizedOperation', 'UnauthorizedOperation')
GROUP BY userIdentity.arn
ORDER BY denied DESC, arn
