//! The SQL shell through a pseudo-terminal (`tests/python/pty_shell.py`: multi-line input,
//! completion, meta-commands, Ctrl-C),
//! the same statements from stdin, `trawl demo` without a terminal, and errors with suggestions.

use std::io::Write;
use std::process::Stdio;

use crate::harness::{Lake, fixture};
use crate::support::run_python;

fn stratus() -> Lake {
    let lake = Lake::new("2024-12-31T00:00:00Z");
    lake.ok(&["store", "create", "demo"]);
    lake.ok(&["ingest", "--store", "demo", &fixture("stratus-red-team-detonation-logs")]);
    lake
}

/// `SELECT ... ;` through `trawl query`, as CSV without its header.
fn answer(lake: &Lake, sql: &str) -> String {
    let out = lake.ok(&["query", "-q", "--format", "csv", sql]);
    out.lines().skip(1).collect::<Vec<_>>().join("\n")
}

#[test]
fn shell_on_a_terminal() {
    let lake = stratus();
    let deleted = answer(&lake, "SELECT count(*) FROM demo WHERE eventName = 'DeleteTrail'");
    let history = lake.dir.path().join("history");
    lake.ok(&["lake", "set", "--query-log", "on"]);
    lake.ok(&[
        "saved",
        "add",
        "deletes",
        "SELECT count(*) AS n FROM demo WHERE eventName = $name",
        "--description",
        "events of one name",
    ]);
    let report = run_python(
        "pty_shell.py",
        &[env!("CARGO_BIN_EXE_trawl"), lake.root().to_str().unwrap(), history.to_str().unwrap(), &deleted],
    );
    println!("{report}");
}

#[test]
fn statements_from_stdin_and_errors() {
    let lake = stratus();
    let run = |input: &str| {
        let mut child = lake
            .command(&[])
            // Set, and not used: stdout is not a terminal.
            .env("PAGER", "sed s/^/PAGED:/")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let n = answer(&lake, "SELECT count(*) FROM demo");
    let (code, out, err) =
        run("\\format csv\nSELECT count(*) AS n FROM $EDS_ID;\n-- a comment; still one\n\\d\n");
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains(&format!("n\n{n}\n")), "{out}");
    assert!(out.contains("demo\t"), "{out}");

    // Not on a terminal: no pager, no cut cells; nested values as compact JSON, nulls left out.
    let (code, out, err) = run("SELECT eventid, eventjson FROM demo LIMIT 30;\n");
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("(30 rows)") && !out.contains("PAGED:") && !out.contains('…'), "{out}");
    let (code, out, err) =
        run("SELECT useridentity FROM demo WHERE useridentity.sessioncontext IS NULL LIMIT 1;\n");
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("| {\"") && !out.contains("null") && !out.contains("sessioncontext"), "{out}");

    // \d STORE lists the keys its map columns hold, counted over a sample, and the fields of
    // each element of `resources`; both as SQL over the store says.
    let (code, out, err) = run("\\d demo\n");
    assert_eq!(code, Some(0), "{err}");
    let keys = answer(
        &lake,
        "SELECT k || ' (' || n || ')' FROM (SELECT k, count(*) AS n FROM (SELECT unnest(map_keys(requestparameters)) AS k \
         FROM demo) t GROUP BY k ORDER BY n DESC, k LIMIT 1) u",
    );
    assert!(out.contains(&format!("keys seen (of 10000 events at most): {keys}, ")), "{keys}\n{out}");
    assert!(out.contains("  [].type ") && out.contains("  [].arn "), "{out}");

    // \lookup is `trawl lookup` over $EDS_ID's store.
    let (code, out, err) = run("\\lookup EventName=DeleteTrail\n");
    assert_eq!(code, Some(0), "{err}");
    let deleted = answer(&lake, "SELECT count(*) FROM demo WHERE eventname = 'DeleteTrail'");
    assert!(out.contains("| DeleteTrail ") && out.contains(&format!("({deleted} row")), "{out}");

    // \dt is \d, as in psql; an unknown meta-command names the closest.
    let (code, out, err) = run("\\dt\n\\timng\n");
    assert_eq!(code, Some(1));
    assert!(out.contains("demo\t"), "{out}");
    assert!(err.contains("unknown command \\timng; did you mean \\timing?"), "{err}");

    let (code, _, err) = run("SELECT 1 FROM dmeo;\nSELECT x FROM demo;\n");
    assert_eq!(code, Some(1));
    assert!(err.contains("unknown event data store 'dmeo' in the lake at "), "{err}");
    assert!(err.contains("; did you mean 'demo'?"), "{err}");
    assert!(err.contains("unknown column 'x'"), "{err}");

    // A file that includes itself is refused, not run until the stack overflows (issue 23,
    // defect 12); the statements before the include ran.
    let file = lake.dir.path().join("self.sql");
    std::fs::write(&file, format!("SELECT 41 + 1 AS answer;\n\\i {}\n", file.display())).unwrap();
    let (code, out, err) = run(&format!("\\format csv\n\\i {}\n", file.display()));
    assert_eq!(code, Some(1), "{err}");
    assert!(out.contains("answer\n42\n"), "{out}");
    assert!(err.contains("the file includes itself"), "{err}");
    // --param values are literals: a quote in one cannot end the string.
    let (code, out, err) = run(
        "\\format csv\n\\set who x' OR 1=1 --\nSELECT count(*) AS n FROM demo WHERE useridentity.username = $who;\n",
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("n\n0\n"), "{out}");

    // Every meta-command's output goes where \o sends results; statements split around
    // comments that hold a `;`; a wrong call names the command's arguments.
    let file = lake.dir.path().join("out.txt");
    let (code, out, err) = run(&format!(
        "\\o {}\n\\d\n\\set who alice\n\\set\n\\examples\n\\?\n\\format csv\nSELECT 1 AS a /* ; */, 2 AS b;\n\\o\n\\format wide\n\\trail x\n",
        file.display()
    ));
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(out, "", "{out}");
    let written = std::fs::read_to_string(&file).unwrap();
    for want in ["demo\t", "who = alice\n", "01-who-deleted-buckets", "\\examples [N]", "a,b\n1,2\n"] {
        assert!(written.contains(want), "{want:?} in {written}");
    }
    assert!(err.contains("unknown format wide") && err.contains("usage: \\trail NAME URL"), "{err}");
}

