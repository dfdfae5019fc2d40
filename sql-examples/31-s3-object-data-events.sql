-- Question: Which S3 objects were read or written (data events), by whom?
-- severity: info
-- schedule: hourly
-- window: new-events
SELECT eventTime, eventName, element_at(requestParameters, 'bucketName') AS bucket,
       element_at(requestParameters, 'key') AS objectKey, userIdentity.arn, errorCode, eventID
FROM $EDS_ID
WHERE eventSource = 's3.amazonaws.com' AND eventName IN ('GetObject', 'PutObject', 'CopyObject', 'DeleteObject', 'DeleteObjects')
ORDER BY eventTime, eventName, objectKey
