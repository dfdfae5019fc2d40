"""Two trawl binaries on the same store, query by query: the suite's queries, each run warm by the
two binaries in turn, median seconds (for build settings: profiles, LTO, opt-levels).

  python3 bench/ab.py LAKE BINARY_A BINARY_B [--runs 5]

LAKE is a lake `bench/suite.py` made (its stores `events` and `writes`).
"""
import argparse
import os
import statistics
import subprocess
import time

import suite


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("lake")
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    env = dict(os.environ, TZ="UTC")
    run = lambda binary, sql: subprocess.run(  # noqa: E731
        [binary, "--lake", args.lake, "query", "--format", "csv", sql], capture_output=True, env=env, check=True)
    print(f"| query | {args.a} | {args.b} | ratio |\n|---|---:|---:|---:|")
    for q in suite.QUERIES:
        run(args.a, q.sql)
        run(args.b, q.sql)
        times = {args.a: [], args.b: []}
        for _ in range(args.runs):
            for binary in (args.a, args.b):
                start = time.perf_counter()
                run(binary, q.sql)
                times[binary].append(time.perf_counter() - start)
        a, b = (statistics.median(times[x]) for x in (args.a, args.b))
        print(f"| {q.name} | {a:.2f} | {b:.2f} | {b / a:.2f} |", flush=True)


if __name__ == "__main__":
    main()
