#!/usr/bin/env python3
"""trawl's benchmark suite, with DuckDB side by side on the same files.

    python3 bench/suite.py --events 10000000      # the 10-million set, one year (BENCHMARKS.md)
    python3 bench/suite.py --events 1000000       # the quick set

Steps, each timed (wall clock, peak RSS of the process from wait4):
  1. `trawl-bench gen` writes a trail bucket layout of N events over 365 days (kept between runs
     in WORK/data-N when its manifest matches).
  2. `trawl ingest` into store `events` (everything) and store `writes` (management write events,
     from the June day prefixes only); the DuckDB CLI converts the same files to zstd Parquet
     partitioned by day, deduplicated on (eventID, recipientAccountId) as trawl does. With
     --duckdb-package, the `duckdb` Python package (DuckDB 2.0, whose conversion of hourly trail
     files is the reference figure of BENCHMARKS.md; the CLI on PyPI stops at 1.5.6) converts
     the `events` files too, with the same statement, into a directory that only its size is
     taken from.
  3. The audit queries of QUERIES, each from the command line (one process per run): trawl over
     its stores, the DuckDB CLI over its Parquet, and over the raw JSON (every query with
     --json all, else only the raw-trail week query). Cold runs follow a page cache drop (when
     /proc/sys/vm/drop_caches is writable), warm figures are the median of three runs. Results
     are compared after normalizing timestamps; a difference fails the suite.
  4. The raw-trail query: one week of the year through `trawl query --trail`, against DuckDB's
     read_json over the whole bucket.

Results go to WORK/results-N.json and WORK/results-N.md (the tables of BENCHMARKS.md) and an SVG
chart of the query times, WORK/queries-N.svg. Needs a release build (done here unless
--no-build), the DuckDB CLI (`pip install duckdb-cli`; found on PATH or next to this Python)
and, for --duckdb-package, the `duckdb` package for this Python (`pip install duckdb`).
"""

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WEEK = ("2025-06-02 00:00:00", "2025-06-09 00:00:00")
MONTH = ("2025-06-01 00:00:00", "2025-07-01 00:00:00")


@dataclass
class Query:
    name: str
    kind: str
    sql: str
    # DuckDB's spelling where the dialects differ (Trino's element_at is a map lookup there).
    duck: str | None = None


