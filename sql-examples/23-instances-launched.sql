-- Question: Who launched EC2 instances, of which type, in which region?
SELECT eventTime, userIdentity.arn, awsRegion, element_at(requestParameters, 'instanceType') AS instanceType, errorCode
FROM $EDS_ID
WHERE eventSource = 'ec2.amazonaws.com' AND eventName = 'RunInstances'
ORDER BY eventTime
