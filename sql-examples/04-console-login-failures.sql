-- Question: Which console sign-ins failed, for whom, and why?
-- severity: low
-- mitre: T1110
-- schedule: every 15m
-- window: new-events
SELECT eventTime, userIdentity.arn, userIdentity.userName, sourceIPAddress, errorMessage, eventID
FROM $EDS_ID
WHERE eventName = 'ConsoleLogin' AND element_at(responseElements, 'ConsoleLogin') = 'Failure'
ORDER BY eventTime
