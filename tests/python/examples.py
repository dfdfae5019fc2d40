"""The sql-examples answered again, independently: plain Python over the raw fixture JSON.

  examples.py check FIXTURES RESULTS NOW EXAMPLES
      for every EXAMPLES/NAME.sql, RESULTS/NAME.json (trawl's answer, `--format json`) must hold
      the same rows as ANSWERS[NAME] computed over the events of FIXTURES that a store with 10
      years of retention at time NOW keeps

The events are found by verify.py's tolerant scanner (no trawl code), then kept as a store keeps
them: an eventTime that parses, no Insights events, one event per (eventID, recipientAccountId)
and day, or per content without an eventID.
"""
import datetime as dt
import json
import os
import re
import sys
from collections import Counter, defaultdict

import verify

RETENTION_DAYS = 3653


def parse_time(s):
    """eventTime as CloudTrail writes it (and the few variants real exports have), or None."""
    if not isinstance(s, str):
        return None
    s = s.strip().replace(": ", ":")
    if re.fullmatch(r"\d{8}T\d{6}Z", s):
        return dt.datetime.strptime(s, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.timezone.utc)
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", s):
        s += "T00:00:00"
    s = s.replace(" ", "T", 1)
    try:
        t = dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t.replace(tzinfo=dt.timezone.utc) if t.tzinfo is None else t.astimezone(dt.timezone.utc)


def store_events(root, now):
    cutoff = (now - dt.timedelta(days=RETENTION_DAYS)).date()
    seen, out = set(), []
    for e in verify.fixture_events(root):
        t = parse_time(e.get("eventTime", e.get("@timestamp")))
        if t is None or e.get("eventCategory") == "Insight" or t.date() < cutoff:
            continue
        # A re-delivered event has the same eventTime: duplicates are looked for within a day.
        key = (e["eventID"], e.get("recipientAccountId") or "") if e.get("eventID") else verify.canonical(e)
        key = (t.date(), key)
        if key in seen:
            continue
        seen.add(key)
        e["_time"] = t
        out.append(e)
    return out


# Values as a store holds them.
def get(e, path):
    """A field by its CloudTrail (JSON) path, or None."""
    for part in path.split("."):
        if not isinstance(e, dict):
            return None
        e = e.get(part)
    return e


def s(e, path):
    """A string field; any other JSON type is NULL in a string column."""
    v = get(e, path)
    return v if isinstance(v, str) else None


def lake_text(v):
    """A map value: strings as they are, other values as compact JSON, null as NULL."""
    if v is None or isinstance(v, str):
        return v
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False)


def m(e, field, key):
    """element_at(field, key) on a map column such as requestParameters."""
    obj = e.get(field)
    return lake_text(obj.get(key)) if isinstance(obj, dict) else None


def ts(t):
    """A timestamp as `--format json` writes it."""
    frac = f".{t.microsecond:06d}".rstrip("0") if t.microsecond else ""
    return t.strftime("%Y-%m-%dT%H:%M:%S") + frac + "Z"


def boolean(v):
    """A boolean column: JSON booleans, and the strings "true"/"false" in any case."""
    if isinstance(v, str) and v.lower() in ("true", "false"):
        return v.lower() == "true"
    return v if isinstance(v, bool) else None


def field(obj, name):
    """A struct field: names match in any case, as the store's lower-case schema does."""
    return next((v for k, v in obj.items() if k.lower() == name.lower()), None)


def coalesce(*vs):
    return next((v for v in vs if v is not None), None)


def json_scalar(text, *path):
    """json_extract_scalar(text, '$.a[0].b'): a string, number or boolean found at the path."""
    try:
        v = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return None
    for step in path:
        if isinstance(step, int):
            v = v[step] if isinstance(v, list) and step < len(v) else None
        else:
            v = v.get(step) if isinstance(v, dict) else None
    if isinstance(v, bool):
        return "true" if v else "false"
    return v if isinstance(v, str) else (json.dumps(v) if isinstance(v, (int, float)) else None)


