#!/usr/bin/env python3
"""Audit runs at scale: what a `new-events` run costs after an hour of new commits, and the
audit daemon's memory over many wake-ups.

    python3 bench/audits.py --events 10000000 --events 1000000

For each size N (the data of bench/suite.py: N events over 2025, one file per hour per account
and region, generated when missing):
  1. `trawl ingest` everything before 2025-12-31 into a store of its own lake;
  2. `trawl audit run --once --pack builtin --pack sigma`: the first run reads the whole store;
  3. three times: `trawl ingest` the next hour of 2025-12-31, then the same `audit run --once`
     (the clock at the end of that hour): each audit reads the commits since its last run;
  4. the rest of the day at once, then the same run: a larger delta;
  5. `trawl-bench audit-loop` over the lake, the built-in and Sigma packs, the clock moved on
     15 minutes per wake-up: resident memory every 100 wake-ups.
Each step is timed (wall clock, peak RSS). Results go to WORK/audits.json and WORK/audits.md.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import suite  # noqa: E402  (run_measured, drop_caches: one way to time a process)

ROOT = suite.ROOT
PACKS = ["--pack", "builtin", "--pack", "sigma"]


def audit_run(trawl, lake, now, env):
    """`audit run --once` of both packs at `now`: (seconds, rss MiB, runs, findings)."""
    started = time.perf_counter()
    proc = subprocess.Popen([trawl, "--lake", str(lake), "audit", "run", "--once"] + PACKS,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=dict(env, TRAWL_NOW=now))
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):
        sys.exit(f"audit run failed ({code}):\n{err[-4000:]}")
    summary = next(line for line in err.splitlines() if " runs, " in line)
    runs, findings = int(summary.split()[0]), int(summary.split(", ")[1].split()[0])
    return {"seconds": round(seconds, 2), "rss_mib": round(usage.ru_maxrss / 1024), "runs": runs,
            "findings": findings}


def stored(report):
    line = next(line for line in report.splitlines() if line.strip().startswith("events"))
    return int(line.split()[3])


def one_size(n, args, trawl, gen, env, log):
    data = args.work / f"data-{n}-60m"
    manifest = data / "trawl-bench.manifest"
    wanted = {"events": n, "days": 365, "seed": 1, "fileMinutes": 60}
    if not manifest.exists() or any(json.loads(manifest.read_text()).get(k) != v for k, v in wanted.items()):
        shutil.rmtree(data, ignore_errors=True)
        log(f"generating {n} events ...")
        suite.run_measured([gen, "gen", str(data), "--events", str(n), "--days", "365", "--seed", "1",
                            "--start", "2025-01-01", "--file-minutes", "60"])
    lake = args.work / f"audit-lake-{n}"
    shutil.rmtree(lake, ignore_errors=True)
    base = [trawl, "--lake", str(lake)]
    env = dict(env, TRAWL_NOW="2026-01-01T00:00:00Z")
    suite.run_measured(base + ["store", "create", "events", "--retention-days", "3653"], env)
    log(f"{n}: ingest up to 2025-12-31 ...")
    r = suite.run_measured(base + ["ingest", "--store", "events", str(data), "--end", "2025-12-31"], env)
    out = {"events": n, "ingest": {"seconds": round(r.seconds, 1), "stored": stored(r.stdout)}}
    suite.drop_caches()
    log(f"{n}: first audit run ...")
    out["first run"] = audit_run(trawl, lake, "2025-12-31T00:00:00Z", env)
    out["deltas"] = []
    for start, end, label in [("00", "01", "1 hour"), ("01", "02", "1 hour"), ("02", "03", "1 hour"),
                              ("03", None, "21 hours")]:
        to = f"2025-12-31T{end}:00:00Z" if end else "2026-01-01T00:00:00Z"
        r = suite.run_measured(base + ["ingest", "--store", "events", str(data), "--start",
                                       f"2025-12-31T{start}:00:00Z", "--end", to], env)
        log(f"{n}: audit run after {label} ...")
        run = audit_run(trawl, lake, to, env)
        out["deltas"].append(dict(run, delta=label, new_events=stored(r.stdout)))
    if args.loop > 0:
        log(f"{n}: audit-loop, {args.loop} wake-ups ...")
        r = suite.run_measured([gen, "audit-loop", str(lake), "--pack", str(ROOT / "sql-examples"),
                                "--pack", str(ROOT / "crates/audit/sigma/rules"), "--runs", str(args.loop),
                                "--step", "15m", "--start", "2026-01-01T00:00:00Z"], env)
        out["loop"] = json.loads(r.stdout)
    return out


def markdown(results):
    lines = ["| store | first run (whole store) | new events | run after them | RSS |", "|---|---|---|---|---|"]
    for r in results:
        first = r["first run"]
        lines.append(f"| {r['events']:,} events | {first['seconds']} s, {first['runs']} runs, "
                     f"{first['findings']:,} findings, {first['rss_mib']} MiB | | | |")
        for d in r["deltas"]:
            lines.append(f"| | | {d['delta']}: {d['new_events']:,} | {d['seconds']} s, {d['findings']:,} findings "
                         f"| {d['rss_mib']} MiB |")
    for r in results:
        if "loop" in r:
            lines += ["", f"audit-loop over {r['events']:,} events: {r['loop']['runs']} wake-ups, "
                      f"{r['loop']['audit_runs']:,} audit runs, {r['loop']['seconds']:.0f} s", "",
                      "| wake-ups | resident MiB | ms per wake-up |", "|---|---|---|"]
            lines += [f"| {s['runs']} | {s['rss_mib']:.1f} | {s['ms_per_run']:.0f} |" for s in r["loop"]["samples"]]
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, action="append", help="sizes (repeatable) [10000000]")
    ap.add_argument("--loop", type=int, default=1000, help="audit-loop wake-ups on the first size (0: none)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/trawl-bench"))
    ap.add_argument("--no-build", action="store_true")
    args = ap.parse_args()
    sizes = args.events or [10_000_000]
    env = dict(os.environ, TZ="UTC")
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release"
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "-p", "trawl", "-p", "trawl-bench"], cwd=ROOT, check=True)
    trawl, gen = str(target / "trawl"), str(target / "trawl-bench")
    log = lambda *a: print(*a, file=sys.stderr, flush=True)  # noqa: E731
    results = []
    for i, n in enumerate(sizes):
        loop = args.loop if i == 0 else 0
        results.append(one_size(n, argparse.Namespace(work=args.work, loop=loop), trawl, gen, env, log))
    report = {"date": time.strftime("%Y-%m-%d"), "machine": suite.machine(), "results": results}
    (args.work / "audits.json").write_text(json.dumps(report, indent=2))
    text = markdown(results)
    (args.work / "audits.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
