-- Question: Which logs other than CloudTrail were switched off (flow logs, DNS query logs, database
-- activity streams, log groups, S3 access logging)?
-- severity: high
-- mitre: T1562.008
-- schedule: every 15m
-- window: new-events
SELECT eventTime, eventSource, eventName, userIdentity.arn, errorCode, eventID
FROM $EDS_ID
WHERE eventName IN ('DeleteFlowLogs', 'DeleteResolverQueryLogConfig', 'DisassociateResolverQueryLogConfig',
                    'StopActivityStream', 'DeleteLogGroup', 'DeleteLogStream', 'PutBucketLogging')
ORDER BY eventTime, eventName
