-- Question: Which request parameters are used most by write calls?
-- severity: info
-- schedule: daily at 06:00
-- window: lookback 24h
SELECT p.name, count(*) AS events
FROM $EDS_ID CROSS JOIN UNNEST(requestParameters) AS p(name, value)
WHERE readOnly = false
GROUP BY p.name
ORDER BY events DESC, name
LIMIT 15
