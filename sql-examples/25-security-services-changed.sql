-- Question: Which security services (GuardDuty, Security Hub, Macie, Config, WAF) were disabled or loosened?
SELECT eventTime, eventSource, eventName, userIdentity.arn, errorCode
FROM $EDS_ID
WHERE eventName IN ('DeleteDetector', 'UpdateDetector', 'DisableSecurityHub', 'UpdateMacieSession',
                    'DisableMacie', 'StopConfigurationRecorder', 'DeleteConfigurationRecorder',
                    'DisassociateWebACL', 'DeleteWebACL')
ORDER BY eventTime
