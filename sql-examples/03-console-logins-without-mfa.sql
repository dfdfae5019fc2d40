-- Question: Which console sign-ins were made without MFA?
SELECT eventTime, userIdentity.arn, sourceIPAddress,
       element_at(responseElements, 'ConsoleLogin') AS result
FROM $EDS_ID
WHERE eventName = 'ConsoleLogin' AND element_at(additionalEventData, 'MFAUsed') = 'No'
ORDER BY eventTime