def where(evs, **eq):
    """Events whose fields (dots written as __) equal the values; a list value means IN."""
    for e in evs:
        ok = True
        for k, want in eq.items():
            v = s(e, k.replace("__", "."))
            if v is None or (v not in want if isinstance(want, (list, tuple, set)) else v != want):
                ok = False
                break
        if ok:
            yield e


def group(evs, key, **aggs):
    """GROUP BY key(e) -> {agg: f(events)}; key returns a dict of the grouping columns."""
    groups = defaultdict(list)
    for e in evs:
        k = key(e)
        groups[json.dumps(k, sort_keys=True)].append((k, e))
    out = []
    for items in groups.values():
        row = dict(items[0][0])
        es = [e for _, e in items]
        for name, f in aggs.items():
            row[name] = f(es)
        out.append(row)
    return out


def count(es, f=lambda e: True):
    return sum(1 for e in es if f(e))


def distinct(es, f):
    return len({f(e) for e in es} - {None})


def ev(e, **columns):
    """A row of an event-level example: its columns, then the event's id (which findings name)."""
    return dict(columns, eventid=s(e, "eventID"))


def by_time(evs):
    return sorted(evs, key=lambda e: e["_time"])


ANSWERS = {}


def answer(name):
    def register(fn):
        ANSWERS[name] = fn
        return fn

    return register


ACCESS_DENIED = ("AccessDenied", "AccessDeniedException", "Client.UnauthorizedOperation", "UnauthorizedOperation")


@answer("01-who-deleted-buckets")
def _(evs):
    return [
        ev(e, eventtime=ts(e["_time"]), arn=s(e, "userIdentity.arn"), sourceipaddress=s(e, "sourceIPAddress"),
             mfa=s(e, "userIdentity.sessionContext.attributes.mfaAuthenticated"),
             bucket=m(e, "requestParameters", "bucketName"), errorcode=s(e, "errorCode"))
        for e in where(evs, eventSource="s3.amazonaws.com", eventName="DeleteBucket")
    ]


@answer("02-root-account-activity")
def _(evs):
    return [
        ev(e, eventtime=ts(e["_time"]), eventsource=s(e, "eventSource"), eventname=s(e, "eventName"),
             sourceipaddress=s(e, "sourceIPAddress"), useragent=s(e, "userAgent"), errorcode=s(e, "errorCode"))
        for e in where(evs, userIdentity__type="Root")
    ]


@answer("03-console-logins-without-mfa")
def _(evs):
    return [
        ev(e, eventtime=ts(e["_time"]), arn=s(e, "userIdentity.arn"), sourceipaddress=s(e, "sourceIPAddress"),
             result=m(e, "responseElements", "ConsoleLogin"))
        for e in where(evs, eventName="ConsoleLogin")
        if m(e, "additionalEventData", "MFAUsed") == "No"
    ]


@answer("04-console-login-failures")
def _(evs):
    return [
        ev(e, eventtime=ts(e["_time"]), arn=s(e, "userIdentity.arn"), username=s(e, "userIdentity.userName"),
             sourceipaddress=s(e, "sourceIPAddress"), errormessage=s(e, "errorMessage"))
        for e in where(evs, eventName="ConsoleLogin")
        if m(e, "responseElements", "ConsoleLogin") == "Failure"
    ]


@answer("05-access-denied-by-principal")
def _(evs):
    return group(where(evs, errorCode=ACCESS_DENIED), lambda e: dict(arn=s(e, "userIdentity.arn")),
                 denied=count, apis=lambda es: distinct(es, lambda e: s(e, "eventName")))


