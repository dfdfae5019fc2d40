-- Question: Which API calls did the root user make?
-- Description: The root user should almost never be used: every call deserves a look.
-- severity: high
-- mitre: T1078.004
-- schedule: every 15m
-- window: new-events
SELECT eventTime, eventSource, eventName, sourceIPAddress, userAgent, errorCode, eventID
FROM $EDS_ID
WHERE userIdentity.type = 'Root'
ORDER BY eventTime
