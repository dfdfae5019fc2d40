-- Question: Which access keys were created, for which user, and by whom?
-- severity: medium
-- mitre: T1098.001
-- schedule: every 15m
-- window: new-events
SELECT eventTime, userIdentity.arn AS actor,
       json_extract_scalar(element_at(responseElements, 'accessKey'), '$.userName') AS userName,
       json_extract_scalar(element_at(responseElements, 'accessKey'), '$.accessKeyId') AS accessKeyId, eventID
FROM $EDS_ID
WHERE eventSource = 'iam.amazonaws.com' AND eventName = 'CreateAccessKey' AND errorCode IS NULL
ORDER BY eventTime