@answer("06-iam-policy-changes")
def _(evs):
    names = ["PutUserPolicy", "PutRolePolicy", "PutGroupPolicy", "AttachUserPolicy", "AttachRolePolicy",
             "AttachGroupPolicy", "CreatePolicy", "CreatePolicyVersion", "SetDefaultPolicyVersion", "DeletePolicy",
             "DetachUserPolicy", "DetachRolePolicy", "UpdateAssumeRolePolicy"]
    rp = lambda e, k: m(e, "requestParameters", k)
    return [
        ev(e, eventtime=ts(e["_time"]), eventname=s(e, "eventName"), actor=s(e, "userIdentity.arn"),
             target=coalesce(rp(e, "userName"), rp(e, "roleName"), rp(e, "groupName")),
             policy=coalesce(rp(e, "policyArn"), rp(e, "policyName")), errorcode=s(e, "errorCode"))
        for e in where(evs, eventSource="iam.amazonaws.com", eventName=names)
    ]


@answer("07-iam-user-changes")
def _(evs):
    names = ["CreateUser", "DeleteUser", "CreateLoginProfile", "UpdateLoginProfile", "DeleteLoginProfile",
             "AddUserToGroup", "RemoveUserFromGroup", "ChangePassword", "UpdateUser"]
    return [
        ev(e, eventtime=ts(e["_time"]), eventname=s(e, "eventName"), actor=s(e, "userIdentity.arn"),
             target=m(e, "requestParameters", "userName"), errorcode=s(e, "errorCode"))
        for e in where(evs, eventSource="iam.amazonaws.com", eventName=names)
    ]


@answer("08-security-groups-open-to-world")
def _(evs):
    out = []
    for e in where(evs, eventSource="ec2.amazonaws.com",
                   eventName=["AuthorizeSecurityGroupIngress", "AuthorizeSecurityGroupEgress"]):
        perms = m(e, "requestParameters", "ipPermissions") or ""
        if '"0.0.0.0/0"' in perms or '"::/0"' in perms:
            out.append(ev(e, eventtime=ts(e["_time"]), eventname=s(e, "eventName"),
                            groupid=m(e, "requestParameters", "groupId"), arn=s(e, "userIdentity.arn"),
                            awsregion=s(e, "awsRegion")))
    return out


@answer("09-cloudtrail-tampering")
def _(evs):
    names = ["StopLogging", "DeleteTrail", "UpdateTrail", "PutEventSelectors", "PutInsightSelectors",
             "DeleteEventDataStore", "StopEventDataStoreIngestion"]
    return [
        ev(e, eventtime=ts(e["_time"]), eventname=s(e, "eventName"), arn=s(e, "userIdentity.arn"),
             sourceipaddress=s(e, "sourceIPAddress"),
             trail=coalesce(m(e, "requestParameters", "name"), m(e, "requestParameters", "trailName")),
             errorcode=s(e, "errorCode"))
        for e in where(evs, eventSource="cloudtrail.amazonaws.com", eventName=names)
    ]


@answer("10-kms-key-threats")
def _(evs):
    return [
        ev(e, eventtime=ts(e["_time"]), eventname=s(e, "eventName"), keyid=m(e, "requestParameters", "keyId"),
             arn=s(e, "userIdentity.arn"), errorcode=s(e, "errorCode"))
        for e in where(evs, eventSource="kms.amazonaws.com",
                       eventName=["DisableKey", "ScheduleKeyDeletion", "PutKeyPolicy", "DisableKeyRotation"])
    ]


@answer("11-s3-bucket-policy-and-acl-changes")
def _(evs):
    names = ["PutBucketPolicy", "DeleteBucketPolicy", "PutBucketAcl", "PutBucketPublicAccessBlock",
             "DeleteBucketPublicAccessBlock", "PutObjectAcl"]
    return [
        ev(e, eventtime=ts(e["_time"]), eventname=s(e, "eventName"), bucket=m(e, "requestParameters", "bucketName"),
             arn=s(e, "userIdentity.arn"), errorcode=s(e, "errorCode"))
        for e in where(evs, eventSource="s3.amazonaws.com", eventName=names)
    ]


