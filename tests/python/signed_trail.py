"""Builds a trail as CloudTrail delivers it, signed with a key of our own, without trawl's code.

  signed_trail.py build OUT
      OUT/trail/: a mirror of the bucket `trail-bucket` (log files and hourly digests of trail
      `audit`, account 111122223333, us-east-1, 2024-03-01 00:00 to 05:00, each digest's
      signature beside it as NAME.sig, the newest digest's too); OUT/keys.json: the public key
      as `aws cloudtrail list-public-keys` prints it; OUT/wrong-keys.json: another key under
      the same fingerprint. Prints the digest and log file counts as JSON.
  signed_trail.py upload ENDPOINT BUCKET DIR
      puts the mirror DIR into BUCKET, each digest's signature as its `x-amz-meta-signature`.

The digests follow CLOUDTRAIL-LAKE.md §5.3: SHA256withRSA (PKCS#1 v1.5) over
"digestEndTime\\nbucket/key\\nhex(SHA-256 of the inflated digest)\\nprevious signature or null",
log file hashes over the uncompressed files, each digest linked to the one before by its hash
and signature.
"""
import base64
import datetime as dt
import gzip
import hashlib
import json
import os
import sys

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

ACCOUNT, REGION, TRAIL, BUCKET = "111122223333", "us-east-1", "audit", "trail-bucket"


def public_entry(key):
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    return der


def keys_file(path, der, fingerprint):
    listing = {"PublicKeyList": [{
        "Value": base64.b64encode(der).decode(),
        "ValidityStartTime": "2024-01-01T00:00:00Z",
        "ValidityEndTime": "2025-01-01T00:00:00Z",
        "Fingerprint": fingerprint,
    }]}
    with open(path, "w") as f:
        json.dump(listing, f)


def write(root, key, data):
    path = os.path.join(root, key)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def build(out):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    der = public_entry(key)
    fingerprint = hashlib.md5(der).hexdigest()
    keys_file(os.path.join(out, "keys.json"), der, fingerprint)
    other = public_entry(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    keys_file(os.path.join(out, "wrong-keys.json"), other, fingerprint)
    root = os.path.join(out, "trail")
    base = dt.datetime(2024, 3, 1, tzinfo=dt.timezone.utc)
    previous = None  # (key, inflated bytes, signature)
    logs = 0
    hours = 5
    for hour in range(hours):
        start, end = base + dt.timedelta(hours=hour), base + dt.timedelta(hours=hour + 1)
        day = start.strftime("%Y/%m/%d")
        files = []
        # Two log files an hour, the last hour none: an empty digest is delivered all the same.
        for n in range(2 if hour < hours - 1 else 0):
            t = start + dt.timedelta(minutes=10 + 20 * n)
            stamp = t.strftime("%Y%m%dT%H%MZ")
            name = f"AWSLogs/{ACCOUNT}/CloudTrail/{REGION}/{day}/{ACCOUNT}_CloudTrail_{REGION}_{stamp}_h{hour}n{n}.json.gz"
            events = [{
                "eventVersion": "1.09", "eventTime": (t + dt.timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "eventSource": "s3.amazonaws.com", "eventName": "GetObject", "awsRegion": REGION,
                "eventID": f"00000000-0000-4000-8000-{hour:04d}{n:04d}{i:04d}",
                "recipientAccountId": ACCOUNT, "eventType": "AwsApiCall", "readOnly": True,
                "userIdentity": {"type": "IAMUser", "userName": "alice", "accountId": ACCOUNT},
            } for i in range(3)]
            text = json.dumps({"Records": events}).encode()
            write(root, name, gzip.compress(text))
            files.append({"s3Bucket": BUCKET, "s3Object": name, "hashValue": hashlib.sha256(text).hexdigest(),
                          "hashAlgorithm": "SHA-256",
                          "newestEventTime": events[-1]["eventTime"], "oldestEventTime": events[0]["eventTime"]})
            logs += 1
        end_text = end.strftime("%Y-%m-%dT%H:%M:%SZ")
        digest_key = (f"AWSLogs/{ACCOUNT}/CloudTrail-Digest/{REGION}/{day}/"
                      f"{ACCOUNT}_CloudTrail-Digest_{REGION}_{TRAIL}_{REGION}_{end.strftime('%Y%m%dT%H%M%SZ')}.json.gz")
        digest = {
            "awsAccountId": ACCOUNT,
            "digestStartTime": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "digestEndTime": end_text,
            "digestS3Bucket": BUCKET,
            "digestS3Object": digest_key,
            "digestPublicKeyFingerprint": fingerprint,
            "digestSignatureAlgorithm": "SHA256withRSA",
            "newestEventTime": None, "oldestEventTime": None,
            "previousDigestS3Bucket": BUCKET if previous else None,
            "previousDigestS3Object": previous[0] if previous else None,
            "previousDigestHashValue": hashlib.sha256(previous[1]).hexdigest() if previous else None,
            "previousDigestHashAlgorithm": "SHA-256" if previous else None,
            "previousDigestSignature": previous[2] if previous else None,
            "logFiles": files,
        }
        inflated = json.dumps(digest).encode()
        to_sign = "\n".join([end_text, f"{BUCKET}/{digest_key}", hashlib.sha256(inflated).hexdigest(),
                             previous[2] if previous else "null"]).encode()
        signature = key.sign(to_sign, padding.PKCS1v15(), hashes.SHA256()).hex()
        write(root, digest_key, gzip.compress(inflated))
        write(root, digest_key + ".sig", signature.encode())
        previous = (digest_key, inflated, signature)
    print(json.dumps({"digests": hours, "logs": logs}))


def upload(endpoint, bucket, directory):
    import boto3
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    s3.create_bucket(Bucket=bucket)
    count = 0
    for folder, _, names in os.walk(directory):
        for name in names:
            if name.endswith(".sig"):
                continue
            path = os.path.join(folder, name)
            key = os.path.relpath(path, directory)
            extra = {}
            if os.path.exists(path + ".sig"):
                with open(path + ".sig") as f:
                    extra["Metadata"] = {"signature": f.read().strip(), "signature-algorithm": "SHA256withRSA"}
            with open(path, "rb") as f:
                s3.put_object(Bucket=bucket, Key=key, Body=f.read(), **extra)
            count += 1
    print(count)


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    {"build": build, "upload": upload}[command](*args)
