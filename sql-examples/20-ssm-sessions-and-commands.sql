-- Question: Who opened Session Manager sessions or sent commands to instances?
-- severity: medium
-- mitre: T1651
-- schedule: every 15m
-- window: new-events
SELECT eventTime, eventName, userIdentity.arn,
       coalesce(element_at(requestParameters, 'target'), element_at(requestParameters, 'instanceIds')) AS target, eventID
FROM $EDS_ID
WHERE eventSource = 'ssm.amazonaws.com' AND eventName IN ('StartSession', 'SendCommand')
ORDER BY eventTime, eventName
