-- Question: Which access keys were created, for which user, and by whom?
SELECT eventTime, userIdentity.arn AS actor,
       json_extract_scalar(element_at(responseElements, 'accessKey'), '$.userName') AS userName,
       json_extract_scalar(element_at(responseElements, 'accessKey'), '$.accessKeyId') AS accessKeyId
FROM $EDS_ID
WHERE eventSource = 'iam.amazonaws.com' AND eventName = 'CreateAccessKey' AND errorCode IS NULL
ORDER BY eventTime
