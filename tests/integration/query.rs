//! `trawl query` over a store of the real fixtures.

use crate::harness::{Lake, fixture};

fn stratus_lake() -> (Lake, String) {
    let lake = Lake::new("2024-12-31T00:00:00Z");
    lake.ok(&["store", "create", "stratus"]);
    lake.ok(&["ingest", "--store", "stratus", &fixture("stratus-red-team-detonation-logs")]);
    let id = lake.show("stratus")["config"]["id"].as_str().unwrap().to_owned();
    (lake, id)
}

#[test]
fn lake_dialect_and_formats() {
    let (lake, id) = stratus_lake();
    let events = lake.export("stratus");

    // Group by over camelCase names, checked against the exported JSON.
    let sql = "SELECT eventName, count(*) AS n FROM stratus WHERE eventSource = 'iam.amazonaws.com' \
               GROUP BY eventName ORDER BY n DESC, eventName";
    let (csv, stats) = lake.expect(0, &["query", sql, "--format", "csv"]);
    let mut want: std::collections::BTreeMap<String, usize> = Default::default();
    for e in events.iter().filter(|e| e["eventSource"] == "iam.amazonaws.com") {
        *want.entry(e["eventName"].as_str().unwrap().to_owned()).or_default() += 1;
    }
    let got: std::collections::BTreeMap<String, usize> = csv
        .lines()
        .skip(1)
        .map(|l| {
            let (name, n) = l.rsplit_once(',').unwrap();
            (name.to_owned(), n.parse().unwrap())
        })
        .collect();
    assert_eq!(got, want, "{csv}");
    assert!(csv.starts_with("eventName,n\n") || csv.starts_with("eventname,n\n"), "{csv}");
    assert!(stats.contains("events scanned") && stats.contains("bytes scanned"), "{stats}");

    // Store id as a bare table name, and as a $EDS_ID placeholder.
    let n = events.len().to_string();
    let count = |args: &[&str]| lake.ok(args).lines().nth(1).unwrap().to_owned();
    assert_eq!(count(&["query", &format!("SELECT count(*) AS n FROM {id}"), "--format", "csv", "-q"]), n);
    assert_eq!(
        count(&[
            "query",
            "SELECT count(*) AS n FROM $EDS_ID",
            "--param",
            &format!("EDS_ID={id}"),
            "--format",
            "csv"
        ]),
        n
    );

    // Nested fields, string literals compared with timestamps.
    let since = events.iter().filter(|e| e["eventTime"].as_str().unwrap() > "2024-08-01T00:00:00Z").count();
    let sql = "SELECT count(*) AS n FROM stratus WHERE eventTime > '2024-08-01 00:00:00' \
               AND userIdentity.sessionContext.sessionIssuer.userName IS NOT NULL OR eventTime > '2024-08-01 00:00:00'";
    assert_eq!(count(&["query", sql, "--format", "csv"]), since.to_string());

    let (ndjson, _) = lake
        .expect(0, &["query", "SELECT eventID FROM stratus ORDER BY eventID LIMIT 2", "--format", "ndjson"]);
    assert_eq!(ndjson.lines().count(), 2);
    assert!(ndjson.starts_with("{\"eventID\":") || ndjson.starts_with("{\"eventid\":"), "{ndjson}");
    let md = lake.ok(&["query", "SELECT eventID FROM stratus LIMIT 1", "--format", "markdown"]);
    assert!(md.lines().nth(1) == Some("|---|"), "{md}");
    let json = lake.ok(&["query", "SELECT eventID FROM stratus LIMIT 3", "--format", "json"]);
    assert_eq!(serde_json::from_str::<Vec<serde_json::Value>>(&json).unwrap().len(), 3);
}

