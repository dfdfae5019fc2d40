"""S3 test data for trawl, written and read with boto3 on an S3-compatible server (moto).

  s3_trail.py bucket ENDPOINT BUCKET        creates a bucket
  s3_trail.py layout ENDPOINT BUCKET [N]    a trail bucket layout made from the stratus-red-team
                                            fixture events, N files per account, region and day
                                            (default 3); prints a JSON summary
  s3_trail.py add ENDPOINT BUCKET DAY       one more log file on DAY (YYYY-MM-DD); prints its
                                            event count
  s3_trail.py download ENDPOINT BUCKET PREFIX DIR
                                            every object under PREFIX/ to DIR, keyed by the
                                            rest of its key; prints the object count
  s3_trail.py iam ENDPOINT                  an IAM user with an access key allowed s3:*; prints
                                            "KEY SECRET" (moto checks keys once auth is on)

The layout: accounts 111111111111 and 222222222222 (a trail of each) and an organization trail
o-trawltest1 holding account 333333333333; regions us-east-1 and eu-west-1; days 2026-03-01 to
2026-03-10; N files per account, region and day, events spread over the day's hours. Next to
it: CloudTrail-Digest/ files, CloudTrail-Insight/ files (Insights events) and a Config/ file,
which an import must leave out. Event ids are unique; every event's time is inside its file's day.
"""
import datetime
import glob
import gzip
import hashlib
import json
import os
import random
import sys
import uuid

import boto3

ROOT = os.path.join(os.path.dirname(__file__), "..", "fixtures", "stratus-red-team-detonation-logs")
OWNERS = [("", "111111111111"), ("", "222222222222"), ("o-trawltest1/", "333333333333")]
REGIONS = ["us-east-1", "eu-west-1"]
FIRST_DAY = datetime.date(2026, 3, 1)
DAYS = 10


def client(endpoint):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
    )


def templates():
    events = []
    for path in sorted(glob.glob(os.path.join(ROOT, "*.json"))):
        with open(path) as f:
            data = json.load(f)
        events.extend(e for e in (data if isinstance(data, list) else data.get("Records", [])) if isinstance(e, dict))
    return events


def make_file(rng, pool, account, region, day, index):
    records = []
    for n in range(rng.randint(3, 8)):
        event = json.loads(json.dumps(rng.choice(pool)))
        hour = rng.randint(0, 23)
        at = datetime.datetime(day.year, day.month, day.day, hour, rng.randint(0, 59), rng.randint(0, 59))
        event["eventTime"] = at.strftime("%Y-%m-%dT%H:%M:%SZ")
        event["eventID"] = str(uuid.UUID(bytes=hashlib.md5(f"{account}{region}{day}{index}{n}".encode()).digest()))
        event["recipientAccountId"] = account
        event["awsRegion"] = region
        records.append(event)
    return records


def put_gz(s3, bucket, name, value):
    s3.put_object(Bucket=bucket, Key=name, Body=gzip.compress(json.dumps(value).encode()))


def bucket(endpoint, name):
    client(endpoint).create_bucket(Bucket=name)


