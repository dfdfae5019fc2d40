-- Question: Which bucket policies granted access to everyone (Principal "*")?
-- severity: high
-- mitre: T1530
-- schedule: every 15m
-- window: new-events
SELECT eventTime, element_at(requestParameters, 'bucketName') AS bucket, userIdentity.arn,
       json_extract_scalar(element_at(requestParameters, 'bucketPolicy'), '$.Statement[0].Effect') AS effect, eventID
FROM $EDS_ID
WHERE eventName = 'PutBucketPolicy'
  AND (json_extract_scalar(element_at(requestParameters, 'bucketPolicy'), '$.Statement[0].Principal') = '*'
       OR json_extract_scalar(element_at(requestParameters, 'bucketPolicy'), '$.Statement[0].Principal.AWS') = '*')
ORDER BY eventTime
