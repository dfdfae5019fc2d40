-- Question: Who tried to read EC2 Windows passwords or instance user data, and how often did it fail?
-- severity: medium
-- mitre: T1552.005
-- schedule: daily at 06:00
-- window: lookback 24h
SELECT userIdentity.arn, eventName, count(*) AS calls, count(errorCode) AS failed
FROM $EDS_ID
WHERE eventName = 'GetPasswordData'
   OR (eventName = 'DescribeInstanceAttribute' AND element_at(requestParameters, 'attribute') = 'userData')
GROUP BY userIdentity.arn, eventName
ORDER BY calls DESC, arn, eventName