#[test]
fn refuses_everything_but_select() {
    let (lake, _) = stratus_lake();
    for sql in [
        "DROP TABLE stratus",
        "INSERT INTO stratus SELECT * FROM stratus",
        "CREATE EXTERNAL TABLE x STORED AS PARQUET LOCATION '/etc/'",
        "COPY (SELECT 1) TO '/tmp/x.parquet'",
        "SET datafusion.execution.batch_size = 1",
        "CREATE TABLE t AS SELECT 1",
    ] {
        let (_, err) = lake.expect(1, &["query", sql]);
        assert!(err.contains("only SELECT queries are allowed"), "{sql}: {err}");
    }
    let (_, err) = lake.expect(1, &["query", "SELECT * FROM nosuchstore"]);
    assert!(err.contains("nosuchstore"), "{err}");
    let (_, err) = lake.expect(1, &["query", "SELECT * FROM $EDS_ID"]);
    assert!(err.contains("$EDS_ID"), "{err}");

    // What there is to query is answered, as datafusion-cli and duckdb answer it.
    let tables = lake.ok(&["query", "-q", "--format", "csv", "SHOW TABLES"]);
    assert!(tables.contains(",stratus,BASE TABLE") && tables.contains(",trawl_audit_runs,VIEW"), "{tables}");
    let describe = lake.ok(&["query", "-q", "--format", "csv", "DESCRIBE stratus"]);
    assert!(describe.starts_with("column_name,data_type,is_nullable\neventversion,Utf8,YES\n"), "{describe}");
    let columns = lake.ok(&["query", "-q", "--format", "csv", "SHOW COLUMNS FROM stratus"]);
    assert_eq!(columns.lines().count(), describe.lines().count(), "{columns}");
}

#[test]
fn trino_functions_and_unnamed_columns() {
    let (lake, _) = stratus_lake();
    let events = lake.export("stratus");
    let csv = |sql: &str| lake.ok(&["query", sql, "--format", "csv", "-q"]);

    // Unnamed columns are _col0, _col1, ...
    let out = csv("SELECT count(*), max(eventTime) AS newest FROM stratus");
    assert!(out.starts_with("_col0,newest\n"), "{out}");

    // element_at on a map (scalar values as strings) and json_extract_scalar on eventjson.
    let mut want: Vec<String> = events
        .iter()
        .filter(|e| e["eventName"] == "CreateUser" && e["requestParameters"]["userName"].is_string())
        .map(|e| e["requestParameters"]["userName"].as_str().unwrap().to_owned())
        .collect();
    want.sort();
    let out = csv(
        "SELECT element_at(requestParameters, 'userName') AS u, json_extract_scalar(eventjson, '$.requestParameters.userName') AS j \
         FROM stratus WHERE eventName = 'CreateUser' AND element_at(requestParameters, 'userName') IS NOT NULL ORDER BY u",
    );
    let got: Vec<String> = out.lines().skip(1).map(|l| l.split(',').next().unwrap().to_owned()).collect();
    assert_eq!(got, want, "{out}");
    assert!(out.lines().skip(1).all(|l| {
        let (a, b) = l.split_once(',').unwrap();
        a == b
    }));

    // Arrays are 1-based; nested JSON values are compact JSON text.
    let out =
        csv("SELECT element_at(resources, 1).arn AS a FROM stratus WHERE cardinality(resources) > 0 LIMIT 1");
    assert!(out.lines().nth(1).is_some_and(|l| l.starts_with("arn:")), "{out}");
    let out = csv(
        "SELECT json_array_length(json_extract(eventjson, '$.resources')) AS n, cardinality(resources) AS c \
                   FROM stratus WHERE cardinality(resources) > 0",
    );
    assert!(out.lines().skip(1).all(|l| l.split(',').next() == l.split(',').nth(1)), "{out}");

    // Date parts with Trino's numbering: 2024-07-30 was a Tuesday (2), day 212 of the year.
    let out = csv("SELECT day_of_week(eventTime) AS d, day_of_year(eventTime) AS y, year(eventTime) AS yr \
                   FROM stratus WHERE eventTime < '2024-07-31 00:00:00' AND eventTime >= '2024-07-30 00:00:00' LIMIT 1");
    assert_eq!(out.lines().nth(1), Some("2,212,2024"), "{out}");
    let out = csv("SELECT to_iso8601(from_iso8601_timestamp('2024-07-30T10:00:00Z')) AS t");
    assert_eq!(out.lines().nth(1), Some("2024-07-30T10:00:00.000Z"), "{out}");

    // Trino aggregates and the rest of the pack.
    let newest = events.iter().max_by_key(|e| e["eventTime"].as_str().unwrap().to_owned()).unwrap();
    let out =
        csv("SELECT max_by(eventName, eventTime) AS m, min_by(eventName, eventTime) IS NOT NULL AS b, \
                   arbitrary(awsRegion) IS NOT NULL AS a FROM stratus");
    assert_eq!(
        out.lines().nth(1).unwrap(),
        format!("{},true,true", newest["eventName"].as_str().unwrap()),
        "{out}"
    );
    let out = csv("SELECT date_add('day', -1, from_iso8601_timestamp('2024-03-01T00:00:00Z')) AS a, \
                   date_add('month', 1, from_iso8601_timestamp('2024-01-31T12:00:00Z')) AS b, \
                   date_diff('day', from_iso8601_timestamp('2024-01-01T00:00:00Z'), from_iso8601_timestamp('2024-03-01T00:00:00Z')) AS c, \
                   date_diff('month', from_iso8601_timestamp('2024-01-31T00:00:00Z'), from_iso8601_timestamp('2024-02-29T00:00:00Z')) AS d");
    assert_eq!(out.lines().nth(1), Some("2024-02-29T00:00:00Z,2024-02-29T12:00:00Z,60,0"), "{out}");
    let out = csv(
        "SELECT contains(split('a,b', ','), 'b') AS x, contains('abc', 'bc') AS y, replace('a-b-c', '-') AS z",
    );
    assert_eq!(out.lines().nth(1), Some("true,true,abc"), "{out}");
}

