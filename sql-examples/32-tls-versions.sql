-- Question: Which TLS versions did clients use, and which principals still use TLS 1.0 or 1.1?
-- severity: info
-- schedule: daily at 06:00
-- window: lookback 24h
SELECT tlsDetails.tlsVersion, count(*) AS calls, count(DISTINCT userIdentity.arn) AS principals
FROM $EDS_ID
WHERE tlsDetails.tlsVersion IS NOT NULL
GROUP BY tlsDetails.tlsVersion
ORDER BY tlsVersion
