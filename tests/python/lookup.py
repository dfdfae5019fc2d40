"""Event history lookups computed over the fixture JSON itself, sharing no code with trawl.

    python3 lookup.py NOW DIR... KEY=VALUE...   prints the matching eventIDs, newest first, a line each

The events are those a store of ten years' retention at NOW holds (`examples.store_events`).
"""
import datetime as dt
import re
import sys

import examples


def username(e):
    identity = e.get("userIdentity") or {}
    if identity.get("userName"):
        return identity["userName"]
    arn = identity.get("arn") or ""
    return arn.replace(":", "/").rsplit("/", 1)[-1] if arn else None


def name_of(arn):
    """An ARN's last part: a bucket's name, an instance's id."""
    return re.split(r"[:/]", arn)[-1] if arn else None


def matches(e, key, value):
    resources = e.get("resources") or []
    return {
        "EventName": lambda: e.get("eventName") == value,
        "EventSource": lambda: e.get("eventSource") == value,
        "Username": lambda: username(e) == value,
        "ResourceType": lambda: any(r.get("type") == value for r in resources),
        "ResourceName": lambda: any(value in (r.get("ARN"), name_of(r.get("ARN"))) for r in resources),
        "AccessKeyId": lambda: (e.get("userIdentity") or {}).get("accessKeyId") == value,
        "EventId": lambda: e.get("eventID") == value,
        "ReadOnly": lambda: str(e.get("readOnly")).lower() == value,
    }[key]()


def main(now, *args):
    now = dt.datetime.fromisoformat(now.replace("Z", "+00:00"))
    roots = [a for a in args if "=" not in a]
    pairs = [a.split("=", 1) for a in args if "=" in a]
    found = [e for root in roots for e in examples.store_events(root, now)
             if e.get("eventID") and all(matches(e, k, v) for k, v in pairs)]
    # Newest first, ties by id, as trawl orders them.
    found.sort(key=lambda e: e["eventID"])
    found.sort(key=lambda e: e["_time"], reverse=True)
    for e in found:
        print(e["eventID"])


if __name__ == "__main__":
    main(*sys.argv[1:])