/// eventTime bounds prune eventdate partitions: the scan metrics show it.
#[test]
fn time_bounds_prune_partitions() {
    let (lake, _) = stratus_lake();
    let stats = |args: &[&str]| {
        let (out, err) = lake.expect(0, args);
        let files = |label: &str| -> u64 {
            let words: Vec<&str> = err.split([',', ' ']).filter(|w| !w.is_empty()).collect();
            let at = words
                .windows(2)
                .position(|w| w == ["files", label])
                .unwrap_or_else(|| panic!("files {label} in {err}"));
            words[at - 1].parse().unwrap()
        };
        (out.lines().nth(1).unwrap().to_owned(), files("scanned"), files("pruned"))
    };
    // Eight days of events, one file each.
    let all = stats(&["query", "SELECT count(*) AS n FROM stratus WHERE eventName <> ''", "--format", "csv"]);
    assert_eq!((all.0.as_str(), all.2), ("310", 0), "{all:?}");
    let day = stats(&[
        "query",
        "SELECT count(*) AS n FROM stratus WHERE eventTime >= '2024-08-01 00:00:00' AND eventTime < '2024-08-02 00:00:00'",
        "--format",
        "csv",
    ]);
    assert_eq!(day, ("97".to_owned(), 1, 7));
    // --from/--to bound every store the same way.
    let bounded = stats(&[
        "query",
        "SELECT count(*) AS n FROM stratus WHERE eventName <> ''",
        "--format",
        "csv",
        "--from",
        "2024-08-01",
        "--to",
        "2024-08-02",
    ]);
    assert_eq!(bounded, ("97".to_owned(), 1, 7));
}

/// ORDER BY under `--memory-mib` spills instead of failing (issue 23, defect 6): each sort
/// partition's merge reserve and the batch size follow the limit. The sorted result is the
/// same as without a limit.
#[test]
fn order_by_spills_under_a_memory_limit() {
    let (lake, _) = stratus_lake();
    let sql = "SELECT eventtime, eventid, eventjson FROM stratus ORDER BY eventtime, eventid";
    let unlimited = lake.ok(&["query", "-q", "--format", "csv", sql]);
    for mib in ["4", "16"] {
        let (limited, err) = lake.expect(0, &["query", "-q", "--format", "csv", "--memory-mib", mib, sql]);
        assert!(limited == unlimited, "--memory-mib {mib}: a different result\n{err}");
    }
    let events = lake.events("stratus") as usize;
    let times: Vec<&str> = unlimited.lines().skip(1).filter_map(|l| l.split(',').next()).collect();
    assert!(times.len() >= events, "{} lines for {events} events", times.len());
}

