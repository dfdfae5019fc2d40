"""Trail-shaped input for the ingest macro benchmark: COPIES gzipped {"Records":[...]} files,
each holding the real Stratus Red Team events of the fixtures with eventIDs made unique.

  python3 bench/make_input.py OUT_DIR COPIES
"""
import glob
import gzip
import json
import os
import sys

out, copies = sys.argv[1], int(sys.argv[2])
root = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "stratus-red-team-detonation-logs")
events = []
for path in sorted(glob.glob(os.path.join(root, "*.json"))):
    events.extend(json.load(open(path)))
os.makedirs(out, exist_ok=True)
for i in range(copies):
    records = []
    for e in events:
        e = dict(e)
        e["eventID"] = f"{e['eventID']}-{i}"
        records.append(e)
    name = os.path.join(out, f"123456789012_CloudTrail_us-east-1_{i:06d}.json.gz")
    with gzip.open(name, "wt") as f:
        json.dump({"Records": records}, f, separators=(",", ":"))
print(f"{copies} files, {copies * len(events)} events in {out}")
