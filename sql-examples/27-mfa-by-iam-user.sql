-- Question: For each IAM user, how many calls were made in a session authenticated with MFA, and how many without?
-- severity: info
-- schedule: daily at 06:00
-- window: lookback 24h
SELECT userIdentity.userName,
       count_if(userIdentity.sessionContext.attributes.mfaAuthenticated = 'true') AS withMfa,
       count_if(coalesce(userIdentity.sessionContext.attributes.mfaAuthenticated, 'false') <> 'true') AS withoutMfa
FROM $EDS_ID
WHERE userIdentity.type = 'IAMUser'
GROUP BY userIdentity.userName
ORDER BY userName NULLS FIRST
