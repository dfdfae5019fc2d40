"""Event history lookups computed over the fixture JSON itself, sharing no code with trawl.

    python3 lookup.py DIR... KEY=VALUE...   prints the matching eventIDs, newest first, a line each
"""
import datetime
import gzip
import json
import os
import sys


def records(doc):
    if isinstance(doc, dict) and "Records" in doc:
        return doc["Records"]
    if isinstance(doc, dict):
        return [doc]
    return doc if isinstance(doc, list) else []


def events(root):
    """Every record of the files trawl reads (.json, .jsonl, .ndjson, gzipped or not): a whole
    document, else a document per line."""
    for dirpath, _, files in os.walk(root):
        for name in sorted(files):
            path = os.path.join(dirpath, name)
            plain = name[:-3] if name.endswith(".gz") else name
            if not plain.endswith((".json", ".jsonl", ".ndjson")):
                continue
            opener = gzip.open if name.endswith(".gz") else open
            try:
                with opener(path, "rt") as f:
                    text = f.read()
            except (OSError, UnicodeDecodeError):
                continue
            try:
                docs = [json.loads(text)]
            except ValueError:
                docs = []
                for line in text.splitlines():
                    try:
                        docs.append(json.loads(line))
                    except ValueError:
                        continue
            for doc in docs:
                for record in records(doc):
                    if isinstance(record, dict) and record.get("eventID") and when(record):
                        yield record


def when(e):
    """The event's time (Elastic exports carry it as @timestamp only), UTC."""
    text = e.get("eventTime") or e.get("@timestamp")
    if not isinstance(text, str):
        return None
    try:
        t = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return t.astimezone(datetime.timezone.utc) if t.tzinfo else t.replace(tzinfo=datetime.timezone.utc)


def username(e):
    identity = e.get("userIdentity") or {}
    if identity.get("userName"):
        return identity["userName"]
    arn = identity.get("arn") or ""
    return arn.replace(":", "/").rsplit("/", 1)[-1] if arn else None


def matches(e, key, value):
    resources = e.get("resources") or []
    return {
        "EventName": lambda: e.get("eventName") == value,
        "EventSource": lambda: e.get("eventSource") == value,
        "Username": lambda: username(e) == value,
        "ResourceType": lambda: any(r.get("type") == value for r in resources),
        "ResourceName": lambda: any(r.get("ARN") == value for r in resources),
        "AccessKeyId": lambda: (e.get("userIdentity") or {}).get("accessKeyId") == value,
        "EventId": lambda: e.get("eventID") == value,
        "ReadOnly": lambda: str(e.get("readOnly")).lower() == value,
    }[key]()


def main(*args):
    roots = [a for a in args if "=" not in a]
    pairs = [a.split("=", 1) for a in args if "=" in a]
    found = {e["eventID"]: when(e) for root in roots for e in events(root)
             if all(matches(e, k, v) for k, v in pairs)}
    ordered = sorted(found.items(), key=lambda kv: kv[0])
    ordered = sorted(ordered, key=lambda kv: kv[1], reverse=True)
    for event_id, _ in ordered:
        print(event_id)


if __name__ == "__main__":
    main(*sys.argv[1:])
