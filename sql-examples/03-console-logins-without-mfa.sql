-- Question: Which console sign-ins were made without MFA?
-- severity: medium
-- mitre: T1078.004
-- schedule: every 15m
-- window: new-events
SELECT eventTime, userIdentity.arn, sourceIPAddress,
       element_at(responseElements, 'ConsoleLogin') AS result, eventID
FROM $EDS_ID
WHERE eventName = 'ConsoleLogin' AND element_at(additionalEventData, 'MFAUsed') = 'No'
ORDER BY eventTime
