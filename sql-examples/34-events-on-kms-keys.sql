-- Question: Which API calls touched KMS keys (a KMS key among the event's resources)?
-- severity: info
-- schedule: daily at 06:00
-- window: lookback 24h
SELECT eventName, count(*) AS events
FROM $EDS_ID
WHERE any_match(resources, r -> r.type = 'AWS::KMS::Key')
GROUP BY eventName
ORDER BY events DESC, eventName
