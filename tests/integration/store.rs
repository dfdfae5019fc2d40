//! Event data store lifecycle through the CLI.

use std::path::Path;
use std::time::SystemTime;

use crate::harness::Lake;

#[test]
fn create_list_show_update() {
    let lake = Lake::new("2026-01-01T00:00:00Z");
    let out = lake.ok(&["store", "create", "audit-1", "--retention-days", "3653"]);
    assert!(out.contains("created event data store audit-1"), "{out}");
    let show = lake.show("audit-1");
    let id = show["config"]["id"].as_str().unwrap().to_owned();
    assert_eq!(show["config"]["retentionDays"], 3653);
    assert_eq!(show["config"]["terminationProtection"], true);
    assert_eq!(show["summary"]["events"], 0);
    // By id too.
    assert_eq!(lake.show(&id)["config"]["name"], "audit-1");
    assert!(lake.ok(&["store", "list"]).contains("audit-1"));

    let (_, err) = lake.expect(1, &["store", "create", "audit-1"]);
    assert!(err.contains("already exists"), "{err}");
    let (_, err) = lake.expect(1, &["store", "create", "x"]);
    assert!(err.contains("3 to 128 characters"), "{err}");
    // A usage error, exit 2, naming the range.
    let (_, err) = lake.expect(2, &["store", "update", "audit-1", "--retention-days", "6"]);
    assert!(err.contains("6 is not in 7..=3653"), "{err}");
    let (_, err) = lake.expect(1, &["store", "update", "audit-1"]);
    assert!(err.contains("nothing to update"), "{err}");
    let (_, err) = lake.expect(1, &["store", "show", "nope"]);
    // Naming the lake searched: run from the wrong directory, that is the mistake.
    assert!(err.contains("no event data store named 'nope' in the lake at /"), "{err}");

    let selectors = r#"[{"Name":"iam","FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]},{"Field":"eventSource","Equals":["iam.amazonaws.com"]}]}]"#;
    lake.ok(&["store", "update", "audit-1", "--selectors", selectors, "--ingestion", "off"]);
    let show = lake.show("audit-1");
    assert_eq!(show["config"]["ingestionEnabled"], false);
    assert_eq!(show["config"]["advancedEventSelectors"][0]["Name"], "iam");
    let (_, err) = lake.expect(
        1,
        &[
            "store",
            "update",
            "audit-1",
            "--selectors",
            r#"[{"FieldSelectors":[{"Field":"eventName","Equals":["X"]}]}]"#,
        ],
    );
    assert!(err.contains("eventCategory"), "{err}");
}

#[test]
fn termination_protection_delete_restore_purge() {
    let lake = Lake::new("2026-01-01T00:00:00Z");
    lake.ok(&["store", "create", "keep-me"]);
    let (_, err) = lake.expect(1, &["store", "delete", "keep-me"]);
    assert!(err.contains("termination protection"), "{err}");
    lake.ok(&["store", "update", "keep-me", "--termination-protection", "off"]);
    lake.ok(&["store", "delete", "keep-me"]);
    assert!(lake.ok(&["store", "list"]).contains("PENDING_DELETION"));
    let (_, err) = lake.expect(1, &["store", "show", "keep-me"]);
    assert!(err.contains("pending deletion"), "{err}");
    let (_, err) =
        lake.expect(1, &["ingest", "--store", "keep-me", &crate::harness::fixture("plaso-testdata")]);
    assert!(err.contains("pending deletion"), "{err}");
    lake.ok(&["store", "restore", "keep-me"]);
    assert_eq!(lake.show("keep-me")["config"]["status"], "ENABLED");

    // Deleted again; six days later it is still restorable, seven days later the next command
    // that writes removes it.
    lake.ok(&["store", "delete", "keep-me"]);
    let later = Lake { now: "2026-01-07T00:00:00Z".into(), ..lake };
    assert!(later.ok(&["store", "list"]).contains("keep-me"));
    later.ok(&["retention", "apply"]);
    assert!(later.root().join("keep-me/_delta_log").exists());
    let later = Lake { now: "2026-01-08T00:00:00Z".into(), ..later };
    assert!(later.root().join("keep-me/_delta_log").exists());
    let (out, _) = later.expect(0, &["retention", "apply", "--dry-run"]);
    assert!(out.contains("keep-me: pending deletion for seven days or more: would be removed"), "{out}");
    let (_, err) = later.expect(0, &["retention", "apply"]);
    assert!(err.contains("removed event data store keep-me"), "{err}");
    assert!(!later.ok(&["store", "list"]).contains("keep-me"));
    assert!(!later.root().join("keep-me").exists());
}

