//! Ingest, export and retention of real CloudTrail files through the CLI.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::harness::{Lake, figure, fixture, fixtures, stratus_copies};
use crate::support::{run_python, walk};

const MALFORMED: [&str; 3] = [
    "opensearch-catalog-aws-cloudtrail/samples-large.json",
    "cloudtrail2sightings/aws.execution.ec2-user-data.json",
    "edge-cases-aws-cloudtrail-processing-library/SerializerTestFileBadJsonFormat.json",
];

/// Every fixture ingests; malformed files are reported precisely with their good records kept;
/// the export equals the input; pyarrow reads the Parquet; a second run adds nothing.
#[test]
fn every_fixture_round_trips() {
    // Ten years of retention back from 2023-06 keeps even the 2013 edge-case events.
    let lake = Lake::new("2023-06-01T00:00:00Z");
    lake.ok(&["store", "create", "corpus", "--retention-days", "3653"]);
    let all = fixtures().display().to_string();
    let (report, warnings) = lake.expect(3, &["ingest", "--store", "corpus", &all]);
    let stored = figure(&report, "events", "stored");
    assert!(stored > 1400, "{report}");
    assert_eq!(figure(&report, "files", "digest"), 1, "{report}");
    assert_eq!(figure(&report, "left", "insights"), 1, "{report}");

    // The three malformed files, each named with a line, byte offset and reason.
    for (file, reason) in [
        (MALFORMED[0], ":85: byte 3053: unexpected '}' between records"),
        (
            MALFORMED[0],
            ":2376: record 49 (byte 99777): key must be a string at byte 102085; the event inside it was recovered",
        ),
        (MALFORMED[1], ":112: byte 3327: missing ',' between records"),
        (MALFORMED[2], ":3: record 0 (byte 27): key must be a string at byte 1293"),
    ] {
        let want = format!("{}{reason}", fixture(file));
        assert!(warnings.contains(&want), "missing warning {want}\n{warnings}");
    }
    // Good records around the damage are kept: all 840 of the OpenSearch sample's events (the
    // one inside the broken wrapper of record 49 recovered) and all fifteen of the Datadog export.
    let events = lake.export("corpus");
    let opensearch = events.iter().filter(|e| e["recipientAccountId"] == "347283850106").count();
    assert_eq!(opensearch, 840);
    let sightings = events.iter().filter(|e| e["recipientAccountId"] == "677301038893").count();
    assert_eq!(sightings, 15);
    assert_eq!(events.len() as u64, stored);
    assert_eq!(lake.events("corpus"), stored);

    // Export equals input, checked by a scanner that shares no code with trawl; pyarrow reads
    // the Parquet with eventtime a UTC timestamp and nested columns intact.
    let export = lake.dir.path().join("corpus.jsonl");
    run_python("verify.py", &["export", export.to_str().unwrap(), &all]);
    let store_dir = lake.root().join("corpus");
    run_python("verify.py", &["parquet", store_dir.to_str().unwrap(), &stored.to_string()]);

    // Idempotent: the same files again add nothing.
    let again = lake.expect(0, &["ingest", "--store", "corpus", &all]).0;
    assert_eq!(figure(&again, "events", "stored"), 0, "{again}");
    assert_eq!(figure(&again, "files", "read"), 0, "{again}");
    assert_eq!(lake.events("corpus"), stored);
}

