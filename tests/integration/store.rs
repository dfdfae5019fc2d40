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
    let (_, err) = lake.expect(1, &["store", "update", "audit-1", "--retention-days", "6"]);
    assert!(err.contains("out of range"), "{err}");
    let (_, err) = lake.expect(1, &["store", "update", "audit-1"]);
    assert!(err.contains("nothing to update"), "{err}");
    let (_, err) = lake.expect(1, &["store", "show", "nope"]);
    assert!(err.contains("no event data store named 'nope'"), "{err}");

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
