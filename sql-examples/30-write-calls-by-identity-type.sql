-- Question: How many read and write calls did each kind of identity make?
-- severity: info
-- schedule: daily at 06:00
-- window: lookback 24h
SELECT userIdentity.type, readOnly, count(*) AS calls
FROM $EDS_ID
GROUP BY userIdentity.type, readOnly
ORDER BY type NULLS FIRST, readOnly NULLS FIRST