/// Values out of range are refused by the argument parser, naming the range (exit 2), never
/// clamped; the help gives the retention limits from the store's constants.
#[test]
fn values_out_of_range_are_refused() {
    let lake = Lake::new("2025-01-01T00:00:00Z");
    for (args, want) in [
        (&["store", "create", "x", "--retention-days", "5"][..], "5 is not in 7..=3653"),
        (&["ingest", "--threads", "0", "."], "0 is not in 1.."),
        (&["ingest", "--commit-mib", "0", "."], "0 is not in 1.."),
        (&["ingest", "--checkpoint-every", "0", "."], "0 is not in 1.."),
        (&["query", "--memory-mib", "0", "SELECT 1"], "0 is not in 1.."),
    ] {
        let (_, err) = lake.expect(2, args);
        assert!(err.contains(want), "{args:?}: {err}");
    }
    let help = lake.ok(&["store", "create", "--help"]);
    assert!(help.contains("(7 to 3653) [default on create: 2557]"), "{help}");
    assert!(!lake.root().exists(), "a refused command wrote nothing");
}

#[test]
fn demo_without_a_terminal_prints_three_audits() {
    let lake = Lake::new("2025-01-01T00:00:00Z");
    let (out, err) = lake.expect(0, &["demo"]);
    assert!(err.contains("demo store:"), "{err}");
    assert_eq!(out.matches("-- ").count(), 3, "{out}");
    assert!(out.contains("Who deleted S3 buckets"), "{out}");
    // Each example's SQL is shown before its result.
    assert_eq!(out.matches("FROM $EDS_ID").count(), 3, "{out}");
    assert!(out.contains("StopLogging"), "{out}");
    // A second run keeps the store and stores nothing new.
    let (_, err) = lake.expect(0, &["demo"]);
    assert!(err.contains("demo store: 0 events stored"), "{err}");
}

