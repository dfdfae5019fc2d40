-- Question: From which IP addresses were roles assumed (AWS services left out), and how often?
SELECT sourceIPAddress, element_at(requestParameters, 'roleArn') AS role, count(*) AS calls
FROM $EDS_ID
WHERE eventName = 'AssumeRole' AND sourceIPAddress NOT LIKE '%amazonaws.com'
GROUP BY sourceIPAddress, element_at(requestParameters, 'roleArn')
ORDER BY calls DESC, sourceIPAddress, role
