#!/usr/bin/env python3
"""`trawl optimize` on a store built from many small commits, and the suite's queries before and after.

    python3 bench/optimize.py --events 1000000 [--commit-mib 1]

Ingests the generator's trail of N events (WORK/data-N-60m, made by bench/audits.py or
`trawl-bench gen`) in commits of --commit-mib of JSON, as many small ingests (hourly cron,
`--follow`) leave a store: several files a day. Then times the queries of bench/suite.py (warm,
the median of three runs each), runs `trawl optimize` (timed, with its peak RSS), checks that
every answer is the same, and times the queries again. Prints a Markdown table for BENCHMARKS.md.
"""

import argparse
import os
import re
import statistics
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import suite  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--commit-mib", type=int, default=1)
    p.add_argument("--work", default="/tmp/trawl-bench")
    a = p.parse_args()
    work = Path(a.work)
    data = work / f"data-{a.events}-60m"
    if not (data / "trawl-bench.manifest").exists():
        sys.exit(f"no trail at {data}: `python3 bench/audits.py --events {a.events} --loop 0` makes it")
    trawl = str(ROOT / "target/release/trawl")
    lake = work / f"optimize-lake-{a.events}"
    shutil.rmtree(lake, ignore_errors=True)
    env = dict(os.environ, TRAWL_NOW="2026-01-01T00:00:00Z")
    base = [trawl, "--lake", str(lake)]
    suite.run_measured(base + ["store", "create", "events", "--retention-days", "3653"], env)
    suite.run_measured(base + ["store", "create", "writes", "--retention-days", "3653"], env)
    r = suite.run_measured(base + ["ingest", str(data), "--store", "events", "--commit-mib", str(a.commit_mib)], env)
    print(f"ingest: {r.seconds:.1f} s", file=sys.stderr)
    # `writes` as the suite fills it: June's write events (a query of the suite reads it).
    june = sorted(data.glob("AWSLogs/*/CloudTrail/*/2025/06"))
    suite.run_measured(base + ["ingest", *map(str, june), "--store", "writes", "--commit-mib", str(a.commit_mib)], env)

    def files():
        out = suite.run_measured(base + ["store", "show", "events"], env).stdout
        return int(re.search(r"^files\s+(\d+)", out, re.M)[1])

    event_id = suite.pick_event_id(data)

    def queries():
        times, answers = {}, {}
        for q in suite.QUERIES:
            sql = q.sql.replace("{EVENTID}", event_id)
            runs = [suite.run_measured(base + ["query", "--format", "csv", sql], env) for _ in range(3)]
            times[q.name] = (statistics.median(r.seconds for r in runs), suite.stats(runs[-1].stderr))
            answers[q.name] = suite.normalize(runs[-1].stdout)
        return times, answers

    before_files = files()
    before, answers_before = queries()
    r = suite.run_measured(base + ["optimize"], env)
    print(r.stdout.strip(), file=sys.stderr)
    after_files = files()
    after, answers_after = queries()
    changed = [n for n in answers_before if answers_before[n] != answers_after[n]]
    if changed:
        sys.exit(f"answers changed by optimize: {changed}")
    print(f"`optimize`: {r.seconds:.1f} s, peak RSS {r.rss_mib:.0f} MiB; files of `events`: "
          f"{before_files} before, {after_files} after; every answer the same.\n")
    print("| query | before (warm) | files scanned | after (warm) | files scanned | speed-up |")
    print("|---|---:|---:|---:|---:|---:|")
    for q in suite.QUERIES:
        (tb, sb), (ta, sa) = before[q.name], after[q.name]
        print(f"| {q.name} | {tb:.2f} s | {sb.get('files scanned', '')} | {ta:.2f} s | "
              f"{sa.get('files scanned', '')} | {tb / ta:.1f}x |")


if __name__ == "__main__":
    main()
