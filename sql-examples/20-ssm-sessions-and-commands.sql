-- Question: Who opened Session Manager sessions or sent commands to instances?
SELECT eventTime, eventName, userIdentity.arn,
       coalesce(element_at(requestParameters, 'target'), element_at(requestParameters, 'instanceIds')) AS target
FROM $EDS_ID
WHERE eventSource = 'ssm.amazonaws.com' AND eventName IN ('StartSession', 'SendCommand')
ORDER BY eventTime, eventName
