-- Question: Which API calls did the root user make?
-- The root user should almost never be used: every call deserves a look.
SELECT eventTime, eventSource, eventName, sourceIPAddress, userAgent, errorCode
FROM $EDS_ID
WHERE userIdentity.type = 'Root'
ORDER BY eventTime
