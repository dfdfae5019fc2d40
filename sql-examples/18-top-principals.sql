-- Question: Which ten principals made the most calls?
SELECT userIdentity.arn, count(*) AS calls
FROM $EDS_ID
WHERE userIdentity.arn IS NOT NULL
GROUP BY userIdentity.arn
ORDER BY calls DESC, arn
LIMIT 10
