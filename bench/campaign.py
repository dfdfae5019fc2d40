#!/usr/bin/env python3
"""The fault campaign of issue 23, at scale, against the release binary.

    python3 bench/campaign.py --events 200000 --kills 40 --races 5 --flips 60 --hangs 20

Steps, on a generated trail of EVENTS events in 5-minute files over 10 days (trawl-bench gen):
  kills   kill -9 of `trawl ingest` at a random time of an uninterrupted run, then the rerun;
          after both: the store opens, count = distinct (eventid, account), and after the rerun
          every event of the trail is there.
  races   two `trawl ingest` of the same trail at once: both exit 0, count = distinct = all.
  flips   one bit of a data file flipped, a query over every file: the same answer, or an
          error naming the store and the file (never another answer with exit 0).
  hangs   GROUP BY eventjson under --memory-mib 256-300 with a 300 s timeout.
Prints a table of trials, lost, duplicated, unreadable, panics, hangs and silent wrong answers.
"""

import argparse
import hashlib
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TRAWL = ROOT / "target/release/trawl"
GEN = ROOT / "target/release/trawl-bench"
ENV = dict(os.environ, TRAWL_NOW="2026-12-31T00:00:00Z")
COUNT = "SELECT count(*) AS n, count(DISTINCT concat(eventid, '/', recipientaccountid)) AS d FROM audit"


def trawl(lake, *args, check=True, timeout=None):
    p = subprocess.run([str(TRAWL), "--lake", str(lake), *args], capture_output=True, env=ENV, timeout=timeout)
    if check and p.returncode not in (0, 3):
        sys.exit(f"trawl {' '.join(args)} failed ({p.returncode}):\n{p.stderr.decode()}")
    return p


def counts(lake):
    p = trawl(lake, "query", "-q", "--format", "csv", COUNT, check=False)
    if p.returncode != 0:
        return None, p.stderr.decode()
    n, d = p.stdout.decode().splitlines()[1].split(",")
    return (int(n), int(d)), ""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--kills", type=int, default=40)
    ap.add_argument("--races", type=int, default=5)
    ap.add_argument("--flips", type=int, default=60)
    ap.add_argument("--hangs", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--work", type=Path, default=Path("/tmp/trawl-campaign"))
    args = ap.parse_args()
    rng = random.Random(args.seed)
    work = args.work
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    data = work / "trail"
    subprocess.run([str(GEN), "gen", str(data), "--events", str(args.events), "--days", "10",
                    "--start", "2026-12-01", "--seed", str(args.seed)], check=True, capture_output=True)
    files = sum(1 for _ in data.rglob("*.json.gz"))
    row = {}

    # The reference: one uninterrupted run.
    ref = work / "ref"
    started = time.monotonic()
    trawl(ref, "ingest", str(data), "--store", "audit", "--create")
    full = time.monotonic() - started
    (total, distinct), _ = counts(ref)
    assert total == distinct, f"the reference run stored duplicates: {total} against {distinct}"
    print(f"{files} files, {distinct} events, an uninterrupted ingest takes {full:.1f} s", flush=True)

    def tally(name, trials, **figures):
        row[name] = dict(trials=trials, **figures)
        print(name, row[name], flush=True)

    # kill -9 at a random point of an ingest, then the rerun.
    lost = dup = unreadable = panics = 0
    for _ in range(args.kills):
        lake = work / "kill"
        shutil.rmtree(lake, ignore_errors=True)
        child = subprocess.Popen([str(TRAWL), "--lake", str(lake), "ingest", str(data), "--store", "audit", "--create"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV)
        time.sleep(rng.uniform(0, full))
        child.send_signal(signal.SIGKILL)
        _, err = child.communicate()
        panics += b"panicked" in err
        got, why = counts(lake) if (lake / "audit").exists() else ((0, 0), "")
        if got is None:
            unreadable += 1
            print("unreadable after the kill:", why)
        elif got[0] != got[1]:
            dup += 1
        p = trawl(lake, "ingest", str(data), "--store", "audit", "--create", check=False)
        panics += b"panicked" in p.stderr
        got, why = counts(lake)
        if got is None:
            unreadable += 1
            print("unreadable after the rerun:", why)
            continue
        dup += got[0] != got[1]
        lost += got[1] != distinct
    tally("kill -9 of ingest", args.kills, lost=lost, duplicated=dup, unreadable=unreadable, panics=panics)

    # Two ingests of the same trail at once.
    lost = dup = failed = 0
    for _ in range(args.races):
        lake = work / "race"
        shutil.rmtree(lake, ignore_errors=True)
        runs = [subprocess.Popen([str(TRAWL), "--lake", str(lake), "ingest", str(data), "--store", "audit", "--create"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV) for _ in range(2)]
        failed += sum(r.wait() != 0 for r in runs)
        got, _ = counts(lake)
        dup += got is None or got[0] != got[1]
        lost += got is None or got[1] != distinct
    tally("two ingests at once", args.races, lost=lost, duplicated=dup, failed=failed)

    # Bit flips in the reference store's data files.
    sql = "SELECT eventid, eventtime, sourceipaddress, useridentity.arn, eventjsonchecksum FROM audit ORDER BY eventid"
    answer = lambda: trawl(ref, "query", "-q", "--format", "csv", sql, check=False)
    base = hashlib.sha256(answer().stdout).hexdigest()
    parquet = sorted(p for p in (ref / "audit").rglob("*.parquet") if "_delta_log" not in str(p))
    named = same = wrong = other = 0
    for _ in range(args.flips):
        path = rng.choice(parquet)
        original = path.read_bytes()
        flipped = bytearray(original)
        at = rng.randrange(len(flipped))
        flipped[at] ^= 1 << rng.randrange(8)
        path.write_bytes(flipped)
        try:
            p = answer()
        finally:
            path.write_bytes(original)
        err = p.stderr.decode()
        if p.returncode == 0:
            equal = hashlib.sha256(p.stdout).hexdigest() == base
            same += equal
            wrong += not equal
        elif "is damaged" in err and path.name in err:
            named += 1
        else:
            other += 1
            print("flip not named:", err.strip()[:200])
    tally("bit flips", args.flips, error_naming_file=named, same_answer=same, silent_wrong=wrong, other_error=other)

    # GROUP BY under a memory limit.
    hung = failed = 0
    for i in range(args.hangs):
        mib = 256 + 22 * (i % 3)
        try:
            p = trawl(ref, "query", "-q", "--memory-mib", str(mib), "--format", "csv",
                      "SELECT eventjson, count(*) AS n FROM audit GROUP BY eventjson ORDER BY n DESC LIMIT 3",
                      check=False, timeout=300)
            failed += p.returncode != 0
        except subprocess.TimeoutExpired:
            hung += 1
    tally("GROUP BY eventjson under --memory-mib", args.hangs, hung=hung, failed=failed)

    print("\n| step | trials | figures |\n|---|---|---|")
    for name, figures in row.items():
        trials = figures.pop("trials")
        print(f"| {name} | {trials} | " + ", ".join(f"{k} {v}" for k, v in figures.items()) + " |")


if __name__ == "__main__":
    main()