/// `trawl saved`: queries saved in the lake, listed, shown, run with their placeholders filled,
/// removed; `trawl history`: the statements the query log kept, oldest of the last N first.
#[test]
fn saved_queries_and_history() {
    let lake = stratus();
    let sql = "SELECT count(*) AS n FROM demo WHERE eventName = $name";
    lake.ok(&["saved", "add", "deletes", sql, "--description", "events of one name"]);
    let file = lake.dir.path().join("recent.sql");
    std::fs::write(&file, "-- the newest event\nSELECT max(eventtime) AS newest FROM demo;\n").unwrap();
    lake.ok(&["saved", "add", "recent", "-f", file.to_str().unwrap()]);

    let (_, err) = lake.expect(1, &["saved", "add", "deletes", "SELECT 1"]);
    assert!(err.contains("a saved query named 'deletes' already exists"), "{err}");
    let (_, err) = lake.expect(1, &["saved", "add", "two", "SELECT 1; SELECT 2"]);
    assert!(err.contains("one statement"), "{err}");
    let (_, err) = lake.expect(1, &["saved", "add", "../up", "SELECT 1"]);
    assert!(err.contains("invalid saved query"), "{err}");

    let list = lake.ok(&["saved", "list"]);
    assert!(
        list.contains("deletes") && list.contains("$name") && list.contains("events of one name"),
        "{list}"
    );
    let json: serde_json::Value = serde_json::from_str(&lake.ok(&["saved", "list", "--json"])).unwrap();
    assert_eq!(json[0]["name"], "deletes");
    assert_eq!(json[0]["placeholders"], serde_json::json!(["name"]));
    assert_eq!(json[0]["sql"], sql);
    assert_eq!(json[1]["sql"], "SELECT max(eventtime) AS newest FROM demo");
    assert_eq!(lake.ok(&["saved", "show", "deletes"]), format!("-- events of one name\n{sql};\n"));

    // A run fills the placeholders, and answers as the same SQL run by `query` does.
    let (_, err) = lake.expect(1, &["saved", "run", "deletes"]);
    assert!(err.contains("saved query deletes needs --param name=..."), "{err}");
    let ran = lake.ok(&["saved", "run", "deletes", "--param", "name=DeleteTrail", "--format", "csv", "-q"]);
    let direct = answer(&lake, "SELECT count(*) AS n FROM demo WHERE eventName = 'DeleteTrail'");
    assert_eq!(ran, format!("n\n{direct}\n"));
    let (_, err) = lake.expect(1, &["saved", "run", "delets"]);
    assert!(
        err.contains("no saved query named 'delets' in the lake at ")
            && err.contains("did you mean 'deletes'?"),
        "{err}"
    );

    // `--replace` replaces; `rm` removes.
    lake.ok(&["saved", "add", "deletes", "SELECT 1 AS one", "--replace"]);
    assert_eq!(lake.ok(&["saved", "run", "deletes", "--format", "csv", "-q"]), "one\n1\n");
    lake.ok(&["saved", "rm", "deletes"]);
    let (_, err) = lake.expect(1, &["saved", "show", "deletes"]);
    assert!(err.contains("no saved query named 'deletes'"), "{err}");
    assert!(!lake.ok(&["saved", "list"]).contains("deletes"));

    // History: nothing kept before the query log is on, then each statement with its outcome.
    let (out, err) = lake.expect(0, &["history", "--format", "csv"]);
    assert!(err.contains("keeps no query log"), "{err}");
    assert_eq!(out.lines().count(), 1, "{out}");
    lake.ok(&["lake", "set", "--query-log", "on"]);
    lake.ok(&["query", "-q", "SELECT count(*)\n  FROM demo"]);
    lake.expect(1, &["query", "-q", "SELECT nope FROM demo"]);
    lake.ok(&["saved", "run", "recent", "-q"]);
    let out = lake.ok(&["history", "-n", "2", "--format", "json"]);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(rows.len(), 2, "{out}");
    assert_eq!(rows[0]["sql"], "SELECT nope FROM demo");
    assert_eq!(rows[0]["outcome"], "error");
    assert!(rows[0]["error"].as_str().unwrap().contains("unknown column 'nope'"), "{out}");
    assert_eq!(rows[1]["source"], "saved");
    assert_eq!(rows[1]["outcome"], "ok");
    let events = answer(&lake, "SELECT count(*) FROM demo");
    assert_eq!(rows[1]["events_scanned"].to_string(), events, "{out}");
    let all = lake.ok(&["history", "--format", "csv"]);
    // One line a statement: the line break inside the first is a space.
    assert!(all.contains(",SELECT count(*) FROM demo,"), "{all}");
}