/// Commands that read never write: a store whose pending deletion is over stays whole through
/// `query`, `store list|show`, `export` and `retention apply --dry-run`, and nothing in the lake
/// changes (tests run as root, who may write anywhere: so the tree is compared, file by file).
#[test]
fn read_commands_never_delete() {
    let lake = Lake::new("2026-01-01T00:00:00Z");
    lake.ok(&["store", "create", "kept", "--retention-days", "3653"]);
    lake.ok(&["ingest", "--store", "kept", &crate::harness::fixture("plaso-testdata")]);
    lake.ok(&["store", "create", "gone", "--termination-protection", "off"]);
    lake.ok(&["store", "delete", "gone"]);
    let tree = |root: &Path| -> Vec<(String, u64, SystemTime)> {
        let mut files: Vec<_> = crate::support::walk(root)
            .into_iter()
            .map(|f| {
                let meta = std::fs::metadata(&f).expect("a file of the lake");
                (f, meta.len(), meta.modified().expect("mtime"))
            })
            .collect();
        files.sort();
        files
    };
    let before = tree(&lake.root());
    let later = Lake { now: "2026-02-01T00:00:00Z".into(), ..lake };
    let out = later.dir.path().join("out.jsonl").display().to_string();
    for args in [
        &["store", "list"][..],
        &["store", "show", "kept"],
        &["query", "SELECT count(*) FROM kept"],
        &["export", "--store", "kept", "-o", &out],
        &["retention", "apply", "--dry-run"],
    ] {
        later.ok(args);
    }
    assert_eq!(tree(&later.root()), before);
}

/// One broken store does not break the lake (issue 23, defect 8): a corrupt configuration
/// hides only that store, which is named with why wherever it is asked for.
#[test]
fn one_broken_store_does_not_break_the_lake() {
    let lake = Lake::new("2024-12-31T00:00:00Z");
    let plaso = crate::harness::fixture("plaso-testdata");
    lake.ok(&["ingest", "--store", "good", "--create", &plaso]);
    lake.ok(&["ingest", "--store", "bad", "--create", &plaso]);
    std::fs::write(lake.root().join("bad/_trawl/store.json"), b"{").unwrap();
    let (out, err) = lake.expect(0, &["store", "list"]);
    assert!(out.contains("good") && out.contains("UNREADABLE"), "{out}");
    assert!(err.contains("event data store bad cannot be read: corrupt metadata file"), "{err}");
    let n = lake.ok(&["query", "-q", "--format", "csv", "SELECT count(*) AS n FROM good"]);
    assert_eq!(n, "n\n6\n");
    let (_, err) = lake.expect(1, &["query", "SELECT count(*) FROM bad"]);
    assert!(err.contains("event data store 'bad' cannot be read: corrupt metadata file"), "{err}");
    lake.ok(&["ingest", "--store", "good", "--create", &plaso]);
    let (_, err) = lake.expect(1, &["store", "create", "bad"]);
    assert!(err.contains("already exists"), "{err}");
}

/// The ledger never claims what the Delta log does not hold (issue 23, defect 8): with the
/// newest commit lost, `store show` says so and the next ingest of its source stores its events
/// again, once.
#[test]
fn ledger_follows_the_delta_log() {
    let lake = Lake::new("2024-12-31T00:00:00Z");
    lake.ok(&["ingest", "--store", "lossy", "--create", &crate::harness::fixture("plaso-testdata")]);
    let stratus = crate::harness::fixture("stratus-red-team-detonation-logs");
    lake.ok(&["ingest", "--store", "lossy", "--create", &stratus]);
    let all = lake.events("lossy");
    let log = lake.root().join("lossy/_delta_log");
    let newest = std::fs::read_dir(&log)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .max()
        .unwrap();
    std::fs::remove_file(newest).unwrap();
    let (_, err) = lake.expect(0, &["store", "show", "lossy"]);
    assert!(err.contains("commits are missing"), "{err}");
    assert_eq!(lake.events("lossy"), 6);
    let again = lake.ok(&["ingest", "--store", "lossy", "--create", &stratus]);
    assert_eq!(crate::harness::figure(&again, "events", "stored"), all - 6, "{again}");
    assert_eq!(lake.events("lossy"), all);
}

