//! `sql-examples/`: every audit query runs on a store of the fixtures, and its rows equal the
//! answer a Python script computes from the raw fixture JSON (`tests/python/examples.py`).

use std::path::Path;

use crate::harness::{Lake, fixtures};
use crate::support::run_python;

#[test]
fn sql_examples_agree_with_an_independent_computation() {
    let now = "2025-01-01T00:00:00Z";
    let lake = Lake::new(now);
    lake.ok(&["store", "create", "demo", "--retention-days", "3653"]);
    lake.expect(3, &["ingest", "--store", "demo", fixtures().to_str().unwrap()]);

    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("sql-examples");
    let results = lake.dir.path().join("results");
    std::fs::create_dir(&results).unwrap();
    let mut examples: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    examples.sort();
    assert!(examples.len() >= 30, "{} examples", examples.len());
    for path in &examples {
        let sql = std::fs::read_to_string(path).unwrap();
        assert!(sql.starts_with("-- Question: "), "{} has no question header", path.display());
        let name = path.file_stem().unwrap().to_str().unwrap();
        let out = results.join(format!("{name}.json"));
        let file = path.to_str().unwrap();
        let args = ["query", "-q", "--format", "json", "--param", "EDS_ID=demo", "-f", file, "-o"];
        let mut args = args.to_vec();
        args.push(out.to_str().unwrap());
        lake.ok(&args);
    }
    let report = run_python(
        "examples.py",
        &["check", fixtures().to_str().unwrap(), results.to_str().unwrap(), now, dir.to_str().unwrap()],
    );
    println!("{report}");
}