/// Bit rot never gives a different answer (issue 23, defect 4): a bit flipped anywhere in a
/// data file makes every query that reads it fail, naming the store and the file; a query
/// that does not read the flipped block answers as before. A later ingest into the store fails
/// the same way rather than store duplicates.
#[test]
fn bit_rot_is_an_error_naming_the_file() {
    let (lake, _) = stratus_lake();
    let sql = "SELECT * FROM stratus ORDER BY eventtime, eventid";
    let before = lake.ok(&["query", "-q", "--format", "csv", sql]);
    let files: Vec<String> = crate::support::walk(&lake.root().join("stratus"))
        .into_iter()
        .filter(|p| p.ends_with(".parquet") && !p.contains("_delta_log"))
        .collect();
    assert!(!files.is_empty());
    let mut caught = 0;
    for (trial, file) in files.iter().cycle().take(40).enumerate() {
        let original = std::fs::read(file).unwrap();
        let at = (original.len() * (trial * 37 % 101) / 101).min(original.len() - 1);
        let mut flipped = original.clone();
        flipped[at] ^= 1 << (trial % 8);
        std::fs::write(file, &flipped).unwrap();
        let out = lake.run(&["query", "-q", "--format", "csv", sql]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            assert!(stdout == before, "byte {at} of {file}: a different answer, and exit 0");
        } else {
            let name = file.rsplit('/').next().unwrap();
            assert!(
                stderr.contains("of event data store 'stratus' is damaged") && stderr.contains(name),
                "byte {at} of {file}:\n{stderr}"
            );
            caught += 1;
            if trial == 0 {
                // The same events from files of other names: their keys are read from the store.
                let copy = lake.dir.path().join("again");
                std::fs::create_dir_all(&copy).unwrap();
                for f in
                    crate::support::walk(std::path::Path::new(&fixture("stratus-red-team-detonation-logs")))
                {
                    let name = f.rsplit('/').next().unwrap();
                    std::fs::copy(&f, copy.join(format!("again-{name}"))).unwrap();
                }
                let (_, err) = lake.expect(1, &["ingest", "--store", "stratus", copy.to_str().unwrap()]);
                assert!(err.contains("is damaged"), "{err}");
            }
        }
        std::fs::write(file, &original).unwrap();
    }
    assert!(caught > 30, "{caught} of 40 flips caught");
    assert_eq!(lake.show("stratus")["summary"]["uncheckedFiles"], 0);
    assert_eq!(lake.ok(&["query", "-q", "--format", "csv", sql]), before);

    // A data file cut short or gone: one error naming it, never the answer of what is left.
    let file = &files[0];
    let name = file.rsplit('/').next().unwrap();
    let original = std::fs::read(file).unwrap();
    std::fs::write(file, &original[..original.len() / 2]).unwrap();
    let (out, err) = lake.expect(1, &["query", "-q", "--format", "csv", sql]);
    assert!(
        out.is_empty() && err.contains(&format!("{name} of event data store 'stratus' is damaged")),
        "{err}"
    );
    std::fs::remove_file(file).unwrap();
    // A result file is written whole or not at all: the one there stays as it was.
    let out = lake.dir.path().join("out.csv");
    std::fs::write(&out, "before\n").unwrap();
    let (_, err) = lake.expect(1, &["query", "-q", sql, "-o", out.to_str().unwrap()]);
    assert!(err.contains("is damaged: it is missing") && !err.contains("cannot write"), "{err}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "before\n");
    assert_eq!(
        std::fs::read_dir(lake.dir.path())
            .unwrap()
            .filter(|e| { e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".partial") })
            .count(),
        0
    );
    for args in [&["query", "-q", "--format", "csv", sql][..], &["export", "--store", "stratus", "-o", "-"]] {
        // (An export streams: the days before the missing file's are out already, and exit 1.)
        let (_, err) = lake.expect(1, args);
        let want = format!("{name} of event data store 'stratus' is damaged: it is missing");
        assert!(err.contains(&want) && err.lines().count() == 1, "{args:?}\n{err}");
    }
    std::fs::write(file, &original).unwrap();
}

