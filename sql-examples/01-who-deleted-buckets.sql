-- Question: Who deleted S3 buckets, when, from which IP address, and with MFA or not?
-- severity: medium
-- mitre: T1485
-- schedule: every 15m
-- window: new-events
SELECT eventTime, userIdentity.arn, sourceIPAddress,
       userIdentity.sessionContext.attributes.mfaAuthenticated AS mfa,
       element_at(requestParameters, 'bucketName') AS bucket, errorCode, eventID
FROM $EDS_ID
WHERE eventSource = 's3.amazonaws.com' AND eventName = 'DeleteBucket'
ORDER BY eventTime DESC
