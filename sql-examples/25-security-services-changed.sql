-- Question: Which security services (GuardDuty, Security Hub, Macie, Config, WAF) were disabled or loosened?
-- severity: high
-- mitre: T1562.001
-- schedule: every 15m
-- window: new-events
SELECT eventTime, eventSource, eventName, userIdentity.arn, errorCode, eventID
FROM $EDS_ID
WHERE eventName IN ('DeleteDetector', 'UpdateDetector', 'DisableSecurityHub', 'UpdateMacieSession',
                    'DisableMacie', 'StopConfigurationRecorder', 'DeleteConfigurationRecorder',
                    'DisassociateWebACL', 'DeleteWebACL')
ORDER BY eventTime
