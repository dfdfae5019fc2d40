-- Question: Which tools (user agent families) made calls, and from how many source IPs?
-- severity: info
-- schedule: daily at 06:00
-- window: lookback 24h
SELECT split_part(userAgent, '/', 1) AS tool, count(*) AS calls, count(DISTINCT sourceIPAddress) AS ips
FROM $EDS_ID
WHERE userAgent IS NOT NULL
GROUP BY split_part(userAgent, '/', 1)
ORDER BY calls DESC, tool