/// Same eventID and account: stored once, within a run and across runs.
#[test]
fn duplicates_stored_once() {
    let lake = Lake::new("2024-06-01T00:00:00Z");
    lake.ok(&["store", "create", "dups", "--retention-days", "3653"]);
    let plain = fixture(
        "trailscraper-fixtures/111111111111_CloudTrail_eu-central-1_20171211T1505Z_A6kvhMoVeCsc7v8U.json",
    );
    let first = lake.ok(&["ingest", "--store", "dups", &plain]);
    assert_eq!(figure(&first, "events", "stored"), 2, "{first}");
    // The gzip copy of the same delivery file: a new source, every event a duplicate.
    let gz = format!("{plain}.gz");
    let second = lake.ok(&["ingest", "--store", "dups", &gz]);
    assert_eq!((figure(&second, "events", "stored"), figure(&second, "events", "duplicates")), (0, 2));
    // Within one run: the smoke file repeats two of them.
    let third = lake.ok(&["ingest", "--store", "dups", &fixture("trailscraper-fixtures")]);
    assert_eq!(
        (figure(&third, "events", "stored"), figure(&third, "events", "duplicates")),
        (1, 2),
        "{third}"
    );
    let ids: Vec<String> =
        lake.export("dups").iter().map(|e| e["eventID"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids.len(), 3);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 3);
}

#[test]
fn selectors_filter_at_ingest() {
    let lake = Lake::new("2024-12-31T00:00:00Z");
    let selectors = r#"[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]},{"Field":"eventSource","StartsWith":["iam."]},{"Field":"eventName","NotStartsWith":["Get","List"]}]}]"#;
    lake.ok(&["store", "create", "iam-writes", "--selectors", selectors]);
    let report = lake.ok(&["ingest", "--store", "iam-writes", &fixture("stratus-red-team-detonation-logs")]);
    let stored = figure(&report, "events", "stored");
    assert!(stored > 5 && figure(&report, "left", "selectors") > 200, "{report}");
    for e in lake.export("iam-writes") {
        assert_eq!(e["eventSource"], "iam.amazonaws.com");
        let name = e["eventName"].as_str().unwrap();
        assert!(!name.starts_with("Get") && !name.starts_with("List"), "{name}");
    }
}

#[test]
fn retention_at_ingest_and_apply() {
    // Seven days of retention on 2024-08-05: the events of 2024-07-30..08-02 are kept, the
    // later ones too, and the 2022 ones are left out.
    let lake = Lake::new("2024-08-05T00:00:00Z");
    lake.ok(&["store", "create", "short", "--retention-days", "7"]);
    let stratus = fixture("stratus-red-team-detonation-logs");
    let report = lake.ok(&[
        "ingest",
        "--store",
        "short",
        &stratus,
        &fixture("cloudtrail2sightings/aws.defense-evasion.cloudtrail-delete.json"),
    ]);
    assert_eq!(figure(&report, "left", "retention"), 1, "{report}");
    let before = lake.events("short");
    assert!(before > 250);

    // On 2024-08-09 the partitions up to 2024-08-01 have expired.
    let later = Lake { now: "2024-08-09T12:00:00Z".into(), ..lake };
    let dry = later.ok(&["retention", "apply", "--store", "short", "--dry-run"]);
    assert!(dry.contains("would delete 3 partitions"), "{dry}");
    assert_eq!(later.events("short"), before);
    let applied = later.ok(&["retention", "apply"]);
    assert!(applied.contains("deleted 3 partitions"), "{applied}");
    assert!(applied.contains("eventdate=2024-07-30"), "{applied}");
    let left = later.export("short");
    assert_eq!(left.len() as u64, later.events("short"));
    assert!(left.iter().all(|e| e["eventTime"].as_str().unwrap() >= "2024-08-02"));
    // The files are gone from disk too (the Delta checkpoint is Parquet too, and not data).
    let parquet = walk(&later.root().join("short"))
        .into_iter()
        .filter(|p| p.ends_with(".parquet") && !p.contains("_delta_log"))
        .count();
    assert_eq!(parquet as u64, later.show("short")["summary"]["files"].as_u64().unwrap());
}