QUERIES = [
    Query("lookup-event-name", "point lookup", """
        SELECT eventtime, useridentity.arn, sourceipaddress, recipientaccountid
        FROM events WHERE eventname = 'CreateLoginProfile' ORDER BY eventtime, eventid"""),
    Query("lookup-access-key", "point lookup", """
        SELECT eventname, count(*) AS calls, min(eventtime) AS first, max(eventtime) AS last
        FROM events WHERE useridentity.accesskeyid = 'ASIAPHPZ47BC4LFGK2X4'
        GROUP BY eventname ORDER BY calls DESC, eventname"""),
    Query("lookup-ip", "point lookup", """
        SELECT eventtime, eventname, useridentity.type, errorcode
        FROM events WHERE sourceipaddress = '25.253.137.230' ORDER BY eventtime, eventid"""),
    Query("lookup-request-parameter", "point lookup", """
        SELECT eventtime, eventname, useridentity.arn, sourceipaddress
        FROM events WHERE element_at(requestparameters, 'bucketName') = 'secrets'
        ORDER BY eventtime, eventid""",
          duck="""
        SELECT eventtime, eventname, useridentity.arn, sourceipaddress
        FROM events WHERE requestparameters['bucketName'] = 'secrets'
        ORDER BY eventtime, eventid"""),
    Query("lookup-event-id", "point lookup", """
        SELECT eventtime, eventname, recipientaccountid, eventjson
        FROM events WHERE eventid = '{EVENTID}'"""),
    Query("week-errors", "one week", f"""
        SELECT errorcode, eventname, count(*) AS n FROM events
        WHERE eventtime >= '{WEEK[0]}' AND eventtime < '{WEEK[1]}' AND errorcode IS NOT NULL
        GROUP BY errorcode, eventname ORDER BY n DESC, errorcode, eventname LIMIT 20"""),
    Query("week-access-denied", "one week", f"""
        SELECT useridentity.arn, count(*) AS denied FROM events
        WHERE eventtime >= '{WEEK[0]}' AND eventtime < '{WEEK[1]}' AND errorcode = 'AccessDenied'
        GROUP BY useridentity.arn ORDER BY denied DESC, useridentity.arn LIMIT 10"""),
    Query("month-per-day", "one month", f"""
        SELECT date_trunc('day', eventtime) AS day, recipientaccountid, count(*) AS n FROM events
        WHERE eventtime >= '{MONTH[0]}' AND eventtime < '{MONTH[1]}'
        GROUP BY 1, 2 ORDER BY 1, 2"""),
    Query("month-top-writers", "one month", f"""
        SELECT useridentity.arn, count(*) AS writes, count(DISTINCT eventname) AS apis FROM events
        WHERE eventtime >= '{MONTH[0]}' AND eventtime < '{MONTH[1]}' AND readonly = false
        GROUP BY useridentity.arn ORDER BY writes DESC, useridentity.arn LIMIT 10"""),
    Query("full-by-service", "full range", """
        SELECT eventsource, count(*) AS n FROM events GROUP BY eventsource ORDER BY n DESC, eventsource"""),
    Query("full-root-activity", "full range", """
        SELECT recipientaccountid, eventname, count(*) AS n FROM events
        WHERE useridentity.type = 'Root' GROUP BY 1, 2 ORDER BY 1, n DESC, 2"""),
    Query("full-distinct-ips", "full range", """
        SELECT recipientaccountid, useridentity.type, count(DISTINCT sourceipaddress) AS ips
        FROM events GROUP BY 1, 2 ORDER BY 1, 2"""),
    Query("full-json-path", "full range", """
        SELECT count(*) AS n FROM events
        WHERE json_extract_scalar(eventjson, '$.userIdentity.arn') LIKE '%admin%'""",
          duck="""
        SELECT count(*) AS n FROM events
        WHERE json_extract_string(eventjson, '$.userIdentity.arn') LIKE '%admin%'"""),
    Query("join-writers-denied", "join of two stores", f"""
        SELECT w.arn, w.writes, count(e.eventid) AS denied
        FROM (SELECT useridentity.arn AS arn, count(*) AS writes FROM writes
              GROUP BY useridentity.arn ORDER BY writes DESC, arn LIMIT 10) w
        LEFT JOIN events e ON e.useridentity.arn = w.arn AND e.errorcode = 'AccessDenied'
             AND e.eventtime >= '{MONTH[0]}' AND e.eventtime < '{MONTH[1]}'
        GROUP BY w.arn, w.writes ORDER BY w.writes DESC, w.arn"""),
]
RAW_TRAIL_QUERY = "week-errors"

