-- Question: Which KMS keys were disabled, scheduled for deletion, or given a new key policy?
-- severity: high
-- mitre: T1485
-- schedule: every 15m
-- window: new-events
SELECT eventTime, eventName, element_at(requestParameters, 'keyId') AS keyId, userIdentity.arn, errorCode, eventID
FROM $EDS_ID
WHERE eventSource = 'kms.amazonaws.com'
  AND eventName IN ('DisableKey', 'ScheduleKeyDeletion', 'PutKeyPolicy', 'DisableKeyRotation')
ORDER BY eventTime
