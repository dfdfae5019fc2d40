-- Question: From which IP addresses were roles assumed (AWS services left out), and how often?
-- severity: info
-- schedule: daily at 06:00
-- window: lookback 24h
SELECT sourceIPAddress, element_at(requestParameters, 'roleArn') AS role, count(*) AS calls
FROM $EDS_ID
WHERE eventName = 'AssumeRole' AND sourceIPAddress NOT LIKE '%amazonaws.com'
GROUP BY sourceIPAddress, element_at(requestParameters, 'roleArn')
ORDER BY calls DESC, sourceIPAddress, role