/// A reader that goes away (`| head`) ends trawl quietly with exit 0, as ripgrep does: no panic
/// on the closed pipe, whether stderr goes into it too or not.
#[test]
fn a_closed_pipe_ends_quietly() {
    let (lake, _) = stratus_lake();
    let trawl = env!("CARGO_BIN_EXE_trawl");
    for tail in [
        "query 'SELECT * FROM stratus' --format csv 2>&1 | head -1",
        "query 'SELECT * FROM stratus' --format json | head -c 100",
        "query 'SELECT * FROM stratus' | head -3",
        "demo 2>/dev/null | head -2",
    ] {
        // The lake's environment (TRAWL_LAKE, TRAWL_NOW), through bash for the pipe.
        let mut sh = std::process::Command::new("bash");
        sh.args(["-c", &format!("set -o pipefail; \"$TRAWL_BIN\" {tail}")]).env("TRAWL_BIN", trawl);
        for (k, v) in lake.command(&[]).get_envs() {
            if let Some(v) = v {
                sh.env(k, v);
            }
        }
        let out = sh.stdin(std::process::Stdio::null()).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{tail}\n{stdout}\n{stderr}");
        assert!(!stdout.contains("panicked") && !stderr.contains("panicked"), "{tail}\n{stderr}");
        assert!(!stderr.contains("Broken pipe"), "{tail}\n{stderr}");
    }
}

/// `-o FILE` takes the format from the file's extension, as duckdb's and datafusion-cli's
/// `COPY` do (`--format` still wins); JSON ends with a line break.
#[test]
fn output_format_from_the_file_extension() {
    let (lake, _) = stratus_lake();
    let sql =
        "SELECT eventname, count(*) AS n FROM stratus GROUP BY eventname ORDER BY n DESC, eventname LIMIT 3";
    let at = |name: &str| lake.dir.path().join(name).display().to_string();
    for name in ["r.csv", "r.json", "r.jsonl", "r.md", "r.parquet", "r.txt"] {
        lake.ok(&["query", "-q", sql, "-o", &at(name)]);
    }
    let read = |name: &str| std::fs::read(at(name)).unwrap();
    assert!(read("r.csv").starts_with(b"eventname,n\n"));
    assert!(read("r.json").starts_with(b"[{") && read("r.json").ends_with(b"]\n"));
    assert_eq!(String::from_utf8(read("r.jsonl")).unwrap().lines().count(), 3);
    assert!(read("r.md").starts_with(b"| eventname | n |"));
    assert!(read("r.parquet").starts_with(b"PAR1"));
    assert!(read("r.txt").starts_with(b"+-"));
    lake.ok(&["query", "-q", sql, "--format", "csv", "-o", &at("forced.json")]);
    assert!(read("forced.json").starts_with(b"eventname,n\n"));
    assert!(lake.ok(&["query", "-q", sql, "--format", "json"]).ends_with("]\n"));
}