#[test]
fn bad_paths_and_strict() {
    let lake = Lake::new("2024-12-01T00:00:00Z");
    let (_, err) = lake.expect(1, &["ingest", "/no/such/file.json"]);
    assert!(err.contains("/no/such/file.json") && err.contains("No such file"), "{err}");

    lake.ok(&["store", "create", "strict", "--retention-days", "3653"]);
    let bad = fixture(MALFORMED[1]);
    let good = fixture("cloudtrail2sightings/aws.defense-evasion.cloudtrail-delete.json");
    let (report, err) = lake.expect(1, &["ingest", "--store", "strict", "--strict", &bad, &good]);
    assert!(err.contains("error: ") && err.contains("--strict: nothing from this file was stored"), "{err}");
    assert_eq!(figure(&report, "events", "stored"), 1, "{report}");
    // Without --strict the good records of the malformed file are kept: exit 3.
    let (report, _) = lake.expect(3, &["ingest", "--store", "strict", &bad]);
    assert_eq!(figure(&report, "events", "stored"), 3, "{report}");
}

/// kill -9 in the middle of an ingest leaves only whole commits; the rerun finishes the job
/// with no loss and no duplicate.
#[test]
fn killed_ingest_resumes_without_loss_or_duplicates() {
    let lake = Lake::new("2024-12-31T00:00:00Z");
    let input = lake.dir.path().join("input");
    let expected = stratus_copies(&input, 0..60);
    lake.ok(&["store", "create", "crash"]);
    let input_arg = input.to_str().unwrap();
    let mut child = lake
        .command(&["ingest", "--store", "crash", "--commit-mib", "1", "--threads", "1", input_arg])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let log = lake.root().join("crash/_delta_log");
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let versions = std::fs::read_dir(&log).map(|d| d.count()).unwrap_or(0);
        if versions >= 3 {
            break;
        }
        assert!(child.try_wait().unwrap().is_none(), "ingest finished before it could be killed");
        assert!(Instant::now() < deadline, "no commit within 300 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    // Readable, holding only whole commits.
    let partial = lake.events("crash");
    assert!(partial > 0 && partial < expected.len() as u64, "{partial} of {}", expected.len());

    let report = lake.ok(&["ingest", "--store", "crash", input_arg]);
    assert!(figure(&report, "files", "already") > 0, "{report}");
    let events = lake.export("crash");
    let ids: Vec<&str> = events.iter().map(|e| e["eventID"].as_str().unwrap()).collect();
    let unique: HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "duplicates after the rerun");
    assert_eq!(unique, expected.iter().map(String::as_str).collect::<HashSet<_>>(), "lost events");
}

/// A run writes a Delta checkpoint at every `--checkpoint-every` versions and goes on from it
/// (delta-rs's commits slow down with the commits since the last one): the store ends whole,
/// readable from its last checkpoint and the commits after it, and a rerun finds every file
/// stored.
#[test]
fn checkpoints_during_a_run() {
    let lake = Lake::new("2024-12-31T00:00:00Z");
    let input = lake.dir.path().join("input");
    let expected = stratus_copies(&input, 0..12);
    let input_arg = input.to_str().unwrap();
    lake.ok(&["store", "create", "checkpointed"]);
    let args =
        ["ingest", "--store", "checkpointed", "--commit-mib", "1", "--checkpoint-every", "2", input_arg];
    let report = lake.ok(&args);
    assert_eq!(figure(&report, "events", "stored"), expected.len() as u64, "{report}");

    let mut versions = Vec::new();
    let mut checkpoints = Vec::new();
    for entry in std::fs::read_dir(lake.root().join("checkpointed/_delta_log")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let version = |suffix: &str| name.strip_suffix(suffix).map(|v| v.parse::<u64>().unwrap());
        versions.extend(version(".json"));
        checkpoints.extend(version(".checkpoint.parquet"));
    }
    versions.sort_unstable();
    checkpoints.sort_unstable();
    let last = *versions.last().unwrap();
    assert!(last >= 5, "{versions:?}");
    // Every even version (version 0 created the store); none at the end of the run.
    let want: Vec<u64> = (2..=last).step_by(2).collect();
    assert_eq!(checkpoints, want);

    let events = lake.export("checkpointed");
    let ids: HashSet<&str> = events.iter().map(|e| e["eventID"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), events.len(), "duplicates");
    assert_eq!(ids, expected.iter().map(String::as_str).collect::<HashSet<_>>(), "lost events");
    let again = lake.ok(&args);
    assert_eq!(figure(&again, "events", "stored"), 0, "{again}");
}

