-- Question: Which IAM users were created, deleted, or had their passwords or groups changed?
SELECT eventTime, eventName, userIdentity.arn AS actor, element_at(requestParameters, 'userName') AS target, errorCode
FROM $EDS_ID
WHERE eventSource = 'iam.amazonaws.com'
  AND eventName IN ('CreateUser', 'DeleteUser', 'CreateLoginProfile', 'UpdateLoginProfile', 'DeleteLoginProfile',
                    'AddUserToGroup', 'RemoveUserFromGroup', 'ChangePassword', 'UpdateUser')
ORDER BY eventTime
