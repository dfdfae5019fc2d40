-- Question: Who read Secrets Manager secrets, how often, and how many times were they refused?
-- severity: low
-- mitre: T1555.006
-- schedule: daily at 06:00
-- window: lookback 24h
SELECT userIdentity.arn, count(*) AS reads, count(errorCode) AS refused
FROM $EDS_ID
WHERE eventSource = 'secretsmanager.amazonaws.com' AND eventName IN ('GetSecretValue', 'BatchGetSecretValue')
GROUP BY userIdentity.arn
ORDER BY reads DESC, arn