/// Damaged input loses only what is damaged (issue 23, defects 1 and 10): a record cut short
/// (which panicked the decoder), a byte that is not UTF-8 in one record, a gzip file with
/// garbage after it, a dangling link and a FIFO named `.json` in the directory. Every good
/// record is stored, each loss is reported with its file, and the run exits 3.
#[test]
fn damaged_input_loses_only_the_damage() {
    let lake = Lake::new("2024-12-31T00:00:00Z");
    let input = lake.dir.path().join("input");
    std::fs::create_dir_all(&input).unwrap();
    std::fs::write(input.join("truncated.json"), br#"{"a":{"b":1}"#).unwrap();
    // Six NDJSON events; one byte of the second is not UTF-8.
    let mut ndjson = std::fs::read(fixture("plaso-testdata/aws_cloudtrail.jsonl")).unwrap();
    let second = ndjson.iter().position(|&b| b == b'\n').unwrap() + 40;
    ndjson.insert(second, 0xff);
    std::fs::write(input.join("latin1.jsonl"), &ndjson).unwrap();
    // Two events, gzip, then bytes that are not gzip.
    let trail =
        "trailscraper-fixtures/111111111111_CloudTrail_eu-central-1_20171211T1505Z_A6kvhMoVeCsc7v8U.json.gz";
    let mut gz = std::fs::read(fixture(trail)).unwrap();
    gz.extend_from_slice(b"trailing garbage");
    std::fs::write(input.join("trailing.json.gz"), &gz).unwrap();
    std::os::unix::fs::symlink(input.join("nowhere.json"), input.join("dangling.json")).unwrap();
    let fifo = input.join("pipe.json");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());

    lake.ok(&["store", "create", "damaged", "--retention-days", "3653"]);
    let (report, err) = lake.expect(3, &["ingest", "--store", "damaged", input.to_str().unwrap()]);
    assert_eq!(figure(&report, "events", "stored"), 7, "{report}\n{err}");
    let at = |name: &str| input.join(name).display().to_string();
    for want in [
        format!("{}:1: record 0 (byte 0): EOF while parsing an object", at("truncated.json")),
        format!("{}:2: record 1 (byte {}): invalid UTF-8 at byte {second}", at("latin1.jsonl"), second - 39),
        format!("{}:", at("trailing.json.gz")),
        "16 bytes after the gzip data".to_owned(),
        format!("{}: cannot follow the link", at("dangling.json")),
        format!("{}: not a regular file", at("pipe.json")),
    ] {
        assert!(err.contains(&want), "missing {want:?} in\n{err}");
    }
    // The rerun reads only what is not stored whole (the damaged files), and stores nothing new.
    let (again, _) = lake.expect(3, &["ingest", "--store", "damaged", input.to_str().unwrap()]);
    assert_eq!(figure(&again, "events", "stored"), 0, "{again}");
    assert_eq!(lake.events("damaged"), 7);
}

