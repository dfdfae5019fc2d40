-- Question: Which KMS keys were disabled, scheduled for deletion, or given a new key policy?
SELECT eventTime, eventName, element_at(requestParameters, 'keyId') AS keyId, userIdentity.arn, errorCode
FROM $EDS_ID
WHERE eventSource = 'kms.amazonaws.com'
  AND eventName IN ('DisableKey', 'ScheduleKeyDeletion', 'PutKeyPolicy', 'DisableKeyRotation')
ORDER BY eventTime