@answer("12-s3-policies-granting-everyone")
def _(evs):
    out = []
    for e in where(evs, eventName="PutBucketPolicy"):
        policy = m(e, "requestParameters", "bucketPolicy")
        if "*" in (json_scalar(policy, "Statement", 0, "Principal"), json_scalar(policy, "Statement", 0, "Principal", "AWS")):
            out.append(ev(e, eventtime=ts(e["_time"]), bucket=m(e, "requestParameters", "bucketName"),
                            arn=s(e, "userIdentity.arn"), effect=json_scalar(policy, "Statement", 0, "Effect")))
    return out


@answer("13-new-access-keys")
def _(evs):
    return [
        ev(e, eventtime=ts(e["_time"]), actor=s(e, "userIdentity.arn"),
             username=json_scalar(m(e, "responseElements", "accessKey"), "userName"),
             accesskeyid=json_scalar(m(e, "responseElements", "accessKey"), "accessKeyId"))
        for e in where(evs, eventSource="iam.amazonaws.com", eventName="CreateAccessKey")
        if s(e, "errorCode") is None
    ]


@answer("14-assume-role-source-ips")
def _(evs):
    chosen = [e for e in where(evs, eventName="AssumeRole")
              if s(e, "sourceIPAddress") is not None and not s(e, "sourceIPAddress").endswith("amazonaws.com")]
    return group(chosen, lambda e: dict(sourceipaddress=s(e, "sourceIPAddress"),
                                        role=m(e, "requestParameters", "roleArn")), calls=count)


@answer("15-roles-assumed-by-people")
def _(evs):
    chosen = where(evs, eventName="AssumeRole", userIdentity__type=["IAMUser", "AssumedRole", "AWSAccount", "FederatedUser"])
    return group(chosen, lambda e: dict(who=s(e, "userIdentity.arn"), role=m(e, "requestParameters", "roleArn")),
                 times=count, failed=lambda es: count(es, lambda e: s(e, "errorCode") is not None))


@answer("16-errors-by-code")
def _(evs):
    return group((e for e in evs if s(e, "errorCode") is not None), lambda e: dict(errorcode=s(e, "errorCode")),
                 events=count, apis=lambda es: distinct(es, lambda e: s(e, "eventName")))


@answer("17-events-per-day")
def _(evs):
    return group(evs, lambda e: dict(day=e["_time"].date().isoformat()), events=count,
                 errors=lambda es: count(es, lambda e: s(e, "errorCode") is not None),
                 principals=lambda es: distinct(es, lambda e: s(e, "userIdentity.arn")))


@answer("18-top-principals")
def _(evs):
    rows = group((e for e in evs if s(e, "userIdentity.arn")), lambda e: dict(arn=s(e, "userIdentity.arn")), calls=count)
    return sorted(rows, key=lambda r: (-r["calls"], r["arn"]))[:10]


@answer("19-secrets-read")
def _(evs):
    chosen = where(evs, eventSource="secretsmanager.amazonaws.com", eventName=["GetSecretValue", "BatchGetSecretValue"])
    return group(chosen, lambda e: dict(arn=s(e, "userIdentity.arn")), reads=count,
                 refused=lambda es: count(es, lambda e: s(e, "errorCode") is not None))


@answer("20-ssm-sessions-and-commands")
def _(evs):
    return [
        ev(e, eventtime=ts(e["_time"]), eventname=s(e, "eventName"), arn=s(e, "userIdentity.arn"),
             target=coalesce(m(e, "requestParameters", "target"), m(e, "requestParameters", "instanceIds")))
        for e in where(evs, eventSource="ssm.amazonaws.com", eventName=["StartSession", "SendCommand"])
    ]


@answer("21-ec2-password-and-user-data")
def _(evs):
    chosen = [e for e in evs if s(e, "eventName") == "GetPasswordData"
              or (s(e, "eventName") == "DescribeInstanceAttribute" and m(e, "requestParameters", "attribute") == "userData")]
    return group(chosen, lambda e: dict(arn=s(e, "userIdentity.arn"), eventname=s(e, "eventName")), calls=count,
                 failed=lambda es: count(es, lambda e: s(e, "errorCode") is not None))


