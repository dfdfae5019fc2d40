//! SQL behaviour pinned by sqllogictest files (`tests/slt/*.slt`), run through the library on a
//! store of the Stratus Red Team fixture events.
//!
//! Records, separated by blank lines:
//!
//! ```text
//! query <column types> [rowsort]       statement error <text the error contains>
//! SELECT ...                           SELECT ...
//! ----
//! row values separated by spaces (NULL, (empty) for '')
//!
//! scan <figure><op><n> ...             (op is =, <= or >=; figures of QueryStats)
//! SELECT ...
//!
//! contains <text>|<text>...            (the output, rows joined, holds each text)
//! EXPLAIN ANALYZE SELECT ...
//! ```
//!
//! `$EDS_ID` is the store's id. `TRAWL_SLT_PRINT=1` prints every actual result.

use std::path::Path;

use arrow::array::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use trawl_query::{Lake as QueryLake, QueryStats};

use crate::harness::{Lake, fixture};

#[test]
fn sqllogictest_files() {
    let lake = Lake::new("2024-12-31T00:00:00Z");
    lake.ok(&["store", "create", "stratus", "--retention-days", "3653"]);
    lake.ok(&["ingest", "--store", "stratus", &fixture("stratus-red-team-detonation-logs")]);
    let id = lake.show("stratus")["config"]["id"].as_str().unwrap().to_owned();

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut sql_lake = runtime.block_on(QueryLake::open(lake.root().to_str().unwrap())).unwrap();
    sql_lake.set_param("EDS_ID", &id);

    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/slt");
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let (mut records, mut failures) = (0, Vec::new());
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        for (line, record) in parse(&text) {
            records += 1;
            if let Err(why) = runtime.block_on(run(&sql_lake, &record)) {
                failures.push(format!("{name}:{line}: {why}"));
            }
        }
    }
    assert!(files.len() >= 4 && records >= 75, "{} files, {records} records", files.len());
    assert!(
        failures.is_empty(),
        "{} of {records} records failed:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    println!("sqllogictest: {records} records in {} files: ok", files.len());
}

enum Record {
    Query { sql: String, sort: bool, expected: Vec<String> },
    Error { sql: String, contains: String },
    Scan { sql: String, checks: Vec<String> },
    Contains { sql: String, texts: Vec<String> },
}

/// The records of a file with the line each starts on.
fn parse(text: &str) -> Vec<(usize, Record)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let head = lines[i].trim();
        if head.is_empty() || head.starts_with('#') {
            i += 1;
            continue;
        }
        let start = i + 1;
        i += 1;
        let mut sql = Vec::new();
        while i < lines.len() && !lines[i].trim().is_empty() && lines[i].trim() != "----" {
            sql.push(lines[i]);
            i += 1;
        }
        let sql = sql.join("\n");
        let mut expected = Vec::new();
        if i < lines.len() && lines[i].trim() == "----" {
            i += 1;
            while i < lines.len() && !lines[i].trim().is_empty() {
                expected.push(lines[i].trim_end().to_owned());
                i += 1;
            }
        }
        let words: Vec<&str> = head.split_whitespace().collect();
        let record = match words.as_slice() {
            ["query", _types, rest @ ..] => Record::Query { sql, sort: rest.contains(&"rowsort"), expected },
            ["statement", "error", rest @ ..] => Record::Error { sql, contains: rest.join(" ") },
            ["scan", checks @ ..] => {
                Record::Scan { sql, checks: checks.iter().map(|c| c.to_string()).collect() }
            }
            ["contains", ..] => Record::Contains {
                sql,
                texts: head["contains".len()..].trim().split('|').map(str::to_owned).collect(),
            },
            _ => panic!("line {start}: unknown record '{head}'"),
        };
        out.push((start, record));
    }
    out
}

async fn run(lake: &QueryLake, record: &Record) -> Result<(), String> {
    match record {
        Record::Query { sql, sort, expected } => {
            let (batches, _) = lake.collect(sql).await.map_err(|e| format!("{sql}\nerror: {e}"))?;
            let mut rows = rows(&batches);
            if *sort {
                rows.sort();
            }
            if std::env::var_os("TRAWL_SLT_PRINT").is_some() {
                println!("{sql}\n----\n{}\n", rows.join("\n"));
            }
            if &rows != expected {
                return Err(format!("{sql}\nexpected:\n{}\ngot:\n{}", expected.join("\n"), rows.join("\n")));
            }
        }
        Record::Error { sql, contains } => match lake.collect(sql).await {
            Ok(_) => return Err(format!("{sql}\nran, but should fail with: {contains}")),
            Err(e) if !e.to_string().contains(contains.as_str()) => {
                return Err(format!("{sql}\nfailed with: {e}\nnot with: {contains}"));
            }
            Err(_) => {}
        },
        Record::Contains { sql, texts } => {
            let (batches, _) = lake.collect(sql).await.map_err(|e| format!("{sql}\nerror: {e}"))?;
            let output = rows(&batches).join("\n");
            if let Some(missing) = texts.iter().find(|t| !output.contains(t.as_str())) {
                return Err(format!("{sql}\noutput lacks {missing}:\n{output}"));
            }
        }
        Record::Scan { sql, checks } => {
            let (_, stats) = lake.collect(sql).await.map_err(|e| format!("{sql}\nerror: {e}"))?;
            for check in checks {
                if !holds(check, &stats) {
                    return Err(format!("{sql}\n{check} does not hold: {stats:?}"));
                }
            }
        }
    }
    Ok(())
}

fn holds(check: &str, s: &QueryStats) -> bool {
    let (name, op, n) = ["<=", ">=", "="]
        .iter()
        .find_map(|op| check.split_once(op).map(|(name, n)| (name, *op, n.parse::<u64>().expect("a number"))))
        .unwrap_or_else(|| panic!("bad scan check {check}"));
    let value = match name {
        "events_scanned" => s.events_scanned,
        "events_matched" => s.events_matched,
        "files_scanned" => s.files_scanned,
        "files_pruned" => s.files_pruned,
        "bytes_scanned" => s.bytes_scanned,
        other => panic!("unknown figure {other}"),
    };
    match op {
        "<=" => value <= n,
        ">=" => value >= n,
        _ => value == n,
    }
}

fn rows(batches: &[RecordBatch]) -> Vec<String> {
    let options = FormatOptions::default().with_null("NULL");
    let mut out = Vec::new();
    for b in batches {
        let formatters: Vec<ArrayFormatter<'_>> =
            b.columns().iter().map(|c| ArrayFormatter::try_new(c.as_ref(), &options).unwrap()).collect();
        for row in 0..b.num_rows() {
            let cells: Vec<String> = formatters
                .iter()
                .map(|f| match f.value(row).to_string() {
                    s if s.is_empty() => "(empty)".to_owned(),
                    s => s,
                })
                .collect();
            out.push(cells.join(" "));
        }
    }
    out
}