# DuckDB's conversion: the Lake columns the queries read, the whole event in eventjson, its
# SHA-256 as eventjsonchecksum, one row per (eventID, recipientAccountId), like trawl's stores.
DUCK_SELECT = """
    SELECT
      e->>'eventVersion' AS eventversion,
      {
        'type': e->'userIdentity'->>'type',
        'principalid': e->'userIdentity'->>'principalId',
        'arn': e->'userIdentity'->>'arn',
        'accountid': e->'userIdentity'->>'accountId',
        'accesskeyid': e->'userIdentity'->>'accessKeyId',
        'username': e->'userIdentity'->>'userName',
        'invokedby': e->'userIdentity'->>'invokedBy',
        'sessioncontext': {
          'sessionissuer': {
            'type': e->'userIdentity'->'sessionContext'->'sessionIssuer'->>'type',
            'principalid': e->'userIdentity'->'sessionContext'->'sessionIssuer'->>'principalId',
            'arn': e->'userIdentity'->'sessionContext'->'sessionIssuer'->>'arn',
            'accountid': e->'userIdentity'->'sessionContext'->'sessionIssuer'->>'accountId',
            'username': e->'userIdentity'->'sessionContext'->'sessionIssuer'->>'userName'
          },
          'attributes': {
            'creationdate': TRY_CAST(e->'userIdentity'->'sessionContext'->'attributes'->>'creationDate' AS TIMESTAMPTZ),
            'mfaauthenticated': e->'userIdentity'->'sessionContext'->'attributes'->>'mfaAuthenticated'
          }
        }
      } AS useridentity,
      CAST(e->>'eventTime' AS TIMESTAMPTZ) AS eventtime,
      e->>'eventSource' AS eventsource,
      e->>'eventName' AS eventname,
      e->>'awsRegion' AS awsregion,
      e->>'sourceIPAddress' AS sourceipaddress,
      e->>'userAgent' AS useragent,
      e->>'errorCode' AS errorcode,
      e->>'errorMessage' AS errormessage,
      CAST(e->'requestParameters' AS MAP(VARCHAR, VARCHAR)) AS requestparameters,
      CAST(e->'responseElements' AS MAP(VARCHAR, VARCHAR)) AS responseelements,
      CAST(e->'additionalEventData' AS MAP(VARCHAR, VARCHAR)) AS additionaleventdata,
      e->>'requestID' AS requestid,
      e->>'eventID' AS eventid,
      CAST(e->>'readOnly' AS BOOLEAN) AS readonly,
      e->>'eventType' AS eventtype,
      CAST(e->>'managementEvent' AS BOOLEAN) AS managementevent,
      e->>'recipientAccountId' AS recipientaccountid,
      coalesce(e->>'eventCategory', 'Management') AS eventcategory,
      CAST(e AS VARCHAR) AS eventjson,
      sha256(CAST(e AS VARCHAR)) AS eventjsonchecksum,
      CAST(CAST(e->>'eventTime' AS TIMESTAMPTZ) AS DATE) AS eventdate
    FROM (SELECT unnest(Records) AS e FROM read_json('@FILES@', columns = {'Records': 'JSON[]'}))
    @WHERE@
    @QUALIFY@
"""
QUALIFY = "QUALIFY row_number() OVER (PARTITION BY e->>'eventID', e->>'recipientAccountId') = 1"
DUCK_SELECT = DUCK_SELECT.replace("@QUALIFY@", QUALIFY)
# Store `writes` holds the management write events of June's day prefixes (of every account and region).
JUNE = "AWSLogs/*/CloudTrail/*/2025/06"
WRITES_FILTER = "WHERE e->>'readOnly' = 'false' AND coalesce(e->>'eventCategory', 'Management') = 'Management'"
WRITES_SELECTORS = json.dumps([{"Name": "management writes", "FieldSelectors": [
    {"Field": "eventCategory", "Equals": ["Management"]}, {"Field": "readOnly", "Equals": ["false"]}]}])
TIMESTAMP = re.compile(r"(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2})(\.\d+)?(Z|\+00(:00)?)?")


@dataclass
class Run:
    seconds: float
    rss_mib: float
    stdout: str
    stderr: str


