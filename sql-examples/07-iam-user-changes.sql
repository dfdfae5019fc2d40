-- Question: Which IAM users were created, deleted, or had their passwords or groups changed?
-- severity: medium
-- mitre: T1136.003, T1098
-- schedule: every 15m
-- window: new-events
SELECT eventTime, eventName, userIdentity.arn AS actor, element_at(requestParameters, 'userName') AS target, errorCode, eventID
FROM $EDS_ID
WHERE eventSource = 'iam.amazonaws.com'
  AND eventName IN ('CreateUser', 'DeleteUser', 'CreateLoginProfile', 'UpdateLoginProfile', 'DeleteLoginProfile',
                    'AddUserToGroup', 'RemoveUserFromGroup', 'ChangePassword', 'UpdateUser')
ORDER BY eventTime