/// One SQL front end: a store id that does not exist is an unknown store, said once, with the
/// stores there are (not a parser error at its hyphen); `;` inside comments, literals and
/// quoted identifiers ends nothing; `-f` takes one statement with its comments.
#[test]
fn statements_and_unknown_stores() {
    let (lake, _) = stratus_lake();
    let sql = "SELECT eventID FROM EXAMPLE-f852-4e8f-8bd1-bcf6cEXAMPLE";
    let (_, stderr) = lake.expect(1, &["query", sql]);
    // The lake searched is named: run from the wrong directory, the error says where it looked.
    let root = std::fs::canonicalize(lake.root()).unwrap();
    assert_eq!(
        stderr.trim(),
        format!(
            "error: unknown event data store 'EXAMPLE-f852-4e8f-8bd1-bcf6cEXAMPLE' in the lake at file://{}/; the stores are stratus",
            root.display()
        )
    );
    let (_, stderr) = lake.expect(1, &["query", "SELECT eventID FROM strtus"]);
    assert!(stderr.contains("unknown event data store 'strtus' in the lake at file://"), "{stderr}");
    assert!(stderr.contains("/; did you mean 'stratus'?"), "{stderr}");

    let csv = lake.ok(&["query", "-q", "--format", "csv", "SELECT 1 AS x /* a; b */, 'c;d' AS \"e;f\";"]);
    assert_eq!(csv, "x,e;f\n1,c;d\n");
    let file = lake.dir.path().join("audit.sql");
    std::fs::write(
        &file,
        "-- Question: how many?\n/* counts; all */\nSELECT count(*) AS n -- events;\nFROM stratus;\n",
    )
    .unwrap();
    let n = lake.export("stratus").len();
    assert_eq!(
        lake.ok(&["query", "-q", "--format", "csv", "-f", file.to_str().unwrap()]),
        format!("n\n{n}\n")
    );
    std::fs::write(&file, "SELECT 1; SELECT 2;").unwrap();
    let (_, stderr) = lake.expect(1, &["query", "-f", file.to_str().unwrap()]);
    assert!(stderr.contains("exactly one SQL statement (found 2)"), "{stderr}");
}

/// Results stream: a table shows `--max-rows` rows and counts the rest; every format is
/// written batch by batch, Parquet included, and an empty result is still a file of its schema.
#[test]
fn results_stream_into_every_format() {
    let (lake, _) = stratus_lake();
    let n = lake.export("stratus").len();
    assert!(n > 10);
    let (table, stderr) = lake.expect(0, &["query", "SELECT eventid FROM stratus", "--max-rows", "5"]);
    // Borders, header, separator, five rows, bottom border, and the count of every row.
    assert_eq!(table.lines().count(), 10, "{table}");
    assert!(table.ends_with(&format!("({n} rows)\n")), "{table}");
    assert!(stderr.contains(&format!("({} more rows not shown", n - 5)), "{stderr}");
    assert!(stderr.contains(&format!("{n} events matched")), "{stderr}");
    let all = lake.ok(&["query", "-q", "SELECT eventid FROM stratus"]);
    assert_eq!(all.lines().count(), n + 5);

    let at = |name: &str| lake.dir.path().join(name).display().to_string();
    lake.ok(&["query", "-q", "SELECT * FROM stratus", "-o", &at("all.ndjson")]);
    assert_eq!(std::fs::read_to_string(at("all.ndjson")).unwrap().lines().count(), n);
    lake.ok(&["query", "-q", "SELECT * FROM stratus", "-o", &at("all.parquet")]);
    lake.ok(&["query", "-q", "SELECT eventid FROM stratus WHERE false", "-o", &at("none.parquet")]);
    lake.ok(&[
        "query",
        "-q",
        "SELECT eventid FROM stratus WHERE false",
        "--format",
        "csv",
        "-o",
        &at("none.csv"),
    ]);
    // An empty result keeps its header, in every text format; a table counts its rows.
    assert_eq!(std::fs::read_to_string(at("none.csv")).unwrap(), "eventid\n");
    let empty = lake.ok(&["query", "-q", "SELECT eventid FROM stratus WHERE false"]);
    assert!(empty.contains("| eventid |") && empty.ends_with("(0 rows)\n"), "{empty}");
    let markdown =
        lake.ok(&["query", "-q", "--format", "markdown", "SELECT eventid FROM stratus WHERE false"]);
    assert_eq!(markdown, "| eventid |\n|---|\n");
    // NULL is not the empty string.
    let nulls = lake.ok(&["query", "-q", "SELECT CAST(NULL AS VARCHAR) AS n, '' AS e"]);
    assert!(nulls.contains("| NULL |   |") && nulls.ends_with("(1 row)\n"), "{nulls}");
    let rows = |name: &str| crate::support::run_python("verify.py", &["shape", &at(name)]).trim().to_owned();
    let columns = lake.ok(&[
        "query",
        "-q",
        "--format",
        "csv",
        "SELECT count(*) AS n FROM information_schema.columns WHERE table_name = 'stratus'",
    ]);
    let columns = columns.lines().nth(1).unwrap();
    assert_eq!(rows("all.parquet"), format!("{n} {columns}"));
    assert_eq!(rows("none.parquet"), "0 1");
}

