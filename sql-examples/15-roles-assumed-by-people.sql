-- Question: Which roles did users and other roles (not AWS services) assume, and how often?
-- severity: info
-- schedule: daily at 06:00
-- window: lookback 24h
SELECT userIdentity.arn AS who, element_at(requestParameters, 'roleArn') AS role, count(*) AS times,
       count(errorCode) AS failed
FROM $EDS_ID
WHERE eventName = 'AssumeRole' AND userIdentity.type IN ('IAMUser', 'AssumedRole', 'AWSAccount', 'FederatedUser')
GROUP BY userIdentity.arn, element_at(requestParameters, 'roleArn')
ORDER BY times DESC, who NULLS FIRST, role NULLS FIRST
