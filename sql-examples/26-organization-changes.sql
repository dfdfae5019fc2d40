-- Question: Which accounts tried to leave the organization or were created or removed in it?
SELECT eventTime, eventName, recipientAccountId, userIdentity.arn, errorCode
FROM $EDS_ID
WHERE eventName IN ('LeaveOrganization', 'RemoveAccountFromOrganization', 'CreateAccount', 'CloseAccount',
                    'DeleteOrganization')
ORDER BY eventTime, eventName