/// Parquet is bytes, not text: `trawl query --format parquet` refuses a terminal (stdout a
/// pseudo-terminal here), and writes to a pipe.
#[test]
fn binary_formats_refuse_a_terminal() {
    let (lake, _) = stratus_lake();
    let code = "import pty, subprocess, sys\n\
                master, tty = pty.openpty()\n\
                p = subprocess.run(sys.argv[1:], stdout=tty, stderr=subprocess.PIPE)\n\
                print(p.returncode)\n\
                print(p.stderr.decode())";
    let mut python = std::process::Command::new(crate::support::python());
    python.args(["-c", code, env!("CARGO_BIN_EXE_trawl"), "query", "SELECT 1 AS x", "--format", "parquet"]);
    for (k, v) in lake.command(&[]).get_envs() {
        if let Some(v) = v {
            python.env(k, v);
        }
    }
    let out = python.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("1\n") && text.contains("Parquet output is binary"), "{text}");
    let (parquet, _) = lake.expect(0, &["query", "SELECT 1 AS x", "--format", "parquet"]);
    assert!(parquet.starts_with("PAR1"));
}

#[test]
fn the_query_log_records_every_statement_when_the_lake_asks() {
    let (mut lake, store) = stratus_lake();
    lake.env.push(("USER".into(), "tester".into()));
    // Off by default: reading writes nothing.
    lake.ok(&["query", "-q", &format!("SELECT count(*) FROM {store}")]);
    assert!(!lake.root().join("_trawl/query-log").exists());
    assert!(lake.ok(&["lake", "show"]).contains("query-log  off"));

    assert!(lake.ok(&["lake", "set", "--query-log", "on"]).contains("query-log  on"));
    lake.ok(&["query", "-q", &format!("SELECT eventname FROM {store} WHERE eventname = 'StopLogging'")]);
    lake.expect(1, &["query", "-q", &format!("SELECT nosuchcolumn FROM {store}")]);
    let mut shell = lake
        .command(&[])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = shell.stdin.take().unwrap();
        writeln!(stdin, "SELECT count(*) FROM {store};\nSELECT 1;").unwrap();
    }
    assert!(shell.wait().unwrap().success());
    lake.expect(1, &["audit", "run", "--once"]);

    let log = lake.ok(&[
        "query",
        "-q",
        "--format",
        "ndjson",
        "SELECT source, outcome, sql, events_scanned > 0 AS scanned, \"user\", error FROM trawl_query_log ORDER BY time",
    ]);
    let rows: Vec<serde_json::Value> = log.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let head: Vec<(&str, &str, &str)> = rows[..4]
        .iter()
        .map(|r| (r["source"].as_str().unwrap(), r["outcome"].as_str().unwrap(), r["sql"].as_str().unwrap()))
        .collect();
    assert_eq!(
        head,
        [
            (
                "query",
                "ok",
                format!("SELECT eventname FROM {store} WHERE eventname = 'StopLogging'").as_str()
            ),
            ("query", "error", format!("SELECT nosuchcolumn FROM {store}").as_str()),
            ("shell", "ok", format!("SELECT count(*) FROM {store}").as_str()),
            ("shell", "ok", "SELECT 1"),
        ]
    );
    assert_eq!(rows[0]["scanned"], true);
    assert!(rows[1]["error"].as_str().unwrap().contains("nosuchcolumn"), "{}", rows[1]);
    assert!(rows.iter().all(|r| r["user"] == "tester"), "{log}");
    // Each audit's query, read from the events the run covers (and the run's own reads).
    let audits = rows[4..].iter().filter(|r| r["source"] == "audit").count();
    assert!(audits > 30, "{log}");
    assert_eq!(rows.len(), 4 + audits, "{log}");
    assert!(rows[4..].iter().any(|r| r["sql"].as_str().unwrap().contains("userIdentity.type = 'Root'")));

    // Off again: statements are no longer recorded.
    lake.ok(&["lake", "set", "--query-log", "off"]);
    lake.ok(&["query", "-q", "SELECT 2"]);
    let count = lake.ok(&["query", "-q", "--format", "csv", "SELECT count(*) FROM trawl_query_log"]);
    assert_eq!(
        count.lines().nth(1),
        Some((rows.len() + 1).to_string().as_str()),
        "the reading query above is the one more"
    );
}

