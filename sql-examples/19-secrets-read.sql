-- Question: Who read Secrets Manager secrets, how often, and how many times were they refused?
SELECT userIdentity.arn, count(*) AS reads, count(errorCode) AS refused
FROM $EDS_ID
WHERE eventSource = 'secretsmanager.amazonaws.com' AND eventName IN ('GetSecretValue', 'BatchGetSecretValue')
GROUP BY userIdentity.arn
ORDER BY reads DESC, arn
