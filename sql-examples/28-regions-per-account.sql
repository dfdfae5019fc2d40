-- Question: In how many regions was each account active, and when was it first and last seen?
-- severity: info
-- schedule: daily at 06:00
-- window: lookback 24h
SELECT recipientAccountId, count(DISTINCT awsRegion) AS regions, count(*) AS events,
       min(eventTime) AS firstSeen, max(eventTime) AS lastSeen
FROM $EDS_ID
GROUP BY recipientAccountId
ORDER BY events DESC, recipientAccountId NULLS FIRST
