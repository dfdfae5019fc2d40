-- Question: Which error codes occur most, and on how many different APIs?
-- severity: info
-- schedule: daily at 06:00
-- window: lookback 24h
SELECT errorCode, count(*) AS events, count(DISTINCT eventName) AS apis
FROM $EDS_ID
WHERE errorCode IS NOT NULL
GROUP BY errorCode
ORDER BY events DESC, errorCode
