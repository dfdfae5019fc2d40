-- Question: How many events, errors and distinct principals were there each day?
-- severity: info
-- schedule: daily at 06:00
-- window: lookback 24h
SELECT CAST(eventTime AS date) AS day, count(*) AS events, count(errorCode) AS errors,
       count(DISTINCT userIdentity.arn) AS principals
FROM $EDS_ID
GROUP BY CAST(eventTime AS date)
ORDER BY day
