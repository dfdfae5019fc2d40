-- Question: Which snapshots and images had their sharing attributes changed?
-- severity: high
-- mitre: T1537
-- schedule: every 15m
-- window: new-events
SELECT eventTime, eventName,
       coalesce(element_at(requestParameters, 'snapshotId'), element_at(requestParameters, 'dBSnapshotIdentifier'),
                element_at(requestParameters, 'imageId')) AS resource,
       userIdentity.arn, errorCode, eventID
FROM $EDS_ID
WHERE eventName IN ('ModifySnapshotAttribute', 'ModifyDBSnapshotAttribute', 'ModifyDBClusterSnapshotAttribute',
                    'ModifyImageAttribute')
ORDER BY eventTime, eventName
