-- Question: Which accounts tried to leave the organization or were created or removed in it?
-- severity: high
-- mitre: T1666
-- schedule: every 15m
-- window: new-events
SELECT eventTime, eventName, recipientAccountId, userIdentity.arn, errorCode, eventID
FROM $EDS_ID
WHERE eventName IN ('LeaveOrganization', 'RemoveAccountFromOrganization', 'CreateAccount', 'CloseAccount',
                    'DeleteOrganization')
ORDER BY eventTime, eventName