/// Half-made stores (issue 23, defect 9): a create killed between its Delta table and its
/// configuration leaves a name that can be created again; two ingests that create the same
/// store at once both finish, and store each event once.
#[test]
fn half_made_stores_and_concurrent_creates() {
    let lake = Lake::new("2024-12-31T00:00:00Z");
    lake.ok(&["store", "create", "half"]);
    std::fs::remove_file(lake.root().join("half/_trawl/store.json")).unwrap();
    assert!(!lake.ok(&["store", "list"]).contains("half"));
    lake.ok(&["store", "create", "half"]);
    assert_eq!(lake.events("half"), 0);

    let stratus = crate::harness::fixture("stratus-red-team-detonation-logs");
    let runs: Vec<_> = (0..2)
        .map(|_| {
            lake.command(&["ingest", "--store", "fresh", "--create", &stratus])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for run in runs {
        let out = run.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let events = lake.export("fresh");
    let ids: std::collections::HashSet<&str> =
        events.iter().map(|e| e["eventID"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), events.len(), "duplicates");
    assert_eq!(lake.events("fresh"), events.len() as u64);
}

/// A clock pinned ahead (`TRAWL_NOW` in the future) never deletes sooner than the wall clock
/// would (issue 23, defect 3): neither a store pending deletion nor events within retention.
#[test]
fn a_clock_pinned_ahead_deletes_nothing_early() {
    let future = "2099-01-01T00:00:00Z";
    let lake = Lake::new(future);
    lake.ok(&["store", "create", "doomed", "--termination-protection", "off"]);
    lake.ok(&["store", "delete", "doomed"]);
    // Yesterday's event, in a store of seven days' retention.
    let rfc3339 = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let yesterday = rfc3339(chrono::Utc::now() - chrono::Duration::days(1));
    let event = format!(
        r#"{{"eventVersion":"1.08","eventTime":"{yesterday}","eventSource":"s3.amazonaws.com","eventName":"DeleteBucket","eventID":"fresh-1","recipientAccountId":"111122223333","awsRegion":"us-east-1"}}"#
    );
    let file = lake.dir.path().join("fresh.json");
    std::fs::write(&file, event).unwrap();
    let now = Lake { now: rfc3339(chrono::Utc::now()), ..lake };
    now.ok(&["store", "create", "fresh", "--retention-days", "7"]);
    now.ok(&["ingest", "--store", "fresh", "--create", file.to_str().unwrap()]);
    let ahead = Lake { now: "2099-02-01T00:00:00Z".into(), ..now };
    let out = ahead.ok(&["retention", "apply"]);
    assert!(out.contains("fresh: retention 7 days") && out.contains("deleted 0 partitions"), "{out}");
    assert!(ahead.ok(&["store", "list"]).contains("doomed"));
    assert_eq!(ahead.events("fresh"), 1);
}

/// A command that reads creates no lake (issue 23's rule that reads never write): on a
/// directory that does not exist, `query` of no store answers, `store list` and a query of a
/// store name the missing lake, and nothing is created.
#[test]
fn reads_create_no_lake() {
    let lake = Lake::new("2024-12-31T00:00:00Z");
    let missing = lake.root();
    assert!(!missing.exists());
    assert_eq!(lake.ok(&["query", "-q", "--format", "csv", "SELECT 1 AS one"]), "one\n1\n");
    let (_, err) = lake.expect(1, &["store", "list"]);
    assert!(err.contains(&format!("no lake at {}", missing.display())), "{err}");
    let (_, err) = lake.expect(1, &["query", "SELECT count(*) FROM audit"]);
    assert!(err.contains("no lake at"), "{err}");
    lake.expect(1, &["retention", "apply", "--dry-run"]);
    assert!(!missing.exists(), "a read created the lake");
    lake.ok(&["store", "create", "audit"]);
    assert!(missing.join("audit").exists());
}
