-- Question: Which security group rules were opened to the whole internet (0.0.0.0/0 or ::/0)?
-- severity: high
-- mitre: T1562.007
-- schedule: every 15m
-- window: new-events
SELECT eventTime, eventName, element_at(requestParameters, 'groupId') AS groupId, userIdentity.arn, awsRegion, eventID
FROM $EDS_ID
WHERE eventSource = 'ec2.amazonaws.com'
  AND eventName IN ('AuthorizeSecurityGroupIngress', 'AuthorizeSecurityGroupEgress')
  AND (element_at(requestParameters, 'ipPermissions') LIKE '%"0.0.0.0/0"%'
       OR element_at(requestParameters, 'ipPermissions') LIKE '%"::/0"%')
ORDER BY eventTime
