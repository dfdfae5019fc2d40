-- Question: Who stopped, deleted or reconfigured CloudTrail logging?
-- severity: high
-- mitre: T1562.008
-- schedule: every 15m
-- window: new-events
SELECT eventTime, eventName, userIdentity.arn, sourceIPAddress,
       coalesce(element_at(requestParameters, 'name'), element_at(requestParameters, 'trailName')) AS trail, errorCode, eventID
FROM $EDS_ID
WHERE eventSource = 'cloudtrail.amazonaws.com'
  AND eventName IN ('StopLogging', 'DeleteTrail', 'UpdateTrail', 'PutEventSelectors', 'PutInsightSelectors',
                    'DeleteEventDataStore', 'StopEventDataStoreIngestion')
ORDER BY eventTime
