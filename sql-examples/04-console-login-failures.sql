-- Question: Which console sign-ins failed, for whom, and why?
SELECT eventTime, userIdentity.arn, userIdentity.userName, sourceIPAddress, errorMessage
FROM $EDS_ID
WHERE eventName = 'ConsoleLogin' AND element_at(responseElements, 'ConsoleLogin') = 'Failure'
ORDER BY eventTime