@answer("22-snapshot-and-image-sharing")
def _(evs):
    names = ["ModifySnapshotAttribute", "ModifyDBSnapshotAttribute", "ModifyDBClusterSnapshotAttribute", "ModifyImageAttribute"]
    rp = lambda e, k: m(e, "requestParameters", k)
    return [
        ev(e, eventtime=ts(e["_time"]), eventname=s(e, "eventName"),
             resource=coalesce(rp(e, "snapshotId"), rp(e, "dBSnapshotIdentifier"), rp(e, "imageId")),
             arn=s(e, "userIdentity.arn"), errorcode=s(e, "errorCode"))
        for e in where(evs, eventName=names)
    ]


@answer("23-instances-launched")
def _(evs):
    return [
        ev(e, eventtime=ts(e["_time"]), arn=s(e, "userIdentity.arn"), awsregion=s(e, "awsRegion"),
             instancetype=m(e, "requestParameters", "instanceType"), errorcode=s(e, "errorCode"))
        for e in where(evs, eventSource="ec2.amazonaws.com", eventName="RunInstances")
    ]


def events_named(evs, names):
    return [
        ev(e, eventtime=ts(e["_time"]), eventsource=s(e, "eventSource"), eventname=s(e, "eventName"),
             arn=s(e, "userIdentity.arn"), errorcode=s(e, "errorCode"))
        for e in where(evs, eventName=names)
    ]


@answer("24-other-logging-disabled")
def _(evs):
    return events_named(evs, ["DeleteFlowLogs", "DeleteResolverQueryLogConfig", "DisassociateResolverQueryLogConfig",
                              "StopActivityStream", "DeleteLogGroup", "DeleteLogStream", "PutBucketLogging"])


@answer("25-security-services-changed")
def _(evs):
    return events_named(evs, ["DeleteDetector", "UpdateDetector", "DisableSecurityHub", "UpdateMacieSession",
                              "DisableMacie", "StopConfigurationRecorder", "DeleteConfigurationRecorder",
                              "DisassociateWebACL", "DeleteWebACL"])


@answer("26-organization-changes")
def _(evs):
    names = ["LeaveOrganization", "RemoveAccountFromOrganization", "CreateAccount", "CloseAccount", "DeleteOrganization"]
    return [
        ev(e, eventtime=ts(e["_time"]), eventname=s(e, "eventName"), recipientaccountid=s(e, "recipientAccountId"),
             arn=s(e, "userIdentity.arn"), errorcode=s(e, "errorCode"))
        for e in where(evs, eventName=names)
    ]


@answer("27-mfa-by-iam-user")
def _(evs):
    mfa = lambda e: s(e, "userIdentity.sessionContext.attributes.mfaAuthenticated")
    return group(where(evs, userIdentity__type="IAMUser"), lambda e: dict(username=s(e, "userIdentity.userName")),
                 withmfa=lambda es: count(es, lambda e: mfa(e) == "true"),
                 withoutmfa=lambda es: count(es, lambda e: (mfa(e) or "false") != "true"))


@answer("28-regions-per-account")
def _(evs):
    return group(evs, lambda e: dict(recipientaccountid=s(e, "recipientAccountId")),
                 regions=lambda es: distinct(es, lambda e: s(e, "awsRegion")), events=count,
                 firstseen=lambda es: ts(min(e["_time"] for e in es)), lastseen=lambda es: ts(max(e["_time"] for e in es)))


@answer("29-user-agent-families")
def _(evs):
    return group((e for e in evs if s(e, "userAgent") is not None), lambda e: dict(tool=s(e, "userAgent").split("/")[0]),
                 calls=count, ips=lambda es: distinct(es, lambda e: s(e, "sourceIPAddress")))


