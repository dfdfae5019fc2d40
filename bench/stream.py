#!/usr/bin/env python3
"""Peak memory of results that stream: `SELECT * FROM events` over stores of growing size.

    python3 bench/stream.py --events 1000000 3000000 10000000

For each size: `trawl-bench gen` writes the trail bucket (kept in WORK/data-N-60m, shared with
suite.py), `trawl ingest` builds the store (kept in WORK/stream-lake-N), then each output below
runs once and its peak RSS is read from wait4:
  - table:   `SELECT * FROM events --max-rows 100`, the first 100 rows as a table, the rest counted
  - parquet: `SELECT * FROM events -o out.parquet`, every row, batch by batch
If results stream, the peaks stay flat as the store grows; a result held whole grows with it.
Prints a Markdown table (BENCHMARKS.md) and writes WORK/stream.json. Needs a release build.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from suite import ROOT, machine, run_measured  # noqa: E402

OUTPUTS = {
    "table (100 rows)": ["SELECT * FROM events", "--max-rows", "100"],
    "Parquet file": ["SELECT * FROM events", "-o", "{out}"],
}


def measured(cmd, env):
    """Runs cmd, its stdout thrown away, with os.wait4 for its own peak RSS: (seconds, MiB)."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{err[-4000:].decode(errors='replace')}")
    return time.perf_counter() - started, usage.ru_maxrss / 1024


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, nargs="+", default=[1_000_000, 3_000_000, 10_000_000])
    ap.add_argument("--work", type=Path, default=Path("/tmp/trawl-bench"))
    args = ap.parse_args()
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release"
    trawl, gen = str(target / "trawl"), str(target / "trawl-bench")
    env = dict(os.environ, TZ="UTC")
    log = lambda *a: print(*a, file=sys.stderr, flush=True)  # noqa: E731
    rows = []
    for n in args.events:
        data = args.work / f"data-{n}-60m"
        manifest = data / "trawl-bench.manifest"
        if not manifest.exists() or json.loads(manifest.read_text()).get("events") != n:
            log(f"generating {n} events ...")
            run_measured([gen, "gen", str(data), "--events", str(n), "--days", "365", "--seed", "1",
                          "--start", "2025-01-01", "--file-minutes", "60"])
        lake = args.work / f"stream-lake-{n}"
        base = [trawl, "--lake", str(lake)]
        if not (lake / "events").exists():
            log(f"ingesting {n} events ...")
            run_measured(base + ["store", "create", "events"], env)
            run_measured(base + ["ingest", "--store", "events", str(data)], env)
        store = run_measured(base + ["store", "show", "events", "--json"], env)
        summary = json.loads(store.stdout)["summary"]
        row = {"events": n, "stored": summary["events"], "store_bytes": summary["bytes"], "outputs": {}}
        out = args.work / f"stream-{n}.parquet"
        for name, argv in OUTPUTS.items():
            argv = [a.replace("{out}", str(out)) for a in argv]
            log(f"{n}: {name} ...")
            seconds, rss = measured(base + ["query", "-q"] + argv, env)
            row["outputs"][name] = {"seconds": round(seconds, 1), "rss_mib": round(rss)}
        out.unlink(missing_ok=True)
        rows.append(row)
    result = {"date": time.strftime("%Y-%m-%d"), "machine": machine(), "rows": rows}
    (args.work / "stream.json").write_text(json.dumps(result, indent=2))
    names = list(OUTPUTS)
    print("| events | store on disk | " + " | ".join(f"{n}: peak RSS, wall" for n in names) + " |")
    print("|---:|---:|" + "---:|" * len(names))
    for row in rows:
        cells = [f"{row['outputs'][n]['rss_mib']} MiB, {row['outputs'][n]['seconds']} s" for n in names]
        print(f"| {row['stored']:,} | {row['store_bytes'] / 2**20:,.0f} MiB | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