def run_measured(cmd, env=None, stdin=None):
    """Runs cmd with os.wait4 for its own peak RSS."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL, text=True, env=env)
    if stdin:
        proc.stdin.write(stdin)
        proc.stdin.close()
    out = proc.stdout.read()
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(map(str, cmd))}\n{err[-4000:]}")
    return Run(seconds, usage.ru_maxrss / 1024, out, err)


def drop_caches():
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def normalize(csv_text):
    def canonical(m):
        fraction = (m.group(3) or "").rstrip("0").rstrip(".")
        return f"{m.group(1)} {m.group(2)}{fraction}"
    rows = [TIMESTAMP.sub(canonical, line) for line in csv_text.strip().splitlines()]
    return rows[1:]  # headers differ in spelling (_col1, useridentity.arn, arn ...)


# Runs SQL (its last argument) with the duckdb Python package, printing the last statement's rows.
DUCK_PACKAGE = [sys.executable, "-c", "import duckdb, sys; [print(*r) for r in duckdb.execute(sys.argv[1]).fetchall()]"]


def duck_binary():
    found = shutil.which("duckdb") or str(Path(sys.executable).with_name("duckdb"))
    if not Path(found).exists():
        sys.exit("the DuckDB CLI is needed: pip install duckdb-cli")
    return found


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--file-minutes", type=int, default=60,
                    help="minutes of events per trail file (CloudTrail: about 5; DuckDB's reference figure: 60)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/trawl-bench"))
    ap.add_argument("--json", choices=["all", "week"], default=None,
                    help="queries DuckDB runs on the raw JSON (default: all up to 2M events, else week)")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--duckdb-package", action="store_true",
                    help="also convert with the duckdb Python package (DuckDB 2.0; 9-13 more minutes at 10M)")
    args = ap.parse_args()
    json_queries = args.json or ("all" if args.events <= 2_000_000 else "week")

    env = dict(os.environ, TZ="UTC")
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release"
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "-p", "trawl", "-p", "trawl-bench"], cwd=ROOT, check=True)
    trawl, gen, duck = str(target / "trawl"), str(target / "trawl-bench"), duck_binary()
    work = args.work
    data = work / f"data-{args.events}-{args.file_minutes}m"
    lake = work / f"lake-{args.events}"
    duck_out = work / f"duckdb-{args.events}"
    results = {"date": time.strftime("%Y-%m-%d"), "events": args.events, "days": args.days,
               "file_minutes": args.file_minutes, "machine": machine(),
               "duckdb": run_measured([duck, "--version"]).stdout.strip(), "steps": {}, "queries": []}
    if args.duckdb_package:
        results["duckdb package"] = run_measured(DUCK_PACKAGE + ["SELECT version()"]).stdout.strip()
    log = lambda *a: print(*a, file=sys.stderr, flush=True)  # noqa: E731

    # 1. Data.
    manifest = data / "trawl-bench.manifest"
    wanted = {"events": args.events, "days": args.days, "seed": args.seed, "fileMinutes": args.file_minutes}
    if not manifest.exists() or any(json.loads(manifest.read_text()).get(k) != v for k, v in wanted.items()):
        shutil.rmtree(data, ignore_errors=True)
        log(f"generating {args.events} events ...")
        g = run_measured([gen, "gen", str(data), "--events", str(args.events), "--days", str(args.days),
                          "--seed", str(args.seed), "--start", "2025-01-01",
                          "--file-minutes", str(args.file_minutes)])
        results["steps"]["generate"] = {"seconds": g.seconds, "rss_mib": g.rss_mib}
    m = json.loads(manifest.read_text())
    results["input"] = {k: m[k] for k in ("files", "records", "events", "gzipBytes", "jsonBytes", "apiCalls")}
    june = sorted(str(p) for p in data.glob(JUNE))

    # 2. Ingest and conversion.
    shutil.rmtree(lake, ignore_errors=True)
    shutil.rmtree(duck_out, ignore_errors=True)
    base = [trawl, "--lake", str(lake)]
    run_measured(base + ["store", "create", "events"], env)
    run_measured(base + ["store", "create", "writes", "--selectors", WRITES_SELECTORS], env)
    for store, inputs in (("events", [str(data)]), ("writes", june)):
        drop_caches()
        log(f"trawl ingest {store} ...")
        r = run_measured(base + ["ingest", "--store", store] + inputs, env)
        results["steps"][f"trawl ingest {store}"] = {"seconds": r.seconds, "rss_mib": r.rss_mib,
                                                     "report": r.stdout + r.stderr[-2000:]}
    duck_out.mkdir(parents=True)
    for store, files, where in (("events", all_files(data), ""),
                                ("writes", june_files(data), WRITES_FILTER)):
        drop_caches()
        log(f"duckdb convert {store} ...")
        r = run_measured([duck, "-init", "/dev/null", "-batch", ":memory:"], env,
                         stdin=duck_copy(files, where, duck_out / store))
        results["steps"][f"duckdb convert {store}"] = {"seconds": r.seconds, "rss_mib": r.rss_mib}
    if args.duckdb_package:
        package_out = work / f"duckdb-package-{args.events}"
        shutil.rmtree(package_out, ignore_errors=True)
        drop_caches()
        log("duckdb package convert events ...")
        r = run_measured(DUCK_PACKAGE + [duck_copy(all_files(data), "", package_out)], env)
        results["steps"]["duckdb package convert events"] = {"seconds": r.seconds, "rss_mib": r.rss_mib}
        package_bytes = size(package_out, ".parquet")
        shutil.rmtree(package_out)
    results["sizes"] = {
        "input .json.gz": m["gzipBytes"],
        "input JSON": m["jsonBytes"],
        "trawl Parquet (events)": size(lake / "events", ".parquet"),
        "DuckDB Parquet (events)": size(duck_out / "events", ".parquet"),
    }
    if args.duckdb_package:
        results["sizes"]["DuckDB package Parquet (events)"] = package_bytes
    stored = int(query_csv(trawl, lake, "SELECT count(*) FROM events", env)[0])
    duck_rows = int(duck_csv(duck, duck_views(duck_out), "SELECT count(*) FROM events", env)[0])
    results["stored"] = {"trawl": stored, "duckdb": duck_rows}
    if stored != duck_rows:
        sys.exit(f"trawl stored {stored} events, DuckDB {duck_rows}")

    # 3. Queries.
    event_id = pick_event_id(data)
    store_files = {s: int(re.search(r"^files\s+(\d+)", run_measured(base + ["store", "show", s], env).stdout, re.M)[1])
                   for s in ("events", "writes")}
    failures = []
    for q in QUERIES:
        sql = q.sql.replace("{EVENTID}", event_id)
        dsql = (q.duck or q.sql).replace("{EVENTID}", event_id)
        log(f"query {q.name} ...")
        row = {"name": q.name, "kind": q.kind}
        cold = drop_caches()
        t_cold = timed(lambda: run_measured(base + ["query", "--format", "csv", sql], env))
        t_warm = [timed(lambda: run_measured(base + ["query", "--format", "csv", sql], env)) for _ in range(3)]
        out = t_warm[-1][1]
        row["trawl"] = {"cold": t_cold[0], "warm": statistics.median(t for t, _ in t_warm),
                        **stats(out.stderr)}
        views = duck_views(duck_out)
        drop_caches()
        d_cold = timed(lambda: run_measured([duck, "-init", "/dev/null", "-csv", "-nullvalue", "", "-c", views + dsql], env))
        d_warm = [timed(lambda: run_measured([duck, "-init", "/dev/null", "-csv", "-nullvalue", "", "-c", views + dsql], env))
                  for _ in range(3)]
        row["duckdb"] = {"cold": d_cold[0], "warm": statistics.median(t for t, _ in d_warm)}
        row["rows"] = len(normalize(out.stdout))
        row["equal"] = normalize(out.stdout) == normalize(d_warm[-1][1].stdout)
        if not row["equal"]:
            failures.append(f"{q.name}: trawl and DuckDB's Parquet differ")
        if row["rows"] == 0:
            failures.append(f"{q.name}: no rows (the lookup value is not in the data)")
        if json_queries == "all":
            log(f"  ... on the raw JSON")
            jviews = duck_json_views(data)
            drop_caches()
            j = timed(lambda: run_measured([duck, "-init", "/dev/null", "-csv", "-nullvalue", "", "-c", jviews + dsql], env))
            row["duckdb json"] = {"cold": j[0]}
            if normalize(j[1].stdout) != normalize(out.stdout):
                failures.append(f"{q.name}: trawl and DuckDB's raw JSON differ")
        row["cold_cache_dropped"] = cold
        results["queries"].append(row)

    # 4. The raw-trail week query: trawl reads the week's day prefixes, DuckDB the whole bucket.
    # Both read the files as they are, re-deliveries included (as Athena does).
    q = next(q for q in QUERIES if q.name == RAW_TRAIL_QUERY)
    log("raw trail week query ...")
    drop_caches()
    cold = timed(lambda: run_measured([trawl, "query", "--format", "csv", "--trail", f"events={data}", q.sql], env))
    warm = timed(lambda: run_measured([trawl, "query", "--format", "csv", "--trail", f"events={data}", q.sql], env))
    raw_view = f"CREATE VIEW events AS {duck_select(all_files(data), '', dedupe=False)}; "
    drop_caches()
    duck_json = timed(lambda: run_measured([duck, "-init", "/dev/null", "-csv", "-nullvalue", "", "-c", raw_view + q.sql],
                                           env))
    if normalize(cold[1].stdout) != normalize(duck_json[1].stdout):
        failures.append("raw trail week query: trawl --trail and DuckDB's read_json differ")
    results["raw_trail_week"] = {"trawl cold": cold[0], "trawl warm": warm[0], "duckdb read_json": duck_json[0]}

    results["failures"] = failures
    results["store_files"] = store_files
    (work / f"results-{args.events}.json").write_text(json.dumps(results, indent=2))
    md = markdown(results)
    (work / f"results-{args.events}.md").write_text(md)
    (work / f"queries-{args.events}.svg").write_text(chart(results))
    print(md)
    if failures:
        sys.exit("\n".join(failures))


def timed(f):
    r = f()
    return r.seconds, r


def size(path, suffix):
    return sum(p.stat().st_size for p in path.rglob(f"*{suffix}"))


def stats(stderr):
    m = re.search(r"(\d+) events scanned, (\d+) bytes scanned, (\d+) files scanned, (\d+) files pruned", stderr)
    keys = ("events scanned", "bytes scanned", "files scanned", "files pruned")
    return dict(zip(keys, map(int, m.groups()))) if m else {}


def query_csv(trawl, lake, sql, env):
    return normalize(run_measured([trawl, "--lake", str(lake), "query", "-q", "--format", "csv", sql], env).stdout)


def duck_views(duck_out):
    return "".join(f"CREATE VIEW {s} AS SELECT * FROM read_parquet('{duck_out / s}/**/*.parquet', "
                   f"hive_partitioning = true, hive_types = {{'eventdate': DATE}}); " for s in ("events", "writes"))


def duck_json_views(data):
    return (f"CREATE VIEW events AS {duck_select(all_files(data), '')}; "
            f"CREATE VIEW writes AS {duck_select(june_files(data), WRITES_FILTER)}; ")


def all_files(data):
    """The glob of every trail file of the generated bucket."""
    return f"{data}/AWSLogs/**/*.json.gz"


def june_files(data):
    """The glob of the trail files of store `writes`: the June day prefixes."""
    return f"{data}/{JUNE}/*/*.json.gz"


def duck_select(files, where, dedupe=True):
    sql = DUCK_SELECT.replace("@FILES@", files).replace("@WHERE@", where)
    return sql if dedupe else sql.replace(QUALIFY, "")


def duck_copy(files, where, out):
    """DuckDB's conversion of `files` into zstd Parquet under `out`, partitioned by day."""
    return (f"SET preserve_insertion_order = false; COPY ({duck_select(files, where)}) "
            f"TO '{out}' (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (eventdate));")