@answer("30-write-calls-by-identity-type")
def _(evs):
    return group(evs, lambda e: dict(type=s(e, "userIdentity.type"), readonly=boolean(e.get("readOnly"))), calls=count)


@answer("31-s3-object-data-events")
def _(evs):
    names = ["GetObject", "PutObject", "CopyObject", "DeleteObject", "DeleteObjects"]
    return [
        ev(e, eventtime=ts(e["_time"]), eventname=s(e, "eventName"), bucket=m(e, "requestParameters", "bucketName"),
             objectkey=m(e, "requestParameters", "key"), arn=s(e, "userIdentity.arn"), errorcode=s(e, "errorCode"))
        for e in where(evs, eventSource="s3.amazonaws.com", eventName=names)
    ]


@answer("32-tls-versions")
def _(evs):
    return group((e for e in evs if s(e, "tlsDetails.tlsVersion") is not None),
                 lambda e: dict(tlsversion=s(e, "tlsDetails.tlsVersion")), calls=count,
                 principals=lambda es: distinct(es, lambda e: s(e, "userIdentity.arn")))


def resources(e):
    rs = e.get("resources")
    return [r for r in rs if isinstance(r, dict)] if isinstance(rs, list) else []


@answer("33-iam-roles-touched")
def _(evs):
    pairs = [(r, e) for e in evs for r in resources(e) if field(r, "type") == "AWS::IAM::Role"]
    rows = group(pairs, lambda p: dict(role=field(p[0], "arn")), events=count,
                 principals=lambda ps: distinct(ps, lambda p: s(p[1], "userIdentity.arn")))
    return rows


@answer("34-events-on-kms-keys")
def _(evs):
    chosen = [e for e in evs if any(field(r, "type") == "AWS::KMS::Key" for r in resources(e))]
    return group(chosen, lambda e: dict(eventname=s(e, "eventName")), events=count)


@answer("35-request-parameter-keys")
def _(evs):
    names = [k for e in evs if boolean(e.get("readOnly")) is False and isinstance(e.get("requestParameters"), dict)
             for k in e["requestParameters"]]
    rows = [dict(name=k, events=n) for k, n in Counter(names).items()]
    return sorted(rows, key=lambda r: (-r["events"], r["name"]))[:15]


def canonical_rows(rows):
    """Rows as sorted JSON texts, NULL columns left out (as `--format json` leaves them out)."""
    return sorted(json.dumps({k: v for k, v in r.items() if v is not None}, sort_keys=True) for r in rows)


def check(root, results, now, examples_dir):
    evs = store_events(root, dt.datetime.fromisoformat(now.replace("Z", "+00:00")))
    names = sorted(f[:-4] for f in os.listdir(examples_dir) if f.endswith(".sql"))
    missing = [n for n in names if n not in ANSWERS]
    assert not missing, f"no independent answer for {missing}"
    failures, empty = [], []
    for name in names:
        with open(os.path.join(results, name + ".json")) as f:
            got = canonical_rows(json.load(f))
        want = canonical_rows(ANSWERS[name](evs))
        if got != want:
            only_got = sorted(set(got) - set(want))[:5]
            only_want = sorted(set(want) - set(got))[:5]
            failures.append(f"{name}: trawl {len(got)} rows, python {len(want)}\n"
                            f"  only trawl: {only_got}\n  only python: {only_want}")
        elif not want:
            empty.append(name)
        print(f"{name}: {len(want)} rows {'ok' if got == want else 'DIFFER'}")
    assert not failures, "\n".join(failures)
    # An example that finds nothing in the fixtures checks nothing: allow very few.
    assert len(empty) <= 2, f"examples without rows on the fixtures: {empty}"
    print(f"{len(names)} examples agree with the independent answers over {len(evs)} events")


if __name__ == "__main__":
    if sys.argv[1] == "check":
        check(*sys.argv[2:6])
    else:
        sys.exit(__doc__)
