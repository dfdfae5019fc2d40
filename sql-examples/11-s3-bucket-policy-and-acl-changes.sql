-- Question: Which S3 bucket policies, ACLs and public access blocks were changed, and by whom?
-- severity: medium
-- schedule: every 15m
-- window: new-events
SELECT eventTime, eventName, element_at(requestParameters, 'bucketName') AS bucket, userIdentity.arn, errorCode, eventID
FROM $EDS_ID
WHERE eventSource = 's3.amazonaws.com'
  AND eventName IN ('PutBucketPolicy', 'DeleteBucketPolicy', 'PutBucketAcl', 'PutBucketPublicAccessBlock',
                    'DeleteBucketPublicAccessBlock', 'PutObjectAcl')
ORDER BY eventTime
