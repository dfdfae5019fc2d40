-- Question: Who launched EC2 instances, of which type, in which region?
-- severity: low
-- mitre: T1578.002
-- schedule: hourly
-- window: new-events
SELECT eventTime, userIdentity.arn, awsRegion, element_at(requestParameters, 'instanceType') AS instanceType, errorCode, eventID
FROM $EDS_ID
WHERE eventSource = 'ec2.amazonaws.com' AND eventName = 'RunInstances'
ORDER BY eventTime