/// Two ingests of the same sources at once store every event once (issue 23, defect 2): a
/// commit lands only on the version its dedupe was checked against; the loser of a race drops
/// what the winner stored and commits the rest.
#[test]
fn concurrent_ingests_store_each_event_once() {
    let lake = Lake::new("2024-12-31T00:00:00Z");
    let input = lake.dir.path().join("input");
    let expected = stratus_copies(&input, 0..20);
    lake.ok(&["store", "create", "race"]);
    let input_arg = input.to_str().unwrap();
    for trial in 0..2 {
        let runs: Vec<_> = (0..2)
            .map(|_| {
                lake.command(&["ingest", "--store", "race", "--commit-mib", "1", "--threads", "1", input_arg])
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let mut stored = 0;
        for run in runs {
            let out = run.wait_with_output().unwrap();
            let report = String::from_utf8_lossy(&out.stdout);
            assert_eq!(out.status.code(), Some(0), "{report}\n{}", String::from_utf8_lossy(&out.stderr));
            stored += figure(&report, "events", "stored");
        }
        assert_eq!(stored, if trial == 0 { expected.len() as u64 } else { 0 }, "trial {trial}");
        let events = lake.export("race");
        let ids: Vec<&str> = events.iter().map(|e| e["eventID"].as_str().unwrap()).collect();
        let unique: HashSet<&str> = ids.iter().copied().collect();
        assert_eq!(unique.len(), ids.len(), "trial {trial}: duplicates");
        assert_eq!(unique, expected.iter().map(String::as_str).collect::<HashSet<_>>(), "trial {trial}");
        assert_eq!(lake.events("race"), expected.len() as u64);
    }
}

/// Many small runs (a cron job) keep the Delta log small (issue 23, defect 7): no checkpoint at
/// the end of every run, and a checkpoint removes those it supersedes once they are a day old
/// (each holds every live file). Every JSON commit stays.
#[test]
fn delta_log_stays_small_over_many_runs() {
    let lake = Lake::new("2024-12-31T00:00:00Z");
    let input = lake.dir.path().join("input");
    let expected = stratus_copies(&input, 0..12);
    lake.ok(&["store", "create", "cron"]);
    let log = lake.root().join("cron/_delta_log");
    let names = || -> Vec<String> {
        let mut names: Vec<String> =
            std::fs::read_dir(&log).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        names
    };
    for copy in 0..12 {
        let dir = input.join(format!("copy{copy:03}"));
        let report =
            lake.ok(&["ingest", "--store", "cron", "--checkpoint-every", "2", dir.to_str().unwrap()]);
        assert_eq!(figure(&report, "bytes", "commits"), 1, "{report}");
        // A day passes between runs.
        let files: Vec<_> = names().iter().map(|n| log.join(n)).collect();
        let touched = std::process::Command::new("touch").arg("-d").arg("2 days ago").args(&files).status();
        assert!(touched.unwrap().success());
    }
    let names = names();
    let checkpoints: Vec<&String> = names.iter().filter(|n| n.contains(".checkpoint.")).collect();
    assert_eq!(checkpoints, ["00000000000000000012.checkpoint.parquet"], "{names:?}");
    let commits = names.iter().filter(|n| n.ends_with(".json")).count();
    assert_eq!(commits, 13, "{names:?}");
    assert_eq!(lake.events("cron"), expected.len() as u64);
    let again = lake.ok(&["ingest", "--store", "cron", input.to_str().unwrap()]);
    assert_eq!(figure(&again, "events", "stored"), 0, "{again}");
}

/// A killed `retention apply` leaves nothing expired behind once run again (issue 23, defect
/// 5): the rerun vacuums whether or not it has partitions left to remove. And a data file in no
/// commit (a killed ingest's upload) goes once it is a day old.
#[test]
fn killed_retention_apply_leaves_nothing_expired() {
    let stratus = fixture("stratus-red-team-detonation-logs");
    for (trial, delay) in [30u64, 80, 150, 250, 400, 600].into_iter().enumerate() {
        let lake = Lake::new("2024-08-05T00:00:00Z");
        lake.ok(&["store", "create", "short", "--retention-days", "7"]);
        lake.ok(&["ingest", "--store", "short", &stratus]);
        // A killed ingest's upload: in no commit, two days old.
        let orphan = lake.root().join("short/eventdate=2024-08-04/part-00000-orphan-c000.zstd.parquet");
        std::fs::create_dir_all(orphan.parent().unwrap()).unwrap();
        std::fs::write(&orphan, b"PAR1").unwrap();
        let touched = std::process::Command::new("touch").arg("-d").arg("2 days ago").arg(&orphan).status();
        assert!(touched.unwrap().success());

        let later = Lake { now: "2024-08-09T12:00:00Z".into(), ..lake };
        let mut child = later
            .command(&["retention", "apply"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();

        let out = later.ok(&["retention", "apply"]);
        let on_disk: Vec<String> = walk(&later.root().join("short"))
            .into_iter()
            .filter(|p| p.ends_with(".parquet") && !p.contains("_delta_log"))
            .collect();
        let live = later.show("short")["summary"]["files"].as_u64().unwrap();
        assert_eq!(on_disk.len() as u64, live, "trial {trial} ({delay} ms): {out}\n{on_disk:#?}");
        assert!(on_disk.iter().all(|p| !p.contains("eventdate=2024-07")), "{on_disk:#?}");
        assert!(!orphan.exists(), "trial {trial}: the orphan is still there\n{out}");
        let left = later.export("short");
        assert!(left.iter().all(|e| e["eventTime"].as_str().unwrap() >= "2024-08-02"));
    }
}

/// A file larger than a segment is decoded a segment at a time (issue 23, defect 11): memory
/// follows the segment, and the file's events are all stored, once, with the file ledgered
/// after its last segment.
#[test]
fn a_large_file_is_read_in_segments() {
    let lake = Lake::new("2024-12-31T00:00:00Z");
    let input = lake.dir.path().join("copies");
    let expected = stratus_copies(&input, 0..56);
    // One NDJSON file of every copy's events: about 23 MB, two segments.
    let mut ndjson = Vec::new();
    for path in walk(&input) {
        let events: Vec<serde_json::Value> = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        for e in events {
            serde_json::to_writer(&mut ndjson, &e).unwrap();
            ndjson.push(b'\n');
        }
    }
    assert!(ndjson.len() > 17 << 20, "{} bytes", ndjson.len());
    let big = lake.dir.path().join("big.ndjson");
    std::fs::write(&big, &ndjson).unwrap();
    let big = big.to_str().unwrap();
    let report = lake.ok(&["ingest", "--store", "big", "--create", "--commit-mib", "8", big]);
    assert_eq!(figure(&report, "files", "read"), 1, "{report}");
    assert_eq!(figure(&report, "events", "stored"), expected.len() as u64, "{report}");
    let events = lake.export("big");
    let ids: HashSet<&str> = events.iter().map(|e| e["eventID"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), events.len(), "duplicates");
    assert_eq!(ids, expected.iter().map(String::as_str).collect::<HashSet<_>>());
    let again = lake.ok(&["ingest", "--store", "big", "--create", big]);
    assert_eq!(figure(&again, "files", "already"), 1, "{again}");
}

#[test]
fn an_unknown_store_is_refused_and_named_unless_created() {
    let lake = Lake::new("2026-01-01T00:00:00Z");
    lake.ok(&["store", "create", "audit"]);
    let stratus = fixture("stratus-red-team-detonation-logs");
    // A typo creates nothing: the closest store is named, and the lake searched.
    let (_, err) = lake.expect(1, &["ingest", "--store", "audti", &stratus]);
    assert!(err.contains("no event data store 'audti' in the lake at"), "{err}");
    assert!(err.contains("did you mean 'audit'?") && err.contains("--create"), "{err}");
    assert!(!lake.ok(&["store", "list"]).contains("audti"));
    // --create makes it, with the retention asked for.
    let (_, err) =
        lake.expect(0, &["ingest", "--store", "audits", "--create", "--retention-days", "400", &stratus]);
    assert!(err.contains("created event data store audits"), "{err}");
    assert_eq!(lake.show("audits")["config"]["retentionDays"], 400);
    // Export writes to stdout unless -o says otherwise.
    let exported = lake.ok(&["export", "--store", "audits"]);
    assert_eq!(exported.lines().count() as u64, lake.events("audits"));
    // An existing store's settings are not ingest's to change.
    let (_, err) = lake.expect(1, &["ingest", "--store", "audit", "--retention-days", "400", &stratus]);
    assert!(err.contains("store update"), "{err}");
}