def duck_csv(duck, views, sql, env):
    return normalize(run_measured([duck, "-init", "/dev/null", "-csv", "-nullvalue", "", "-c", views + sql], env).stdout)


def pick_event_id(data):
    """The first event of the first file of 2025-07-15 (deterministic for a seed)."""
    import gzip
    first = sorted(data.glob("AWSLogs/*/CloudTrail/*/2025/07/15/*.json.gz"))[0]
    with gzip.open(first, "rt") as f:
        return json.load(f)["Records"][0]["eventID"]


def machine():
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    mem = next((int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal")), 0)
    rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.strip()
    return {"cpus": os.cpu_count(), "cpu": cpu, "memory_gib": round(mem / 2**20), "kernel": platform.release(),
            "rustc": rustc}


def mib(b):
    return f"{b / 2**20:,.1f} MiB"


def markdown(r):
    ev = r["input"]["events"]
    out = [f"Date {r['date']}; {r['machine']['cpus']} cores ({r['machine']['cpu']}), {r['machine']['memory_gib']} GiB, "
           f"{r['machine']['rustc']}, DuckDB CLI {r['duckdb']}"
           + (f", duckdb package {r['duckdb package']}" if "duckdb package" in r else "") + ".", "",
           f"Input: {ev:,} events ({r['input']['records']:,} records with re-deliveries) over "
           f"{r['days']} days in {r['input']['files']:,} files of {r['file_minutes']} minutes, {mib(r['input']['gzipBytes'])} .json.gz, "
           f"{mib(r['input']['jsonBytes'])} JSON, {r['input']['apiCalls']} API calls.", "",
           "| step | seconds | events/s | MB/s of JSON | peak RSS |", "|---|---|---|---|---|"]
    steps = r["steps"]
    for name, s in steps.items():
        n = r["input"]["records"] if "events" in name or name == "generate" else None
        rate = f"{n / s['seconds']:,.0f}" if n else ""
        mbs = f"{r['input']['jsonBytes'] / 1e6 / s['seconds']:,.0f}" if n else ""
        out.append(f"| {name} | {s['seconds']:.1f} | {rate} | {mbs} | {s['rss_mib']:,.0f} MiB |")
    ingest = steps["trawl ingest events"]["seconds"]
    out += ["", "trawl's ingest against DuckDB's conversion of the same files: " + ", ".join(
        f"{steps[k]['seconds'] / ingest:.1f}x {who}" for k, who in
        (("duckdb convert events", f"the CLI ({r['duckdb'].split()[0]})"),
         ("duckdb package convert events", f"the duckdb package ({r.get('duckdb package')})")) if k in steps) + "."]
    sz = r["sizes"]
    out += ["", "| bytes | size | vs .json.gz |", "|---|---|---|"]
    out += [f"| {k} | {mib(v)} | {v / sz['input .json.gz']:.2f}x |" for k, v in sz.items()]
    out += ["", "| query | kind | rows | trawl cold | trawl warm | DuckDB cold | DuckDB warm | warm ratio "
            "| DuckDB raw JSON | bytes scanned | files scanned / pruned | equal |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for q in r["queries"]:
        t, d = q["trawl"], q["duckdb"]
        j = q.get("duckdb json", {}).get("cold")
        out.append(f"| {q['name']} | {q['kind']} | {q['rows']} | {t['cold']:.2f} | {t['warm']:.2f} | "
                   f"{d['cold']:.2f} | {d['warm']:.2f} | {d['warm'] / t['warm']:.1f}x | "
                   f"{f'{j:.1f}' if j else ''} | {mib(t.get('bytes scanned', 0))} | "
                   f"{t.get('files scanned', '?')} / {t.get('files pruned', '?')} | {'yes' if q['equal'] else 'NO'} |")
    w = r["raw_trail_week"]
    out += ["", f"Raw trail, one week (`{RAW_TRAIL_QUERY}`): trawl `--trail` {w['trawl cold']:.2f} s cold, "
                f"{w['trawl warm']:.2f} s warm; DuckDB `read_json` over the whole bucket {w['duckdb read_json']:.1f} s "
                f"({w['duckdb read_json'] / w['trawl cold']:.0f}x)."]
    if r["failures"]:
        out += ["", "FAILURES: " + "; ".join(r["failures"])]
    return "\n".join(out) + "\n"


def chart(r):
    """Warm query times, trawl against DuckDB over its Parquet, as horizontal bars (SVG)."""
    qs = r["queries"]
    top = max(max(q["trawl"]["warm"], q["duckdb"]["warm"]) for q in qs)
    width, label, bar, gap = 760, 190, 9, 8
    height = 40 + len(qs) * (2 * bar + gap)
    scale = (width - label - 60) / top
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
             f'font-size="11"><text x="4" y="14">Warm query time, seconds ({r["input"]["events"]:,} events): '
             f'<tspan fill="#1f77b4">trawl</tspan> / <tspan fill="#ff7f0e">DuckDB over its Parquet</tspan></text>']
    for i, q in enumerate(qs):
        y = 30 + i * (2 * bar + gap)
        parts.append(f'<text x="4" y="{y + bar + 3}">{q["name"]}</text>')
        for j, (who, color) in enumerate((("trawl", "#1f77b4"), ("duckdb", "#ff7f0e"))):
            t = q[who]["warm"]
            parts.append(f'<rect x="{label}" y="{y + j * bar}" width="{max(t * scale, 1):.1f}" height="{bar - 1}" '
                         f'fill="{color}"/><text x="{label + t * scale + 4:.1f}" y="{y + j * bar + bar - 1}">{t:.2f}</text>')
    return "\n".join(parts + ["</svg>"]) + "\n"


if __name__ == "__main__":
    main()
