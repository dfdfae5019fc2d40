-- Question: Which IAM policies were attached, put, created or changed, on whom, and by whom?
-- severity: medium
-- mitre: T1098
-- schedule: every 15m
-- window: new-events
SELECT eventTime, eventName, userIdentity.arn AS actor,
       coalesce(element_at(requestParameters, 'userName'), element_at(requestParameters, 'roleName'),
                element_at(requestParameters, 'groupName')) AS target,
       coalesce(element_at(requestParameters, 'policyArn'), element_at(requestParameters, 'policyName')) AS policy,
       errorCode, eventID
FROM $EDS_ID
WHERE eventSource = 'iam.amazonaws.com'
  AND eventName IN ('PutUserPolicy', 'PutRolePolicy', 'PutGroupPolicy', 'AttachUserPolicy', 'AttachRolePolicy',
                    'AttachGroupPolicy', 'CreatePolicy', 'CreatePolicyVersion', 'SetDefaultPolicyVersion',
                    'DeletePolicy', 'DetachUserPolicy', 'DetachRolePolicy', 'UpdateAssumeRolePolicy')
ORDER BY eventTime
