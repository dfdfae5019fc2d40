//! `trawl audit`: the built-in pack over the fixture events, run by the real binary.

use std::collections::HashSet;

use crate::harness::{Lake, fixtures};

fn findings(stdout: &str) -> Vec<serde_json::Value> {
    stdout.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}

#[test]
fn the_builtin_pack_finds_what_the_fixtures_hold_once() {
    let lake = Lake::new("2025-01-01T00:00:00Z");
    lake.ok(&["store", "create", "demo", "--retention-days", "3653"]);
    lake.expect(3, &["ingest", "--store", "demo", fixtures().to_str().unwrap()]);

    // Read commands write nothing: no audit log before the first run.
    assert!(lake.ok(&["audit", "list"]).contains("cloudtrail-tampering"));
    let (history, _) = lake.expect(0, &["audit", "history"]);
    assert_eq!(history.lines().filter(|l| l.starts_with("| 20")).count(), 0, "{history}");
    assert!(!lake.root().join("_trawl").exists());

    let (stdout, stderr) = lake.expect(1, &["audit", "run", "--once", "--format", "ndjson"]);
    let found = findings(&stdout);
    assert!(stderr.contains("0 errors"), "{stderr}");
    let by =
        |audit: &str| -> Vec<&serde_json::Value> { found.iter().filter(|f| f["audit"] == audit).collect() };
    // The root user's calls, and CloudTrail switched off or deleted (Stratus Red Team's
    // detonations, among others), each with its event.
    assert!(!by("root-account-activity").is_empty());
    let tampering: HashSet<&str> =
        by("cloudtrail-tampering").iter().filter_map(|f| f["row"]["eventname"].as_str()).collect();
    assert!(tampering.contains("StopLogging") && tampering.contains("DeleteTrail"), "{tampering:?}");
    for f in &found {
        // Event-level audits name their event (one fixture event has no id).
        assert_eq!(f["eventid"], f["row"]["eventid"], "{f}");
        assert_ne!(f["severity"], "info", "informational audits alert nobody");
    }
    assert!(found.iter().filter(|f| f["eventid"].is_string()).count() > found.len() * 9 / 10);
    let ids: HashSet<&str> = found.iter().map(|f| f["finding_id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), found.len());

    // Nothing new: nothing found, exit 0.
    let (stdout, _) = lake.expect(0, &["audit", "run", "--once", "--format", "ndjson"]);
    assert_eq!(stdout, "");

    // The findings are in the lake, queryable, once each.
    let count =
        |sql: &str| lake.ok(&["query", "-q", "--format", "csv", sql]).lines().nth(1).unwrap().to_owned();
    let alerted = count(
        "SELECT count(DISTINCT finding_id) FROM trawl_audit_findings WHERE severity <> 'info' AND NOT suppressed",
    );
    assert_eq!(alerted, found.len().to_string());
    assert_eq!(count("SELECT count(*) FROM trawl_audit_runs"), "70");
    let tampering_rows = count(
        "SELECT count(*) FROM trawl_audit_findings WHERE audit = 'cloudtrail-tampering' \
         AND json_extract_scalar(row, '$.eventname') IN ('StopLogging', 'DeleteTrail', 'UpdateTrail', 'PutEventSelectors')",
    );
    let expected = by("cloudtrail-tampering")
        .iter()
        .filter(|f| {
            ["StopLogging", "DeleteTrail", "UpdateTrail", "PutEventSelectors"]
                .contains(&f["row"]["eventname"].as_str().unwrap())
        })
        .count();
    assert_eq!(tampering_rows, expected.to_string());

    // The SQL of an audit; a typo gets the closest id.
    assert!(lake.ok(&["audit", "sql", "cloudtrail-tampering"]).contains("StopLogging"));
    let (_, stderr) = lake.expect(1, &["audit", "sql", "cloudtrail-tamperin"]);
    assert!(stderr.contains("did you mean 'cloudtrail-tampering'?"), "{stderr}");
}

#[test]
fn packs_that_are_wrong_say_where() {
    let lake = Lake::new("2025-01-01T00:00:00Z");
    let pack = lake.dir.path().join("team.toml");
    std::fs::write(
        &pack,
        "[[audit]]\nid = \"x\"\ntitle = \"t\"\nsql = \"SELECT 1 FROM $EDS_ID\"\nschedule = \"weekly\"\n",
    )
    .unwrap();
    let (_, stderr) = lake.expect(1, &["audit", "list", "--pack", pack.to_str().unwrap()]);
    assert!(stderr.contains("team.toml: audit 'x': schedule: 'weekly' is not a schedule"), "{stderr}");
}

#[test]
fn sigma_rules_agree_with_an_independent_evaluator() {
    let now = "2025-01-01T00:00:00Z";
    let lake = Lake::new(now);
    lake.ok(&["store", "create", "demo", "--retention-days", "3653"]);
    lake.expect(3, &["ingest", "--store", "demo", fixtures().to_str().unwrap()]);
    let (stdout, stderr) =
        lake.expect(1, &["audit", "run", "--pack", "sigma", "--once", "--format", "ndjson"]);
    assert!(!stderr.contains("left out"), "every shipped rule converts: {stderr}");
    for f in findings(&stdout) {
        // The licence's terms: every finding names the rule's author and links the rule.
        assert!(
            f["author"].is_string()
                && f["link"].as_str().unwrap().starts_with("https://github.com/SigmaHQ/sigma/"),
            "{f}"
        );
    }
    let file = lake.dir.path().join("sigma.ndjson");
    std::fs::write(&file, &stdout).unwrap();
    let rules = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/audit/sigma/rules");
    let report = crate::support::run_python(
        "sigma.py",
        &["check", fixtures().to_str().unwrap(), file.to_str().unwrap(), rules.to_str().unwrap(), now],
    );
    println!("{report}");
}

/// Lines a child writes, as they come.
fn lines(out: impl std::io::Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits for `n` lines (at most a minute).
fn take(rx: &std::sync::mpsc::Receiver<String>, n: usize) -> Vec<String> {
    (0..n)
        .map(|_| rx.recv_timeout(std::time::Duration::from_secs(60)).expect("a finding within a minute"))
        .collect()
}

#[test]
fn the_daemon_audits_each_commit_once_until_stopped() {
    let lake = Lake::new("2025-01-01T00:00:00Z");
    lake.ok(&["store", "create", "demo", "--retention-days", "3653"]);
    let pack = lake.dir.path().join("watch.toml");
    std::fs::write(
        &pack,
        "[[audit]]\nid = \"every-event\"\ntitle = \"Every event\"\nschedule = \"on-commit\"\n\
         sql = \"SELECT eventid, eventtime, eventname FROM $EDS_ID\"\n",
    )
    .unwrap();
    let mut daemon = lake
        .command(&["audit", "daemon", "--pack", pack.to_str().unwrap(), "--poll", "1s", "--format", "ndjson"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let found = lines(daemon.stdout.take().unwrap());
    let stratus = fixtures().join("stratus-red-team-detonation-logs");
    lake.ok(&["ingest", "--store", "demo", stratus.to_str().unwrap()]);
    let first = lake.events("demo") as usize;
    let mut ids: Vec<String> = take(&found, first);
    // Real files with two damaged records (exit 3): the 15 others are stored.
    lake.expect(3, &["ingest", "--store", "demo", fixtures().join("cloudtrail2sightings").to_str().unwrap()]);
    let all = lake.events("demo") as usize;
    ids.extend(take(&found, all - first));
    // Nothing more: each event once.
    assert!(found.recv_timeout(std::time::Duration::from_secs(3)).is_err());
    let ids: HashSet<String> = ids
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["finding_id"].to_string())
        .collect();
    assert_eq!(ids.len(), all);

    std::process::Command::new("kill").args(["-TERM", &daemon.id().to_string()]).status().unwrap();
    let out = daemon.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("audit daemon: stopped"), "{stderr}");
}