def layout(endpoint, bucket, files_per_day="3"):
    s3 = client(endpoint)
    s3.create_bucket(Bucket=bucket)
    rng = random.Random(7)
    pool = templates()
    per_day = {}
    files = 0
    for org, account in OWNERS:
        base = f"AWSLogs/{org}{account}"
        for region in REGIONS:
            for d in range(DAYS):
                day = FIRST_DAY + datetime.timedelta(days=d)
                for index in range(int(files_per_day)):
                    records = make_file(rng, pool, account, region, day, index)
                    name = (
                        f"{base}/CloudTrail/{region}/{day:%Y/%m/%d}/"
                        f"{account}_CloudTrail_{region}_{day:%Y%m%d}T{index % 24:02d}05Z_{index:016d}.json.gz"
                    )
                    put_gz(s3, bucket, name, {"Records": records})
                    per_day[str(day)] = per_day.get(str(day), 0) + len(records)
                    files += 1
            # What an import leaves out.
            day = FIRST_DAY
            digest = {"awsAccountId": account, "digestStartTime": "2026-03-01T00:00:00Z", "logFiles": []}
            put_gz(s3, bucket, f"{base}/CloudTrail-Digest/{region}/{day:%Y/%m/%d}/{account}_CloudTrail-Digest_{region}_x.json.gz", digest)
            insight = dict(rng.choice(pool), eventType="AwsCloudTrailInsight", eventCategory="Insight", eventID=str(uuid.uuid4()))
            put_gz(s3, bucket, f"{base}/CloudTrail-Insight/{region}/{day:%Y/%m/%d}/{account}_CloudTrail-Insight_{region}_x.json.gz", {"Records": [insight]})
        put_gz(s3, bucket, f"{base}/Config/us-east-1/2026/3/1/ConfigHistory/x.json.gz", {"configurationItems": []})
    print(json.dumps({"files": files, "events": sum(per_day.values()), "per_day": per_day}))


def add(endpoint, bucket, day):
    s3 = client(endpoint)
    day = datetime.date.fromisoformat(day)
    rng = random.Random(day.toordinal())
    records = make_file(rng, templates(), "111111111111", "us-east-1", day, 2)
    for r in records:
        r["eventID"] = str(uuid.UUID(bytes=hashlib.md5(("late" + r["eventID"]).encode()).digest()))
    name = f"AWSLogs/111111111111/CloudTrail/us-east-1/{day:%Y/%m/%d}/111111111111_CloudTrail_us-east-1_{day:%Y%m%d}T2355Z_late000000000000.json.gz"
    put_gz(s3, bucket, name, {"Records": records})
    print(len(records))


def download(endpoint, bucket, prefix, into):
    s3 = client(endpoint)
    count = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
        for obj in page.get("Contents", []):
            path = os.path.join(into, obj["Key"][len(prefix) + 1:])
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
            count += 1
    print(count)


def iam(endpoint):
    iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
    iam.create_user(UserName="auditor")
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
    iam.put_user_policy(UserName="auditor", PolicyName="s3", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName="auditor")["AccessKey"]
    print(key["AccessKeyId"], key["SecretAccessKey"])


def iam_reader(endpoint):
    """An auditor allowed all of S3 and a reader allowed only to read, a line of keys each."""
    iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
    for user, actions in [("auditor", ["s3:*"]), ("reader", ["s3:GetObject", "s3:ListBucket"])]:
        iam.create_user(UserName=user)
        policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}
        iam.put_user_policy(UserName=user, PolicyName="s3", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName=user)["AccessKey"]
        print(key["AccessKeyId"], key["SecretAccessKey"])


def tamper(endpoint, bucket, action, key, other=""):
    """Changes a lake's objects behind trawl's back, as an attacker with write access would."""
    s3 = client(endpoint)
    if action == "list":
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key):
            for obj in page.get("Contents", []):
                print(obj["Key"])
        return
    if action == "delete":
        s3.delete_object(Bucket=bucket, Key=key)
        return
    if action == "copy":
        s3.copy_object(Bucket=bucket, Key=other, CopySource={"Bucket": bucket, "Key": key})
        return
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    if action == "flip":
        body = bytearray(body)
        body[len(body) // 2] ^= 0x01
        body = bytes(body)
    elif action == "replace":
        old, new = other.split("=>", 1)
        assert old.encode() in body, (old, key)
        body = body.replace(old.encode(), new.encode(), 1)
    elif action == "read":
        sys.stdout.write(body.decode())
        return
    s3.put_object(Bucket=bucket, Key=key, Body=body)


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    {"bucket": bucket, "layout": layout, "add": add, "download": download, "iam": iam, "iam-reader": iam_reader,
     "tamper": tamper}[command](*args)
