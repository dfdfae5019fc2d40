//! CloudTrail Lake compatibility: the AWS-published queries of `tests/compat/lake-sample-queries.sql`
//! run unchanged (placeholders replaced by a store id) against a store of the fixture events.
//! Prints the count; fails when a query that ran before stops running (the ratchet below) or
//! when a published query known to be broken is not refused.

use std::path::Path;

use crate::harness::{Lake, fixtures};

/// Queries of the `ok` and `quirk` kinds that run today. Raise it as the dialect grows.
const RUNNING_AT_LEAST: usize = 40;

struct Sample {
    number: String,
    target: String,
    placeholders: Vec<String>,
    status: String,
    sql: String,
}

fn samples() -> Vec<Sample> {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/compat/lake-sample-queries.sql"),
    )
    .expect("compat corpus");
    text.split("\n-- @@QUERY ")
        .skip(1)
        .map(|chunk| {
            let number = chunk.lines().next().unwrap_or("").trim().to_owned();
            let header = |name: &str| {
                chunk
                    .lines()
                    .find_map(|l| l.strip_prefix(&format!("-- {name}: ")))
                    .unwrap_or("")
                    .trim()
                    .to_owned()
            };
            let placeholders = header("Placeholders")
                .split(", ")
                .filter(|p| !p.is_empty() && *p != "(none)")
                .map(str::to_owned)
                .collect();
            let sql = chunk.split_once('\n').map_or("", |(_, rest)| rest).to_owned();
            Sample { number, target: header("Target"), placeholders, status: header("Status"), sql }
        })
        .collect()
}

/// Replaces `<...EDS...>`-style placeholders and UUID-shaped store ids with `id`.
fn replace_store_names(sql: &str, id: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(open) = rest.find('<') {
        let close = rest[open..].find(['>', '\n']).map(|n| open + n);
        match close.filter(|&c| rest.as_bytes()[c] == b'>') {
            Some(c)
                if ["eds", "event", "data store"]
                    .iter()
                    .any(|k| rest[open..c].to_lowercase().contains(k)) =>
            {
                out.push_str(&rest[..open]);
                out.push_str(id);
                rest = &rest[c + 1..];
            }
            _ => {
                out.push_str(&rest[..=open]);
                rest = &rest[open + 1..];
            }
        }
    }
    out.push_str(rest);
    let words: Vec<String> = out
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|w| {
            let parts: Vec<&str> = w.split('-').collect();
            parts.len() == 5 && parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12])
        })
        .map(str::to_owned)
        .collect();
    for w in words {
        out = out.replace(&w, id);
    }
    out
}

#[test]
fn aws_sample_queries() {
    let lake = Lake::new("2024-12-31T00:00:00Z");
    lake.ok(&["store", "create", "corpus", "--retention-days", "3653"]);
    lake.expect(3, &["ingest", "--store", "corpus", fixtures().to_str().unwrap()]);
    let id = lake.show("corpus")["config"]["id"].as_str().unwrap().to_owned();

    let (mut ran, mut failed, mut refused, mut accepted) = (Vec::new(), Vec::new(), 0, Vec::new());
    for s in samples()
        .into_iter()
        .filter(|s| s.target.starts_with("cloudtrail-eds") || s.target.starts_with("multi-eds"))
    {
        let mut sql = s.sql.clone();
        for p in &s.placeholders {
            let value = if p.contains("date_filter") { "2024-08-01 00:00:00" } else { id.as_str() };
            sql = sql.replace(p.as_str(), value);
        }
        // The docs mirror renders replaceable values inside backticks; some samples name the
        // store with a placeholder their header does not list (`<EDS_ID>`), or with a literal id.
        let sql = replace_store_names(&sql.replace('`', ""), &id);
        let file = lake.dir.path().join(format!("q{}.sql", s.number));
        std::fs::write(&file, &sql).unwrap();
        let out = lake.run(&["query", "-f", file.to_str().unwrap(), "--format", "csv", "-q"]);
        let err = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        if s.status.starts_with("KNOWN-DEFECT") {
            if !out.status.success() && err.starts_with("error: ") {
                refused += 1;
            } else {
                accepted.push(s.number.clone());
            }
        } else if out.status.success() {
            ran.push(s.number.clone());
        } else {
            failed.push(format!("#{}: {}", s.number, err.lines().next().unwrap_or("")));
        }
    }
    let total = ran.len() + failed.len();
    println!("lake-sample-queries: {}/{total} ok queries ran; {refused} known defects refused", ran.len());
    for f in &failed {
        println!("  not yet: {f}");
    }
    assert!(accepted.is_empty(), "broken published queries were accepted: {accepted:?}");
    assert!(ran.len() >= RUNNING_AT_LEAST, "{} ran, fewer than {RUNNING_AT_LEAST}", ran.len());
}