/// `trawl lookup` answers as Event history does, checked against the same lookups computed over
/// the fixture JSON by `tests/python/lookup.py`.
#[test]
fn lookups_equal_an_independent_evaluation() {
    let lake = Lake::new("2026-12-01T00:00:00Z");
    lake.ok(&["store", "create", "all", "--retention-days", "3653"]);
    // The raw sets: Panther's curated tests reuse event ids, which a store keeps once.
    let dirs = [
        "otrf-security-datasets",
        "plaso-testdata",
        "stratus-red-team-detonation-logs",
        "trailscraper-fixtures",
    ];
    let dirs: Vec<String> = dirs.iter().map(|d| crate::harness::fixture(d)).collect();
    let mut ingest = vec!["ingest", "--store", "all"];
    ingest.extend(dirs.iter().map(String::as_str));
    lake.ok(&ingest);
    for attrs in [
        &["EventName=StopLogging"][..],
        &["ResourceType=AWS::IAM::Role"],
        // By the ARN, or by its last part as Event history names resources.
        &["ResourceName=arn:aws:s3:::mordors3stack-s3bucket-llp2yingx64a"],
        &["ResourceName=ring.txt"],
        &["Username=christophe"],
        &["EventSource=iam.amazonaws.com", "ReadOnly=false"],
        &["AccessKeyId=AKIAW9X2Q2U25SK79UCX"],
    ] {
        let mut args = vec!["lookup", "--format", "json", "--max-results", "100000"];
        for a in attrs {
            args.extend(["--attr", a]);
        }
        let out: serde_json::Value = serde_json::from_str(&lake.ok(&args)).unwrap();
        let ids: Vec<&str> =
            out["Events"].as_array().unwrap().iter().map(|e| e["EventId"].as_str().unwrap()).collect();
        let mut python: Vec<&str> = vec![&lake.now];
        python.extend(dirs.iter().map(String::as_str));
        python.extend(attrs.iter().copied());
        let expected = crate::support::run_python("lookup.py", &python);
        let expected: Vec<&str> = expected.lines().collect();
        assert!(!expected.is_empty(), "{attrs:?}");
        assert_eq!(ids, expected, "{attrs:?}");
        // Each event carries itself, as CloudTrail's lookup-events output does.
        let first: serde_json::Value =
            serde_json::from_str(out["Events"][0]["CloudTrailEvent"].as_str().unwrap()).unwrap();
        assert_eq!(first["eventID"].as_str(), Some(ids[0]));
    }
    // The table leaves the event's JSON out; a key LookupEvents does not have is refused.
    let table = lake.ok(&["lookup", "--attr", "EventName=StopLogging"]);
    assert!(table.contains("| EventTime ") && !table.contains("CloudTrailEvent"), "{table}");
    let (_, err) = lake.expect(1, &["lookup", "--attr", "Region=us-east-1"]);
    assert!(err.contains("'Region' is not one of EventId, EventName"), "{err}");
}
