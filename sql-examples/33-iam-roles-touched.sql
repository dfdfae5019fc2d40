-- Question: Which IAM roles appear as resources of events, in how many events and by how many principals?
-- severity: info
-- schedule: daily at 06:00
-- window: lookback 24h
SELECT r.arn AS role, count(*) AS events, count(DISTINCT userIdentity.arn) AS principals
FROM $EDS_ID CROSS JOIN UNNEST(resources) AS t(r)
WHERE r.type = 'AWS::IAM::Role'
GROUP BY r.arn
ORDER BY events DESC, role
